#!/usr/bin/env bash
# Runs the knowledge benchmark (benches/knowledge.rs): retrieval latency in-process, then
# ingestion through a freshly started server on each backend.
#
#   benches/run_knowledge.sh [retrieval] [sqlite] [postgres]     # all three by default
#
# retrieval: no server; the benchmark builds one bot's index from CHUNKS synthetic chunks and
# QA pairs and times QUESTIONS answers and searches, pinned to core $SERVER_CORE.
# sqlite / postgres: a fresh server (empty database: a temporary data directory; for postgres a
# fresh database, dropped afterwards) pinned to core 0 with one worker, allowed to fetch from
# 127.0.0.1, with a workspace made by `frontdesk workspace create --demo`. The benchmark, pinned
# to core 1, serves a PAGES-page site on loopback, has the server crawl it, times SEARCHES search
# requests over it, then adds text sources of TEXT_CHARS characters (one, then TEXT_SOURCES at
# once). For a quick check:
#
#   PAGES=50 SEARCHES=50 TEXT_SOURCES=2 CHUNKS=2000 QUESTIONS=200 benches/run_knowledge.sh
#
# Each part's `RESULT {json}` lines, with the machine's description, go to
# $RESULTS_DIR/$DATE-knowledge-<part>.txt (default /tmp), and are repeated at the end.
set -euo pipefail

PARTS=("$@")
[[ ${#PARTS[@]} == 0 ]] && PARTS=(retrieval sqlite postgres)
for part in "${PARTS[@]}"; do
    case "$part" in
    retrieval | sqlite | postgres) ;;
    *)
        echo "usage: $0 [retrieval] [sqlite] [postgres]" >&2
        exit 2
        ;;
    esac
done

CHUNKS=${CHUNKS:-10000}
QA=${QA:-200}
QUESTIONS=${QUESTIONS:-2000}
PAGES=${PAGES:-200}
SEARCHES=${SEARCHES:-500}
TEXT_CHARS=${TEXT_CHARS:-199000} # the server accepts at most 200,000 characters per text source
TEXT_SOURCES=${TEXT_SOURCES:-5}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-1200}
RESULTS_DIR=${RESULTS_DIR:-/tmp}
DATE=${DATE:-$(date +%F)}

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
BACKEND=sqlite
RESULTS=$RESULTS_DIR/$DATE-knowledge-${PARTS[0]}.txt
prepare_binaries knowledge

machine() {
    echo "# $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "# $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
    echo "# $(rustc --version 2>/dev/null || true); $1"
}

# start_knowledge_server: a fresh database, a workspace made with the CLI, then the server; sets
# SERVER_PID, PORT, KEY and RUN_DIR.
start_knowledge_server() {
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
        FRONTDESK_FETCH_ALLOW=127.0.0.1/32 FRONTDESK_CRAWL_MAX_PAGES=1000 FRONTDESK_CRAWL_MAX_DEPTH=10
        FRONTDESK_RATE_LIMIT_PER_MINUTE=0 "${ADMISSION_OFF[@]}" RUST_LOG=warn)
    KEY=$(env "${env[@]}" "$SERVER" workspace create --name "Knowledge bench" --demo |
        grep -o '"api_key": *"[^"]*"' | head -n1 | cut -d'"' -f4)
    if [[ -z "$KEY" ]]; then
        echo "frontdesk workspace create printed no api_key" >&2
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
    RESULTS=$RESULTS_DIR/$DATE-knowledge-$part.txt
    ALL+=("$RESULTS")
    out=$WORK/$part.out
    echo >&2
    if [[ "$part" == retrieval ]]; then
        echo "## retrieval: $CHUNKS chunks, $QA Q&A pairs, $QUESTIONS questions (core $SERVER_CORE)" >&2
        machine "in-process, pinned to core $SERVER_CORE; CHUNKS=$CHUNKS QA=$QA QUESTIONS=$QUESTIONS" >"$RESULTS"
        timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$SERVER_CORE" "$BENCH" retrieval \
            --chunks "$CHUNKS" --qa "$QA" --questions "$QUESTIONS" | tee "$out"
        sed -n "s/^RESULT /RESULT retrieval /p" "$out" >>"$RESULTS"
        continue
    fi
    BACKEND=$part
    start_knowledge_server
    echo "## $BACKEND ingestion (server pid $SERVER_PID, port $PORT)" >&2
    version=sqlite
    if [[ "$BACKEND" == postgres ]]; then
        version=$(psql "$PG_URL/postgres" -qAtc "show server_version" 2>/dev/null || echo "?")
        version="PostgreSQL $version"
    else
        version="SQLite (bundled with the server)"
    fi
    machine "$version; server on core $SERVER_CORE (1 worker), benchmark and site on core $CLIENT_CORE; PAGES=$PAGES SEARCHES=$SEARCHES TEXT_CHARS=$TEXT_CHARS TEXT_SOURCES=$TEXT_SOURCES" >"$RESULTS"
    status=0
    timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "$BENCH" ingest \
        --url "http://127.0.0.1:$PORT" --key "$KEY" --pid "$SERVER_PID" --pages "$PAGES" \
        --searches "$SEARCHES" --text-chars "$TEXT_CHARS" --text-sources "$TEXT_SOURCES" | tee "$out" || status=$?
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
    sed -n "s/^RESULT /RESULT $BACKEND server_errors=$errors server_warns=$warns /p" "$out" >>"$RESULTS"
    stop_server
done

echo
for f in "${ALL[@]}"; do
    echo "## $f"
    cat "$f"
done
