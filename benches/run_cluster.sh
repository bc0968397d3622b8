#!/usr/bin/env bash
# Cross-node benchmarks: three nodes sharing one PostgreSQL database and one Redis, against the
# same load on one node.
#
#   benches/run_cluster.sh [cluster] [single] [throughput] [throughput-single] [forwarded]
#
# All five parts by default. For a quick check:
#
#   CONVERSATIONS=100 AGENTS=5 RATES=50 TP_RATES=200 FWD_RATES=100 SECS=5 WARMUP=3 RESULTS_DIR=/tmp \
#       benches/run_cluster.sh
#
# Each run (one per part and rate) gets a fresh PostgreSQL database (dropped afterwards), made by
# `frontdesk migrate` and a workspace from `frontdesk workspace create --demo`, and a fresh Redis
# key prefix (FRONTDESK_REDIS_PREFIX, its keys deleted afterwards). Every node runs with
# REDIS_URL set, the REST rate limiter off, one worker, its own port and data directory, all
# nodes pinned to core SERVER_CORE; the benchmark runs pinned to core CLIENT_CORE. Before the
# benchmark starts, every node's /readyz must show Redis `ok`, events `listening` and all the
# run's nodes.
#
# Delivery to the agents (benches/agents.rs; AGENTS agents, CONVERSATIONS widget conversations,
# each watched by one agent, each rate in RATES for WARMUP + SECS seconds):
#
# * cluster: three nodes, A, B and C. The visitors' widget sockets go to node A (`--url`), where
#   their conversations are written (A owns them: it takes each one's lease at its first
#   message); the agents are created over REST on node B and open their /ws/agent sockets there
#   (`--agent-url`), so every message an agent sees was stored on A, published through Redis,
#   and delivered by B. Node C serves nothing: it is a member that hears (and ignores) the whole
#   cluster's events.
# * single: one node, visitors and agents both on it (REDIS_URL set all the same, so it publishes
#   every event to Redis too: only the placement differs).
#
# Chat throughput (benches/loadgen.rs `rate`: TP_CONNS widget conversations, an open-loop
# schedule of R visitor messages/s in all for WARMUP + SECS seconds, the first WARMUP left out):
#
# * throughput: three nodes; conversation i's socket on node i mod 3, which owns it (each node
#   serves a third of the conversations itself), for each R in TP_RATES.
# * throughput-single: the same load on one node, for each R in TP_RATES.
# * forwarded: three nodes; conversation i is opened on node i mod 3 and sends one message there
#   (that node owns it), then its socket moves to node (i + 1) mod 3: every measured message
#   arrives on a node that does not own its conversation and is forwarded to the owner, its ack
#   comes back through the owner and its reply through the event bus; for each R in FWD_RATES.
#
# Rates run in increasing order, each rate's parts one after another. `RESULT {json}` lines (the
# benchmark's, and a `nodes` line per run with each node's CPU over the run, its log's ERROR and
# WARN lines, and its bus and ownership counters from /metrics), with the machine's
# description, go to $RESULTS (default $RESULTS_DIR/$DATE-cluster.txt, RESULTS_DIR default
# benches/results), and are repeated at the end. A node that logged ERROR or WARN lines gets a
# summary of them (each kind counted, then the first 50) in ${RESULTS%.txt}-logs/.
set -euo pipefail

PARTS=("$@")
[[ ${#PARTS[@]} == 0 ]] && PARTS=(cluster single throughput throughput-single forwarded)
for part in "${PARTS[@]}"; do
    case "$part" in
    cluster | single | throughput | throughput-single | forwarded) ;;
    *)
        echo "usage: $0 [cluster] [single] [throughput] [throughput-single] [forwarded]" >&2
        exit 2
        ;;
    esac
done

AGENTS=${AGENTS:-20}
CONVERSATIONS=${CONVERSATIONS:-1000}
RATES=${RATES-"150"} # visitor messages per second over all conversations, one run each
TP_CONNS=${TP_CONNS:-500}
TP_RATES=${TP_RATES-"500 1000 2000 4000"}
FWD_RATES=${FWD_RATES-"150 500"}
SECS=${SECS:-60}     # measured window
WARMUP=${WARMUP:-10} # sending before it
DRAIN=${DRAIN:-5}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
DATE=${DATE:-$(date +%F)}

cd "$(dirname "$0")/.."
RESULTS_DIR=${RESULTS_DIR:-benches/results}
RESULTS=${RESULTS:-$RESULTS_DIR/$DATE-cluster.txt}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/frontdesk-target}

