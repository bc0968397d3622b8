#!/usr/bin/env bash
# Runs the model brain's streaming benchmark (benches/model.rs): what frontdesk adds between an
# OpenAI-compatible model streaming a reply and the visitor's widget showing it.
#
#   benches/run_model.sh                     # N = 1, 100, 1000 concurrent conversations
#   NS="1 100" benches/run_model.sh          # fewer
#
# Each N gets a fresh server (SQLite in a temporary data directory, a workspace made by
# `frontdesk workspace create --demo`, the REST rate limiter off) pinned to core 0 with one
# worker, configured with FRONTDESK_MODEL=bench-model and OPENAI_BASE_URL pointing at the
# benchmark, which serves the model itself on 127.0.0.1:$MODEL_PORT (CHUNKS chunks, the first
# TTFT_MS after the request, then one every GAP_MS) and runs pinned to core 1. All N widgets send
# their one question at the same instant unless RAMP (seconds) spreads them.
#
# The `RESULT {json}` lines, with the machine's description, go to
# $RESULTS_DIR/$DATE-model-sqlite.txt (default benches/results), and are repeated at the end.
set -euo pipefail

NS=${NS:-"1 100 1000"}
CHUNKS=${CHUNKS:-20}
GAP_MS=${GAP_MS:-20}
TTFT_MS=${TTFT_MS:-50}
RAMP=${RAMP:-0}
MODEL_PORT=${MODEL_PORT:-18431}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
DATE=${DATE:-$(date +%F)}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432} # unused: SQLite only

cd "$(dirname "$0")/.."
RESULTS_DIR=${RESULTS_DIR:-benches/results}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
ulimit -n 20000
BACKEND=sqlite
RESULTS=$RESULTS_DIR/$DATE-model-sqlite.txt
prepare_binaries model

if (exec 3<>"/dev/tcp/127.0.0.1/$MODEL_PORT") 2>/dev/null; then
    echo "127.0.0.1:$MODEL_PORT is taken; set MODEL_PORT" >&2
    exit 1
fi

# start_model_server: a fresh database, a demo workspace made with the CLI, then the server with
# the model brain pointed at the benchmark; sets SERVER_PID, PORT, BOT and RUN_DIR.
start_model_server() {
    RUN_NO=$((RUN_NO + 1))
    RUN_DIR=$WORK/run$RUN_NO
    mkdir -p "$RUN_DIR/data"
    local env=(FRONTDESK_DATA_DIR="$RUN_DIR/data" FRONTDESK_DEMO=false FRONTDESK_RATE_LIMIT_PER_MINUTE=0 "${ADMISSION_OFF[@]}"
        RUST_LOG=warn OPENAI_BASE_URL="http://127.0.0.1:$MODEL_PORT/v1" OPENAI_API_KEY=bench
        FRONTDESK_MODEL=bench-model FRONTDESK_MODEL_TIMEOUT_SECS=120)
    local created
    created=$(env "${env[@]}" "$SERVER" workspace create --name "Model bench" --demo)
    BOT=$(grep -o '"bot_id": *"[^"]*"' <<<"$created" | head -n1 | cut -d'"' -f4)
    if [[ -z "$BOT" ]]; then
        echo "frontdesk workspace create printed no bot_id" >&2
        exit 1
    fi
    env "${env[@]}" FRONTDESK_BIND=127.0.0.1:0 FRONTDESK_WORKERS=1 \
        taskset -c "$SERVER_CORE" "$SERVER" serve >"$RUN_DIR/stdout" 2>"$RUN_DIR/stderr" &
    SERVER_PID=$!
    PORT=$(await_port "$SERVER_PID" "$RUN_DIR")
    sleep 1
}

{
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "# $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr), open files $(ulimit -n)"
    echo "# $(rustc --version 2>/dev/null || true); SQLite (bundled with the server); server on core $SERVER_CORE (1 worker), benchmark and its model on core $CLIENT_CORE"
    echo "# NS=\"$NS\" CHUNKS=$CHUNKS GAP_MS=$GAP_MS TTFT_MS=$TTFT_MS RAMP=$RAMP"
} >"$RESULTS"

for n in $NS; do
    start_model_server
    echo >&2
    echo "## $n concurrent streams (server pid $SERVER_PID, port $PORT)" >&2
    echo "# n-$n: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
    out=$RUN_DIR/model.out
    status=0
    timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" \
        --url "http://127.0.0.1:$PORT" --bot "$BOT" --model-listen "127.0.0.1:$MODEL_PORT" --pid "$SERVER_PID" \
        --conversations "$n" --chunks "$CHUNKS" --gap-ms "$GAP_MS" --ttft-ms "$TTFT_MS" --ramp "$RAMP" |
        tee "$out" || status=$?
    errors=$(grep -c 'ERROR' "$RUN_DIR/stderr" || true)
    warns=$(grep -c 'WARN' "$RUN_DIR/stderr" || true)
    echo "  server log: $errors ERROR lines, $warns WARN lines" >&2
    if [[ "$errors" != 0 || "$warns" != 0 ]]; then
        sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' "$RUN_DIR/stderr" | grep -E 'ERROR|WARN' | cut -c1-200 |
            sort | uniq -c | sort -rn | head -n 5 >&2
    fi
    if [[ $status != 0 ]]; then
        echo "  benchmark exited with status $status" >&2
    fi
    sed -n "s/^RESULT /RESULT sqlite n-$n server_errors=$errors server_warns=$warns /p" "$out" >>"$RESULTS"
    stop_server
done

echo
echo "## $RESULTS"
cat "$RESULTS"
