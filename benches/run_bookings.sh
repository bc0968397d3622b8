#!/usr/bin/env bash
# Runs the booking benchmark (benches/bookings.rs) against a freshly started server.
#
#   benches/run_bookings.sh sqlite|postgres
#
# The server runs pinned to core 0 with one HTTP worker, the demo workspace (3 doctors, the
# 30-minute "General Consultation" with a 10-minute buffer) and the REST rate limiter off; the
# benchmark runs pinned to core 1. Every run gets a freshly started server with an empty database
# (a temporary data directory; for postgres also a fresh database, dropped afterwards). In each
# run the benchmark brings the workspace to 20 doctors (Mon–Fri 09:00–17:00), times availability
# queries on the empty calendars, books BOOKINGS distinct free slots from CONCURRENCY clients, has
# 32 clients race for 50 slots, times availability queries again (one client, then 8) and checks
# every confirmed booking. Runs are "BOOKINGS:CONCURRENCY" pairs and can be overridden from the
# environment, e.g. for a quick check:
#
#   RUNS="300:8" AVAILABILITY=50 benches/run_bookings.sh sqlite
#
# Every `RESULT {json}` line the benchmark prints is collected, labelled, in $RESULTS
# (default /tmp/frontdesk-bench-bookings-<backend>.txt) and repeated at the end.
set -euo pipefail

BACKEND=${1:-}
case "$BACKEND" in
sqlite | postgres) ;;
*)
    echo "usage: $0 sqlite|postgres" >&2
    exit 2
    ;;
esac

RUNS=${RUNS-"3000:8 3000:32"}
DOCTORS=${DOCTORS:-20}
RANGE_DAYS=${RANGE_DAYS:-30}           # days one availability query spans
AVAILABILITY=${AVAILABILITY:-500}      # availability queries after the bookings, per mode
AVAILABILITY_CONC=${AVAILABILITY_CONC:-8}
BASELINE=${BASELINE:-100}              # availability queries before any booking
CONTENDED_SLOTS=${CONTENDED_SLOTS:-50} # 0 skips the race
CONTENDED_CLIENTS=${CONTENDED_CLIENTS:-32}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-900} # seconds any one benchmark run may take
RESULTS=${RESULTS:-/tmp/frontdesk-bench-bookings-$BACKEND.txt}

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
ulimit -n 20000
prepare_binaries bookings

# run LABEL ARGS...: one benchmark run against a fresh server.
run() {
    local label=$1
    shift
    start_server FRONTDESK_RATE_LIMIT_PER_MINUTE=0
    echo >&2
    echo "## $BACKEND $label (server pid $SERVER_PID, port $PORT)" >&2
    local out=$RUN_DIR/bookings.out
    local status=0
    timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" "$@" \
        --url "http://127.0.0.1:$PORT" --key "$KEY" --pid "$SERVER_PID" --doctors "$DOCTORS" \
        --range-days "$RANGE_DAYS" --availability "$AVAILABILITY" --availability-concurrency "$AVAILABILITY_CONC" \
        --baseline "$BASELINE" --contended-slots "$CONTENDED_SLOTS" --contended-clients "$CONTENDED_CLIENTS" |
        tee "$out" || status=$?
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
    bookings=${r%%:*}
    conc=${r##*:}
    run "bookings-$bookings-c$conc" --bookings "$bookings" --concurrency "$conc"
done

echo
echo "## results ($BACKEND), also in $RESULTS"
cat "$RESULTS"