# shellcheck source=benches/lib.sh
source benches/lib.sh
ulimit -n 20000
BACKEND=postgres

if ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
    echo "Redis does not answer at $REDIS_URL; start it, e.g.:" >&2
    echo "  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no" >&2
    exit 1
fi
prepare_binaries agents loadgen
LOADGEN=$WORK/loadgen

NODE_PIDS=()
NODE_PORTS=()
PREFIX=""

# stop_nodes: every node of the run, then (stop_server) the run's database; and the Redis keys.
stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${NODE_PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    NODE_PIDS=()
    NODE_PORTS=()
    stop_server
    if [[ -n "$PREFIX" ]]; then
        redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" | while read -r k; do
            redis-cli -u "$REDIS_URL" del "$k" >/dev/null
        done
        PREFIX=""
    fi
}

cleanup_cluster() {
    stop_nodes
    rm -rf "$WORK"
}
trap cleanup_cluster EXIT


# CPU ticks (user + system) a process has used.
ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# start_nodes N: a fresh database and Redis prefix, a workspace made with the CLI, then N nodes;
# sets NODE_PIDS, NODE_PORTS, KEY, BOT and RUN_DIR once every node is ready and sees all N.
start_nodes() {
    local n=$1
    RUN_NO=$((RUN_NO + 1))
    RUN_DIR=$WORK/run$RUN_NO
    mkdir -p "$RUN_DIR"
    DB_NAME=frontdesk_bench_cluster_$$_$RUN_NO
    PREFIX="fdbench-$$-$RUN_NO:"
    psql "$PG_URL/postgres" -qAtc "create database $DB_NAME" >/dev/null
    local env=(DATABASE_URL="$PG_URL/$DB_NAME" REDIS_URL="$REDIS_URL" FRONTDESK_REDIS_PREFIX="$PREFIX"
        FRONTDESK_DEMO=false FRONTDESK_RATE_LIMIT_PER_MINUTE=0 "${ADMISSION_OFF[@]}" RUST_LOG=warn)
    mkdir -p "$RUN_DIR/cli"
    env "${env[@]}" FRONTDESK_DATA_DIR="$RUN_DIR/cli" "$SERVER" migrate >/dev/null
    local created
    created=$(env "${env[@]}" FRONTDESK_DATA_DIR="$RUN_DIR/cli" "$SERVER" workspace create --name "Cluster bench" --demo)
    KEY=$(grep -o '"api_key": *"[^"]*"' <<<"$created" | head -n1 | cut -d'"' -f4)
    BOT=$(grep -o '"bot_id": *"[^"]*"' <<<"$created" | head -n1 | cut -d'"' -f4)
    if [[ -z "$KEY" || -z "$BOT" ]]; then
        echo "frontdesk workspace create printed no api_key or bot_id" >&2
        exit 1
    fi
    local i pid port
    for i in $(seq 0 $((n - 1))); do
        mkdir -p "$RUN_DIR/node$i/data"
        env "${env[@]}" FRONTDESK_DATA_DIR="$RUN_DIR/node$i/data" FRONTDESK_BIND=127.0.0.1:0 FRONTDESK_WORKERS=1 \
            taskset -c "$SERVER_CORE" "$SERVER" serve >"$RUN_DIR/node$i/stdout" 2>"$RUN_DIR/node$i/stderr" &
        NODE_PIDS+=($!)
    done
    for i in $(seq 0 $((n - 1))); do
        pid=${NODE_PIDS[$i]}
        port=$(await_port "$pid" "$RUN_DIR/node$i")
        NODE_PORTS+=("$port")
    done
    # Ready: Redis ok, the bus listening, and every node of this run in the membership.
    local ready
    for i in $(seq 0 $((n - 1))); do
        ready=""
        for _ in $(seq 300); do
            if curl -fsS "http://127.0.0.1:${NODE_PORTS[$i]}/readyz" 2>/dev/null |
                jq -e --argjson n "$n" '.redis.status == "ok" and .redis.events == "listening" and (.redis.nodes | length) == $n' >/dev/null 2>&1; then
                ready=yes
                break
            fi
            sleep 0.1
        done
        if [[ -z "$ready" ]]; then
            echo "node $i (port ${NODE_PORTS[$i]}) not ready with Redis within 30 s:" >&2
            curl -sS "http://127.0.0.1:${NODE_PORTS[$i]}/readyz" >&2 || true
            exit 1
        fi
    done
    sleep 1
}

