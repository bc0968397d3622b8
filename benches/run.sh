#!/usr/bin/env bash
# Runs the widget WebSocket benchmarks against a freshly started server.
#
#   benches/run.sh sqlite|postgres
#
# The server runs pinned to core 0 with one HTTP worker; the load generator (benches/loadgen.rs)
# runs pinned to core 1. Every measurement gets a freshly started server with an empty database
# (a temporary data directory; for postgres also a fresh database, dropped afterwards), so each
# baseline is clean. Sizes can be overridden from the environment, e.g. for a quick check:
#
#   IDLE_SIZES="1000" RATES="200" RATE_SECS=5 MAX_CONNS=50 MAX_SECS=5 benches/run.sh sqlite
#
# An empty list skips that part (IDLE_SIZES="" runs no idle test).
#
# Every `RESULT {json}` line the load generator prints is collected, labelled, in $RESULTS
# (default /tmp/frontdesk-bench-<backend>.txt) and repeated at the end.
set -euo pipefail

BACKEND=${1:-}
case "$BACKEND" in
sqlite | postgres) ;;
*)
    echo "usage: $0 sqlite|postgres" >&2
    exit 2
    ;;
esac

IDLE_SIZES=${IDLE_SIZES-"1000 5000 15000"}
IDLE_HOLD=${IDLE_HOLD:-5}
RATES=${RATES-"200 1000 5000"}
RATE_CONNS=${RATE_CONNS:-500}
RATE_SECS=${RATE_SECS:-15}
MAX_CONNS=${MAX_CONNS-"200 1000"} # one closed-loop run per size
MAX_SECS=${MAX_SECS:-20}
MAX_INFLIGHT=${MAX_INFLIGHT:-1}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-300} # seconds any one load generator run may take
RESULTS=${RESULTS:-/tmp/frontdesk-bench-$BACKEND.txt}

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
ulimit -n 20000
prepare_binaries loadgen
LOADGEN=$BENCH

# run LABEL ARGS...: one load generator run against a fresh server.
run() {
    local label=$1
    shift
    start_server
    echo >&2
    echo "## $BACKEND $label (server pid $SERVER_PID, port $PORT, bot $BOT)" >&2
    local out=$RUN_DIR/loadgen.out
    local status=0
    timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$LOADGEN" "$@" \
        --url "ws://127.0.0.1:$PORT/ws/widget" --bot "$BOT" --pid "$SERVER_PID" | tee "$out" || status=$?
    local errors warns
    errors=$(grep -c 'ERROR' "$RUN_DIR/stderr" || true)
    warns=$(grep -c 'WARN' "$RUN_DIR/stderr" || true)
    echo "  server log: $errors ERROR lines, $warns WARN lines" >&2
    if [[ "$errors" != 0 ]]; then
        # Without colours and timestamps, so repeats fold together.
        sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' "$RUN_DIR/stderr" | grep 'ERROR' | cut -c1-200 |
            sort | uniq -c | sort -rn | head -n 5 >&2
    fi
    if [[ $status != 0 ]]; then
        echo "  load generator exited with status $status" >&2
    fi
    sed -n "s/^RESULT /RESULT $BACKEND $label server_errors=$errors /p" "$out" >>"$RESULTS"
    stop_server
}

for n in $IDLE_SIZES; do
    run "idle-$n" idle --conns "$n" --hold "$IDLE_HOLD"
done
for r in $RATES; do
    run "rate-$r" rate --conns "$RATE_CONNS" --rate "$r" --secs "$RATE_SECS"
done
for c in $MAX_CONNS; do
    run "max-$c" max --conns "$c" --secs "$MAX_SECS" --inflight "$MAX_INFLIGHT"
done

echo
echo "## results ($BACKEND), also in $RESULTS"
cat "$RESULTS"
