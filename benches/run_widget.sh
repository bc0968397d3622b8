#!/usr/bin/env bash
# Runs the widget benchmark (benches/widget_load.rs): the widget's bytes (raw, gzip, br) and, in
# headless Chromium on loopback, the time from inserting the embed script to the launcher shown
# and from clicking it to the welcome message shown, cold (a fresh browser profile each run) and
# warm (cached assets, a new conversation).
#
#   benches/run_widget.sh                 # RUNS=20 of each
#   RUNS=5 RESULTS_DIR=/tmp benches/run_widget.sh
#
# The server is a fresh release build with the demo workspace (SQLite in a temporary data
# directory), pinned to core 0 with one worker; the benchmark, its chromedriver and Chromium
# (Debian's chromium and chromium-driver: scripts/test installs them) run pinned to core 1.
#
# The `RESULT {json}` lines, with the machine's description, go to
# $RESULTS_DIR/$DATE-widget-sqlite.txt (default benches/results), and are repeated at the end.
set -euo pipefail

RUNS=${RUNS:-20}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
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
RESULTS=$RESULTS_DIR/$DATE-widget-sqlite.txt
prepare_binaries widget_load

machine "SQLite (bundled with the server); server on core $SERVER_CORE (1 worker), benchmark and Chromium on core $CLIENT_CORE; $("$CHROMIUM" --version 2>/dev/null | tail -n1); RUNS=$RUNS" >"$RESULTS"

start_server
echo >&2
echo "## widget load: $RUNS cold and $RUNS warm runs (server pid $SERVER_PID, port $PORT)" >&2
out=$RUN_DIR/widget.out
status=0
timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" \
    --url "http://127.0.0.1:$PORT" --bot "$BOT" --runs "$RUNS" --chromium "$CHROMIUM" --chromedriver "$CHROMEDRIVER" |
    tee "$out" || status=$?
errors=$(grep -c 'ERROR' "$RUN_DIR/stderr" || true)
warns=$(grep -c 'WARN' "$RUN_DIR/stderr" || true)
echo "  server log: $errors ERROR lines, $warns WARN lines" >&2
if [[ $status != 0 ]]; then
    echo "  benchmark exited with status $status" >&2
fi
grep -v '^RESULT ' "$out" | sed -n '/^## widget bytes/,$p' | sed 's/^/# /' >>"$RESULTS"
sed -n "s/^RESULT /RESULT sqlite server_errors=$errors server_warns=$warns /p" "$out" >>"$RESULTS"
stop_server

echo
echo "## $RESULTS"
cat "$RESULTS"
exit "$status"
