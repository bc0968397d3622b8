#!/usr/bin/env bash
# Runs the human agents' delivery benchmark (benches/agents.rs) against a freshly started server
# on each backend.
#
#   benches/run_agents.sh [sqlite] [postgres]     # both by default
#
# Each backend gets a fresh server with an empty database (a temporary data directory; for
# postgres a fresh database, dropped afterwards) and a workspace made by
# `frontdesk workspace create --demo`, with the REST rate limiter off, pinned to core 0 with one
# worker. The benchmark, pinned to core 1, creates AGENTS agents, opens CONVERSATIONS widget
# conversations, has every agent open /ws/agent and subscribe to its share (each conversation is
# watched by exactly one agent), then sends RATE visitor messages/s in all (each conversation
# one every CONVERSATIONS/RATE seconds) for WARMUP + SECS seconds, and times each message from
# the widget to the watching agent's socket (and to the other agents' inboxes, the widget's ack
# and the bot's reply). Each rate in RATES is a run of its own on a fresh server. For a quick
# check:
#
#   CONVERSATIONS=100 AGENTS=5 RATES=50 SECS=5 WARMUP=3 RESULTS_DIR=/tmp benches/run_agents.sh sqlite
#
# Each backend's `RESULT {json}` lines, with the machine's description, go to
# $RESULTS_DIR/$DATE-agents-<backend>.txt (default benches/results), and are repeated at the end.
set -euo pipefail

PARTS=("$@")
[[ ${#PARTS[@]} == 0 ]] && PARTS=(sqlite postgres)
for part in "${PARTS[@]}"; do
    case "$part" in
    sqlite | postgres) ;;
    *)
        echo "usage: $0 [sqlite] [postgres]" >&2
        exit 2
        ;;
    esac
done

AGENTS=${AGENTS:-20}
CONVERSATIONS=${CONVERSATIONS:-1000}
RATES=${RATES-"150 600"} # visitor messages per second over all conversations, one run each
SECS=${SECS:-60}         # measured window
WARMUP=${WARMUP:-10}     # sending before it; at 150/s, every conversation sends once in the warm-up
DRAIN=${DRAIN:-5}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
DATE=${DATE:-$(date +%F)}

cd "$(dirname "$0")/.."
RESULTS_DIR=${RESULTS_DIR:-benches/results}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
# 1,000 widget sockets and the agents' on each side of loopback, plus the server's database files.
ulimit -n 20000
BACKEND=${PARTS[0]}
RESULTS=$RESULTS_DIR/$DATE-agents-${PARTS[0]}.txt
prepare_binaries agents


# start_agents_server: a fresh database, a workspace made with the CLI, then the server; sets
# SERVER_PID, PORT, KEY, BOT and RUN_DIR.
start_agents_server() {
    RUN_NO=$((RUN_NO + 1))
    RUN_DIR=$WORK/run$RUN_NO
    mkdir -p "$RUN_DIR/data"
    local db_env=()
    if [[ "$BACKEND" == postgres ]]; then
        DB_NAME=frontdesk_bench_$$_$RUN_NO
        psql "$PG_URL/postgres" -qAtc "create database $DB_NAME" >/dev/null
        db_env=("DATABASE_URL=$PG_URL/$DB_NAME")
    fi
    local env=("${db_env[@]}" FRONTDESK_DATA_DIR="$RUN_DIR/data" FRONTDESK_DEMO=false
        FRONTDESK_RATE_LIMIT_PER_MINUTE=0 "${ADMISSION_OFF[@]}" RUST_LOG=warn)
    local created
    created=$(env "${env[@]}" "$SERVER" workspace create --name "Agents bench" --demo)
    KEY=$(grep -o '"api_key": *"[^"]*"' <<<"$created" | head -n1 | cut -d'"' -f4)
    BOT=$(grep -o '"bot_id": *"[^"]*"' <<<"$created" | head -n1 | cut -d'"' -f4)
    if [[ -z "$KEY" || -z "$BOT" ]]; then
        echo "frontdesk workspace create printed no api_key or bot_id" >&2
        exit 1
    fi
    env "${env[@]}" FRONTDESK_BIND=127.0.0.1:0 FRONTDESK_WORKERS=1 \
        taskset -c "$SERVER_CORE" "$SERVER" serve >"$RUN_DIR/stdout" 2>"$RUN_DIR/stderr" &
    SERVER_PID=$!
    PORT=$(await_port "$SERVER_PID" "$RUN_DIR")
    sleep 1
}

ALL=()
for part in "${PARTS[@]}"; do
    BACKEND=$part
    RESULTS=$RESULTS_DIR/$DATE-agents-$part.txt
    ALL+=("$RESULTS")
    if [[ "$BACKEND" == postgres ]]; then
        version="PostgreSQL $(psql "$PG_URL/postgres" -qAtc "show server_version" 2>/dev/null || echo "?")"
    else
        version="SQLite (bundled with the server)"
    fi
    machine "$version; server on core $SERVER_CORE (1 worker), benchmark on core $CLIENT_CORE; AGENTS=$AGENTS CONVERSATIONS=$CONVERSATIONS RATES=\"$RATES\" SECS=$SECS WARMUP=$WARMUP DRAIN=$DRAIN" >"$RESULTS"
    for rate in $RATES; do
        start_agents_server
        echo >&2
        echo "## $BACKEND: $AGENTS agents, $CONVERSATIONS conversations, $rate msg/s (server pid $SERVER_PID, port $PORT)" >&2
        echo "# rate-$rate: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
        out=$RUN_DIR/agents.out
        status=0
        timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" \
            --url "http://127.0.0.1:$PORT" --key "$KEY" --bot "$BOT" --pid "$SERVER_PID" --agents "$AGENTS" \
            --conversations "$CONVERSATIONS" --rate "$rate" --secs "$SECS" --warmup "$WARMUP" --drain "$DRAIN" |
            tee "$out" || status=$?
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
        sed -n "s/^RESULT /RESULT $BACKEND rate-$rate server_errors=$errors server_warns=$warns /p" "$out" >>"$RESULTS"
        stop_server
    done
done

echo
for f in "${ALL[@]}"; do
    echo "## $f"
    cat "$f"
done