# The /metrics counters and gauges of the `nodes` lines, without `frontdesk_` (and `_total` in
# the JSON).
METRICS=(bus_published_total bus_received_total bus_dropped_total bus_lag_max_ms leases_held
    commands_forwarded_total commands_served_total leases_acquired_total leases_lost_total)

# node_metrics NODE: the node's METRICS as JSON fields ("bus_published":N,…; null if missing).
node_metrics() {
    curl -fsS "http://127.0.0.1:${NODE_PORTS[$1]}/metrics" 2>/dev/null | awk -v names="${METRICS[*]}" '
        { split($1, name, "{"); value[name[1]] = $2 }
        END {
            n = split(names, m, " ")
            for (i = 1; i <= n; i++) {
                key = m[i]
                sub(/_total$/, "", key)
                v = ("frontdesk_" m[i]) in value ? value["frontdesk_" m[i]] : "null"
                printf "%s\"%s\":%s", (i > 1 ? "," : ""), key, v
            }
        }'
}

# rates_of PART: the rates the part runs at.
rates_of() {
    case "$1" in
    cluster | single) echo "$RATES" ;;
    throughput | throughput-single) echo "$TP_RATES" ;;
    forwarded) echo "$FWD_RATES" ;;
    esac
}

# run_part PART RATE: one run on fresh nodes; its RESULT lines go to $RESULTS.
run_part() {
    local part=$1 rate=$2 nodes=3
    [[ "$part" == single || "$part" == throughput-single ]] && nodes=1
    start_nodes "$nodes"
    local bench placement out=$RUN_DIR/bench.out
    case "$part" in
    cluster | single)
        local visitors_port=${NODE_PORTS[0]} agents_port=${NODE_PORTS[$((nodes > 1 ? 1 : 0))]}
        placement="visitors on $visitors_port, agents on $agents_port; $AGENTS agents, $CONVERSATIONS conversations"
        bench=("$BENCH" --url "http://127.0.0.1:$visitors_port" --agent-url "http://127.0.0.1:$agents_port"
            --key "$KEY" --bot "$BOT" --pid "${NODE_PIDS[0]}" --agents "$AGENTS"
            --conversations "$CONVERSATIONS" --rate "$rate" --secs "$SECS" --warmup "$WARMUP" --drain "$DRAIN")
        ;;
    *)
        local urls pids port
        urls=$(for port in "${NODE_PORTS[@]}"; do echo "ws://127.0.0.1:$port/ws/widget"; done | paste -sd,)
        pids=$(IFS=,; echo "${NODE_PIDS[*]}")
        placement="$TP_CONNS widget conversations spread over the nodes"
        bench=("$LOADGEN" rate --url "$urls" --bot "$BOT" --pid "$pids" --conns "$TP_CONNS" --rate "$rate"
            --secs "$(echo "$SECS + $WARMUP" | bc)" --warmup "$WARMUP" --drain "$DRAIN")
        if [[ "$part" == forwarded ]]; then
            placement="$placement, each socket one node on from the conversation's owner"
            bench+=(--forward 1)
        fi
        ;;
    esac
    echo >&2
    echo "## $part: $nodes node(s) on ports ${NODE_PORTS[*]} (pids ${NODE_PIDS[*]}); $placement; $rate msg/s" >&2
    echo "# $part rate-$rate: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS"
    local before=() pid
    for pid in "${NODE_PIDS[@]}"; do before+=("$(ticks "$pid")"); done
    local began status=0
    began=$(date +%s.%N)
    timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLIENT_CORE" "${bench[@]}" | tee "$out" || status=$?
    local took hz i cpu errors warns errors_all=0 warns_all=0 node_json=()
    took=$(echo "$(date +%s.%N) - $began" | bc)
    hz=$(getconf CLK_TCK)
    for i in $(seq 0 $((nodes - 1))); do
        pid=${NODE_PIDS[$i]}
        printf -v cpu '%.1f' "$(echo "scale=3; ($(ticks "$pid") - ${before[$i]}) * 100 / $hz / $took" | bc)"
        errors=$(grep -c 'ERROR' "$RUN_DIR/node$i/stderr" || true)
        warns=$(grep -c 'WARN' "$RUN_DIR/node$i/stderr" || true)
        errors_all=$((errors_all + errors))
        warns_all=$((warns_all + warns))
        echo "  node $i: $cpu % of a core over the run ($took s); log: $errors ERROR, $warns WARN lines" >&2
        if [[ "$errors" != 0 || "$warns" != 0 ]]; then
            local log_dir=${RESULTS%.txt}-logs
            mkdir -p "$log_dir"
            # Kept beside the results, as the run's folder is deleted: each kind of line with its
            # count, then the first 50 lines as written.
            {
                sed -E 's/\x1b\[[0-9;]*m//g; s/^[^ ]+ +//' "$RUN_DIR/node$i/stderr" | grep -E 'ERROR|WARN' | cut -c1-200 |
                    sort | uniq -c | sort -rn
                echo "--"
                # grep stops itself: `| head` would end it with SIGPIPE, which pipefail makes fatal.
                sed -E 's/\x1b\[[0-9;]*m//g' "$RUN_DIR/node$i/stderr" | grep -m 50 -E 'ERROR|WARN' || true
            } >"$log_dir/$part-rate-$rate-node$i.log"
            head -n 5 "$log_dir/$part-rate-$rate-node$i.log" >&2
        fi
        node_json+=("{\"node\":$i,\"port\":${NODE_PORTS[$i]},\"cpu_pct_whole_run\":${cpu:-null},\"errors\":$errors,\"warns\":$warns,$(node_metrics "$i" || true)}")
    done
    if [[ $status != 0 ]]; then
        echo "  benchmark exited with status $status" >&2
    fi
    sed -n "s/^RESULT /RESULT $part rate-$rate server_errors=$errors_all server_warns=$warns_all /p" "$out" >>"$RESULTS"
    # A node that did not answer /metrics leaves a trailing comma: drop it so the line stays JSON.
    local nodes_line
    nodes_line=$(IFS=,; echo "[${node_json[*]}]" | sed -E 's/,}/}/g')
    echo "RESULT $part rate-$rate {\"phase\":\"nodes\",\"run_secs\":$took,\"nodes\":$nodes_line}" >>"$RESULTS"
    stop_nodes
}

