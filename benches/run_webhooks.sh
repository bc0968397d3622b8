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

# shellcheck source=benches/lib.sh
source benches/lib.sh
ulimit -n 20000
prepare_binaries webhooks

# run LABEL ARGS...: one benchmark run against a fresh server.
run() {
    local label=$1
    shift
    start_server FRONTDESK_WEBHOOK_ALLOW_LOOPBACK=true FRONTDESK_RATE_LIMIT_PER_MINUTE=0
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
