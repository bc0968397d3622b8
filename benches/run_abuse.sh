#!/usr/bin/env bash
# Runs the hardening benchmark (benches/abuse.rs) against a freshly started server on each
# backend: what abusive clients cost the server, and what a well-behaved visitor notices meanwhile.
#
#   benches/run_abuse.sh [sqlite] [postgres]     # both by default
#
# Each scenario in SCENARIOS gets a fresh server with an empty database (a temporary data
# directory; for postgres a fresh database, dropped afterwards) and a workspace made by
# `frontdesk workspace create --demo`, pinned to core 0 with one worker. The API key's REST quota
# is off (FRONTDESK_RATE_LIMIT_PER_MINUTE=0): the benchmark's own REST calls and the 300 uploads
# share one key, and a 429 before the body is read would hide what the body deadline does. The
# server otherwise runs with its defaults (admission control included, once it exists); extra
# settings go in SERVER_ENV ("NAME=value NAME2=value"), which wins over the above. The benchmark,
# pinned to core 1, keeps a well-behaved visitor (WELL_CONVERSATIONS conversations, WELL_RATE
# messages/s in all) talking to the bot through BASELINE s alone, SECS s of abuse and SETTLE s
# after, and samples the server's memory, open files and temporary upload files once a second:
#
#   hello-flood      FLOOD_COUNT (2000) widget sockets from 127.0.0.1, each `hello` asking for a
#                    new conversation
#   slow-readers     SLOW_COUNT (500) widget sockets that send SLOW_MESSAGES messages of 4,000
#                    characters each (SLOW_RATE/s in all) and never read what comes back
#   stalled-uploads  UPLOAD_COUNT (300) POST /api/files that send headers and 64 KiB of a declared
#                    1 MiB multipart body, then stall (for UPLOAD_SECS, default SECS)
#
# For a quick check:
#
#   SCENARIOS=hello-flood FLOOD_COUNT=200 SECS=5 RESULTS_DIR=/tmp benches/run_abuse.sh sqlite
#
# Each backend's output (the human-readable block as `#` lines, then `RESULT {json}`), with the
# machine's description, goes to $RESULTS_DIR/$DATE-abuse-<backend>.txt (default benches/results),
# and the RESULT lines are repeated at the end.
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

SCENARIOS=${SCENARIOS:-"hello-flood slow-readers stalled-uploads"}
SECS=${SECS:-30}
UPLOAD_SECS=${UPLOAD_SECS:-$SECS}
BASELINE=${BASELINE:-5}
SETTLE=${SETTLE:-5}
FLOOD_COUNT=${FLOOD_COUNT:-2000}
SLOW_COUNT=${SLOW_COUNT:-500}
SLOW_MESSAGES=${SLOW_MESSAGES:-30}
SLOW_RATE=${SLOW_RATE:-500}
UPLOAD_COUNT=${UPLOAD_COUNT:-300}
WELL_CONVERSATIONS=${WELL_CONVERSATIONS:-10}
WELL_RATE=${WELL_RATE:-5}
SERVER_ENV=${SERVER_ENV:-}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
DATE=${DATE:-$(date +%F)}

for scenario in $SCENARIOS; do
    case "$scenario" in
    hello-flood | slow-readers | stalled-uploads) ;;
    *)
        echo "unknown scenario $scenario (hello-flood, slow-readers, stalled-uploads)" >&2
        exit 2
        ;;
    esac
done

cd "$(dirname "$0")/.."
RESULTS_DIR=${RESULTS_DIR:-benches/results}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
# 2,000 sockets on each side of loopback, plus the server's database files.
ulimit -n 20000
BACKEND=${PARTS[0]}
RESULTS=$RESULTS_DIR/$DATE-abuse-${PARTS[0]}.txt
prepare_binaries abuse