version="PostgreSQL $(psql "$PG_URL/postgres" -qAtc "show server_version" 2>/dev/null || echo "?"), Redis $(redis-cli -u "$REDIS_URL" info server | sed -n 's/^redis_version:\([^\r]*\).*/\1/p')"
machine "$version; every node on core $SERVER_CORE (1 worker each), benchmark on core $CLIENT_CORE, PostgreSQL and Redis unpinned; parts: ${PARTS[*]}; AGENTS=$AGENTS CONVERSATIONS=$CONVERSATIONS RATES=\"$RATES\" TP_CONNS=$TP_CONNS TP_RATES=\"$TP_RATES\" FWD_RATES=\"$FWD_RATES\" SECS=$SECS WARMUP=$WARMUP DRAIN=$DRAIN" >"$RESULTS"
{
    echo "# cluster: visitors on node A, agents (REST and /ws/agent) on node B, node C serves nothing; single: one node serves both"
    echo "# throughput: conversation i's widget socket on node i mod 3, its owner; throughput-single: one node"
    echo "# forwarded: conversation i owned by node i mod 3 (its first message sent there), its socket on node (i + 1) mod 3"
} >>"$RESULTS"

all_rates=$(for part in "${PARTS[@]}"; do rates_of "$part"; done | tr ' ' '\n' | grep . | sort -g -u)
for rate in $all_rates; do
    for part in "${PARTS[@]}"; do
        if [[ " $(rates_of "$part") " == *" $rate "* ]]; then
            run_part "$part" "$rate"
        fi
    done
done

echo
echo "## $RESULTS"
cat "$RESULTS"
