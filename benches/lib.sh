# shellcheck shell=bash disable=SC2034 # sourced: sets SERVER, BENCH, PORT… for the sourcing script
# Shared by the benchmark scripts: build, private copies of the binaries, a fresh server per
# measurement (temp data folder; for postgres a fresh database, dropped afterwards), cleanup.
# The sourcing script sets BACKEND, PG_URL, SERVER_CORE and RESULTS first.

# prepare_binaries BENCH_NAME [OTHER_BENCH...]: builds, then sets SERVER and BENCH (the first
# benchmark) to private copies in $WORK (a concurrent cargo build must not swap the binaries
# between runs); every other benchmark named is copied to $WORK/<name>.
prepare_binaries() {
    local name=$1
    echo "## building (release)" >&2
    cargo build --release --bin frontdesk >&2
    local built
    built=$(cargo build --release --benches --message-format=json 2>/dev/null)
    local server=${FRONTDESK_BIN:-$CARGO_TARGET_DIR/release/frontdesk} # FRONTDESK_BIN: benchmark another build
    if [[ ! -x "$server" ]]; then
        echo "could not find the built server ($server)" >&2
        exit 1
    fi
    WORK=$(mktemp -d "/tmp/frontdesk-bench-$name.XXXXXX")
    cp "$server" "$WORK/frontdesk"
    local each bench
    for each in "$@"; do
        bench=$(grep -o "\"executable\":\"[^\"]*/$each-[^\"]*\"" <<<"$built" | tail -n1 | cut -d'"' -f4)
        if [[ -z "$bench" || ! -x "$bench" ]]; then
            echo "could not find the built benchmark $each ($bench)" >&2
            rm -rf "$WORK"
            exit 1
        fi
        cp "$bench" "$WORK/$each"
    done
    SERVER=$WORK/frontdesk
    BENCH=$WORK/$name
    SERVER_PID=""
    DB_NAME=""
    RUN_NO=0
    : >"$RESULTS"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    if [[ -n "$DB_NAME" ]]; then
        psql "$PG_URL/postgres" -qAtc "drop database if exists $DB_NAME with (force)" >/dev/null || true
        DB_NAME=""
    fi
}

cleanup() {
    stop_server
    rm -rf "$WORK"
}

# await_port PID DIR: waits (30 s at most) until server PID has printed its address to
# DIR/stdout, and prints the port; ends the script if the server dies or never says.
await_port() {
    local pid=$1 dir=$2 port=""
    for _ in $(seq 300); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "server exited during startup:" >&2
            tail -n 20 "$dir/stderr" >&2
            exit 1
        fi
        port=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$dir/stdout" | head -n1 | sed 's/.*://' || true)
        if [[ -n "$port" ]]; then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "server did not print its port within 30 s" >&2
    exit 1
}

# The throughput benchmarks drive thousands of conversations from one address (127.0.0.1), which
# admission control's per-address quotas exist to stop: they are off for them (the abuse
# benchmark, benches/run_abuse.sh, measures them on).
ADMISSION_OFF=(FRONTDESK_WIDGET_CONVERSATIONS_PER_MINUTE=0 FRONTDESK_BOT_CONVERSATIONS_PER_MINUTE=0
    FRONTDESK_CONVERSATION_MESSAGES_PER_MINUTE=0 FRONTDESK_SOCKET_MESSAGES_PER_MINUTE=0
    FRONTDESK_PUBLIC_RATE_LIMIT_PER_MINUTE=0)

# start_server [ENV=VALUE...]: a fresh server pinned to $SERVER_CORE with one worker; sets
# SERVER_PID, PORT, BOT, KEY and RUN_DIR once it has printed its address and demo credentials.
start_server() {
    RUN_NO=$((RUN_NO + 1))
    RUN_DIR=$WORK/run$RUN_NO
    mkdir -p "$RUN_DIR/data"
    local db_env=()
    if [[ "$BACKEND" == postgres ]]; then
        DB_NAME=frontdesk_bench_$$_$RUN_NO
        psql "$PG_URL/postgres" -qAtc "create database $DB_NAME" >/dev/null
        db_env=("DATABASE_URL=$PG_URL/$DB_NAME")
    fi
    env "${db_env[@]}" "${ADMISSION_OFF[@]}" "$@" FRONTDESK_BIND=127.0.0.1:0 FRONTDESK_DATA_DIR="$RUN_DIR/data" FRONTDESK_WORKERS=1 \
        RUST_LOG=warn taskset -c "$SERVER_CORE" "$SERVER" serve >"$RUN_DIR/stdout" 2>"$RUN_DIR/stderr" &
    SERVER_PID=$!
    PORT=$(await_port "$SERVER_PID" "$RUN_DIR")
    BOT="" KEY=""
    # The demo credentials follow the address on stdout.
    for _ in $(seq 50); do
        BOT=$(grep -o '"bot_id": *"[^"]*"' "$RUN_DIR/stdout" | head -n1 | cut -d'"' -f4 || true)
        KEY=$(grep -o '"api_key": *"[^"]*"' "$RUN_DIR/stdout" | head -n1 | cut -d'"' -f4 || true)
        [[ -n "$BOT" && -n "$KEY" ]] && break
        sleep 0.1
    done
    if [[ -z "$BOT" || -z "$KEY" ]]; then
        echo "server did not print its demo bot id and API key" >&2
        exit 1
    fi
    sleep 1 # let the startup work (migrations, seeding) settle before measuring a baseline
}

# machine NOTE: the header lines of a results file (when, which commit, which machine, and NOTE).
machine() {
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "# $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr), open files $(ulimit -n)"
    echo "# $(rustc --version 2>/dev/null || true); $1"
    if [[ -n "${FRONTDESK_BIN:-}" ]]; then
        echo "# server: FRONTDESK_BIN=$FRONTDESK_BIN, built $(date -u -r "$FRONTDESK_BIN" +%FT%TZ)"
    fi
}
