#!/usr/bin/env bash
# Runs the console benchmark (benches/console_load.rs): the console's bytes (raw, gzip, br), and
# in headless Chromium on loopback the time from clicking "Sign in" to a rendered inbox of 500
# open conversations, cold (a fresh browser profile each run) and warm (cached files), and the
# time from a visitor's hand-off request (a widget socket in the benchmark) to its row queued
# in the open console.
#
#   benches/run_console.sh                    # RUNS=10 of each
#   RUNS=5 CONVERSATIONS=200 RESULTS_DIR=/tmp benches/run_console.sh
#   SCREENSHOTS=/tmp/shots benches/run_console.sh   # also saves the inbox and each hand-off (PNG)
#
# The server is a fresh release build with the demo workspace (SQLite in a temporary data
# directory), pinned to core 0 with one worker; the benchmark, its chromedriver and Chromium
# (Debian's chromium and chromium-driver: scripts/test installs them) run pinned to core 1. The
# conversations are made through the public APIs (widget sockets) before anything is timed.
# The sign-in quotas (5 a minute per account, 20 per address) are off: the benchmark signs the
# same agent in 2 × RUNS + 2 times in a few minutes.
#
# The `RESULT {json}` lines, with the machine's description, go to
# $RESULTS_DIR/$DATE-console-sqlite.txt (default benches/results), and are repeated at the end.
set -euo pipefail

RUNS=${RUNS:-10}
HANDOFFS=${HANDOFFS:-$RUNS}
CONVERSATIONS=${CONVERSATIONS:-500}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}
DATE=${DATE:-$(date +%F)}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432} # unused: SQLite only
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-chromedriver}

cd "$(dirname "$0")/.."
RESULTS_DIR=${RESULTS_DIR:-benches/results}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
BACKEND=sqlite
RESULTS=$RESULTS_DIR/$DATE-console-sqlite.txt
prepare_binaries console_load

machine "SQLite (bundled with the server); server on core $SERVER_CORE (1 worker), benchmark and Chromium on core $CLIENT_CORE; $("$CHROMIUM" --version 2>/dev/null | tail -n1); RUNS=$RUNS HANDOFFS=$HANDOFFS CONVERSATIONS=$CONVERSATIONS; sign-in quotas off" >"$RESULTS"

# Others' work on the machine shows in the times: the load average goes with the results.
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
start_server FRONTDESK_SIGN_IN_PER_ACCOUNT_PER_MINUTE=0 FRONTDESK_SIGN_IN_PER_ADDRESS_PER_MINUTE=0
echo >&2
echo "## console: $CONVERSATIONS conversations, $RUNS cold and $RUNS warm sign-ins, $HANDOFFS hand-offs (server pid $SERVER_PID, port $PORT)" >&2
out=$RUN_DIR/console.out
status=0
timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" \
    --url "http://127.0.0.1:$PORT" --bot "$BOT" --key "$KEY" --conversations "$CONVERSATIONS" \
    --runs "$RUNS" --handoffs "$HANDOFFS" --chromium "$CHROMIUM" --chromedriver "$CHROMEDRIVER" \
    ${SCREENSHOTS:+--screenshots "$SCREENSHOTS"} |
    tee "$out" || status=$?
errors=$(grep -c 'ERROR' "$RUN_DIR/stderr" || true)
warns=$(grep -c 'WARN' "$RUN_DIR/stderr" || true)
echo "  server log: $errors ERROR lines, $warns WARN lines" >&2
if [[ $status != 0 ]]; then
    echo "  benchmark exited with status $status" >&2
fi
grep -v '^RESULT ' "$out" | sed -n '/^## console bytes/,$p' | sed 's/^/# /' >>"$RESULTS"
sed -n "s/^RESULT /RESULT sqlite server_errors=$errors server_warns=$warns /p" "$out" >>"$RESULTS"
stop_server
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"

echo
echo "## $RESULTS"
cat "$RESULTS"
exit "$status"