# start_abuse_server: a fresh database, a workspace made with the CLI, then the server; sets
# SERVER_PID, PORT, KEY, BOT and RUN_DIR.
start_abuse_server() {
    RUN_NO=$((RUN_NO + 1))
    RUN_DIR=$WORK/run$RUN_NO
    mkdir -p "$RUN_DIR/data"
    local db_env=()
    if [[ "$BACKEND" == postgres ]]; then
        DB_NAME=frontdesk_bench_$$_$RUN_NO
        psql "$PG_URL/postgres" -qAtc "create database $DB_NAME" >/dev/null
        db_env=("DATABASE_URL=$PG_URL/$DB_NAME")
    fi
    local extra=()
    read -r -a extra <<<"$SERVER_ENV"
    local env=("${db_env[@]}" FRONTDESK_DATA_DIR="$RUN_DIR/data" FRONTDESK_DEMO=false
        FRONTDESK_RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn "${extra[@]}")
    local created
    created=$(env "${env[@]}" "$SERVER" workspace create --name "Abuse bench" --demo)
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
    sleep 1 # let the startup work settle before the baseline
}

ALL=()
for part in "${PARTS[@]}"; do
    BACKEND=$part
    RESULTS=$RESULTS_DIR/$DATE-abuse-$part.txt
    ALL+=("$RESULTS")
    if [[ "$BACKEND" == postgres ]]; then
        version="PostgreSQL $(psql "$PG_URL/postgres" -qAtc "show server_version" 2>/dev/null || echo "?")"
    else
        version="SQLite (bundled with the server)"
    fi
    machine "$version; server on core $SERVER_CORE (1 worker), benchmark on core $CLIENT_CORE" >"$RESULTS"
    echo "# SCENARIOS=\"$SCENARIOS\" SECS=$SECS UPLOAD_SECS=$UPLOAD_SECS BASELINE=$BASELINE SETTLE=$SETTLE FLOOD_COUNT=$FLOOD_COUNT SLOW_COUNT=$SLOW_COUNT SLOW_MESSAGES=$SLOW_MESSAGES SLOW_RATE=$SLOW_RATE UPLOAD_COUNT=$UPLOAD_COUNT WELL_CONVERSATIONS=$WELL_CONVERSATIONS WELL_RATE=$WELL_RATE SERVER_ENV=\"$SERVER_ENV\"" >>"$RESULTS"
    for scenario in $SCENARIOS; do
        case "$scenario" in
        hello-flood) args=(--count "$FLOOD_COUNT" --secs "$SECS") ;;
        slow-readers) args=(--count "$SLOW_COUNT" --secs "$SECS" --messages "$SLOW_MESSAGES" --slow-rate "$SLOW_RATE") ;;
        stalled-uploads) args=(--count "$UPLOAD_COUNT" --secs "$UPLOAD_SECS") ;;
        esac
        start_abuse_server
        echo >&2
        echo "## $BACKEND: $scenario (server pid $SERVER_PID, port $PORT)" >&2
        echo "# $scenario: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
        out=$RUN_DIR/abuse.out
        status=0
        timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" "$scenario" \
            --url "http://127.0.0.1:$PORT" --key "$KEY" --bot "$BOT" --pid "$SERVER_PID" --data-dir "$RUN_DIR/data" \
            --baseline "$BASELINE" --settle "$SETTLE" --well-conversations "$WELL_CONVERSATIONS" \
            --well-rate "$WELL_RATE" "${args[@]}" |
            tee "$out" || status=$?
        errors=$(grep -c 'ERROR' "$RUN_DIR/stderr" || true)
        warns=$(grep -c 'WARN' "$RUN_DIR/stderr" || true)
        echo "  server log: $errors ERROR lines, $warns WARN lines" >&2
        if [[ "$errors" != 0 || "$warns" != 0 ]]; then
            # Without colours and timestamps, so repeats fold together.
            sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' "$RUN_DIR/stderr" | grep -E 'ERROR|WARN' | cut -c1-200 |
                sort | uniq -c | sort -rn | head -n 5 | tee -a "$out" >&2
        fi
        if [[ $status != 0 ]]; then
            echo "  benchmark exited with status $status" | tee -a "$out" >&2
        fi
        grep -v '^RESULT ' "$out" | sed 's/^/# /' >>"$RESULTS"
        sed -n "s/^RESULT /RESULT $BACKEND $scenario server_errors=$errors server_warns=$warns /p" "$out" >>"$RESULTS"
        stop_server
    done
done

echo
for f in "${ALL[@]}"; do
    echo "## $f"
    grep '^RESULT ' "$f" || true
done
