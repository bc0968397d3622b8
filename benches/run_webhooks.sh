#!/usr/bin/env bash
# Runs the webhook delivery benchmark (benches/webhooks.rs) against a freshly started server.
#
#   benches/run_webhooks.sh sqlite|postgres
#
# The server runs pinned to core 0 with one HTTP worker, loopback webhook targets allowed and the
# REST rate limiter off; the benchmark (its own webhook receiver and the REST clients that create
# the conversations whose `conversation_started` events get delivered) runs pinned to core 1.
# Every run gets a freshly started server with an empty database (a temporary data directory;
# for postgres also a fresh database, dropped afterwards). Runs are "EVENTS:CONCURRENCY" pairs and
# can be overridden from the environment, e.g. for a quick check:
#
#   RUNS="2000:8" benches/run_webhooks.sh sqlite
#
# Every `RESULT {json}` line the benchmark prints is collected, labelled, in $RESULTS
# (default /tmp/frontdesk-bench-webhooks-<backend>.txt) and repeated at the end.
set -euo pipefail

BACKEND=${1:-}
case "$BACKEND" in
sqlite | postgres) ;;
*)
    echo "usage: $0 sqlite|postgres" >&2
    exit 2
    ;;
esac

RUNS=${RUNS-"20000:32 5000:4"}
WAIT_SECS=${WAIT_SECS:-120} # how long the benchmark waits for deliveries after the last creation
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-600} # seconds any one benchmark run may take
RESULTS=${RESULTS:-/tmp/frontdesk-bench-webhooks-$BACKEND.txt}

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

echo "## building (release)" >&2
cargo build --release --bin frontdesk >&2
BENCH=$(cargo build --release --benches --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*/webhooks-[^"]*"' | tail -n1 | cut -d'"' -f4)
SERVER=${FRONTDESK_BIN:-$CARGO_TARGET_DIR/release/frontdesk} # FRONTDESK_BIN: benchmark another build
if [[ -z "$BENCH" || ! -x "$BENCH" || ! -x "$SERVER" ]]; then
    echo "could not find the built server ($SERVER) or webhook benchmark ($BENCH)" >&2
    exit 1
fi

ulimit -n 20000

WORK=$(mktemp -d /tmp/frontdesk-bench-webhooks.XXXXXX)
# Private copies: a concurrent cargo build must not swap the binaries between runs.
cp "$SERVER" "$WORK/frontdesk"
cp "$BENCH" "$WORK/webhooks"
SERVER=$WORK/frontdesk
BENCH=$WORK/webhooks
SERVER_PID=""
DB_NAME=""
RUN_NO=0
: >"$RESULTS"

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
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a fresh server; sets SERVER_PID, PORT, KEY and RUN_DIR.
start_server() {
    RUN_NO=$((RUN_NO + 1))
    RUN_DIR=$WORK/run$RUN_NO
    mkdir -p "$RUN_DIR/data"
    local db_env=()
    if [[ "$BACKEND" == postgres ]]; then
        DB_NAME=frontdesk_bench_wh_$$_$RUN_NO
        psql "$PG_URL/postgres" -qAtc "create database $DB_NAME" >/dev/null
        db_env=("DATABASE_URL=$PG_URL/$DB_NAME")
    fi
    env "${db_env[@]}" FRONTDESK_BIND=127.0.0.1:0 FRONTDESK_DATA_DIR="$RUN_DIR/data" FRONTDESK_WORKERS=1 \
        FRONTDESK_WEBHOOK_ALLOW_LOOPBACK=true FRONTDESK_RATE_LIMIT_PER_MINUTE=0 \
        RUST_LOG=warn taskset -c "$SERVER_CORE" "$SERVER" serve >"$RUN_DIR/stdout" 2>"$RUN_DIR/stderr" &
    SERVER_PID=$!
    PORT="" KEY=""
    for _ in $(seq 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "server exited during startup:" >&2
            tail -n 20 "$RUN_DIR/stderr" >&2
            exit 1
        fi
        PORT=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$RUN_DIR/stdout" | head -n1 | sed 's/.*://' || true)
        KEY=$(grep -o '"api_key": *"[^"]*"' "$RUN_DIR/stdout" | head -n1 | cut -d'"' -f4 || true)
        [[ -n "$PORT" && -n "$KEY" ]] && break
        sleep 0.1
    done
    if [[ -z "$PORT" || -z "$KEY" ]]; then
        echo "server did not print its port and API key within 30 s" >&2
        exit 1
    fi
    sleep 1 # let the startup work (migrations, seeding) settle before measuring a baseline
}

# run LABEL ARGS...: one benchmark run against a fresh server.
run() {
    local label=$1
    shift
    start_server
    echo >&2
    echo "## $BACKEND $label (server pid $SERVER_PID, port $PORT)" >&2
    local out=$RUN_DIR/webhooks.out
    local status=0
    timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" "$@" \
        --url "http://127.0.0.1:$PORT" --key "$KEY" --timeout "$WAIT_SECS" --pid "$SERVER_PID" | tee "$out" ||
        status=$?
    local errors warns
    errors=$(grep -c 'ERROR' "$RUN_DIR/stderr" || true)
    warns=$(grep -c 'WARN' "$RUN_DIR/stderr" || true)
    echo "  server log: $errors ERROR lines, $warns WARN lines" >&2
    if [[ "$errors" != 0 || "$warns" != 0 ]]; then
        # Without colours and timestamps, so repeats fold together.
        sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' "$RUN_DIR/stderr" | grep -E 'ERROR|WARN' | cut -c1-200 |
            sort | uniq -c | sort -rn | head -n 5 >&2
    fi
    if [[ $status != 0 ]]; then
        echo "  benchmark exited with status $status" >&2
    fi
    sed -n "s/^RESULT /RESULT $BACKEND $label server_errors=$errors /p" "$out" >>"$RESULTS"
    stop_server
}

for r in $RUNS; do
    events=${r%%:*}
    conc=${r##*:}
    run "events-$events-c$conc" --events "$events" --concurrency "$conc"
done

echo
echo "## results ($BACKEND), also in $RESULTS"
cat "$RESULTS"
