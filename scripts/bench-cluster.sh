#!/usr/bin/env bash
# Measures session events across the cluster on the large synthetic capture: probe A reads
# only its GTP-C frames, probe B only its GTP-U frames, in one cluster with a collector and a
# private redis-server, all on 127.0.0.1. Probe B's summary gives the events per second it
# received and the delay from probe A's broadcast to probe B's receipt (wall clock of the one
# host). Two runs: the inputs read as fast as possible, then paced at REPLAY_SPEED times the
# capture's own pace (default 30, so the 900 s of packets take about 30 s).
# Needs tshark (installed by scripts/setup.sh) to split the capture.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
"$repo_root/scripts/setup.sh"

# shellcheck source=scripts/lib/bench-common.sh
source "$repo_root/scripts/lib/bench-common.sh"

replay_speed=${REPLAY_SPEED:-30}
work_dir=$(mktemp -d)
node_pids=()

stop_all() {
    for pid in "${node_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    node_pids=()
    stop_redis
    rm -rf "$work_dir"
}
trap stop_all EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Prints the [cluster] section of a node listening on port $1 with the seeds $2 (TOML array).
cluster_section() {
    printf '[cluster]\nlisten_address = "127.0.0.1"\nport = %s\nseeds = %s\n' "$1" "$2"
}

# Writes the config of a probe named $1 that reads $2 at speed $3, listening on $4, seeds $5.
write_probe() {
    cat >"$work_dir/$1.toml" <<TOML
[node]
name = "$1"
roles = ["probe"]

[microcloud]
redis = "redis://127.0.0.1:$redis_port/"

[probe]
inputs = ["$2"]
shards = 2
replay_speed = $3
lookups = false
wait_for_probes = 1

$(cluster_section "$4" "$5")
TOML
}

write_collector() {
    cat >"$work_dir/collector.toml" <<TOML
[node]
name = "collector"
roles = ["collector"]

[microcloud]
redis = "redis://127.0.0.1:$redis_port/"

[report]
outdir = "$work_dir/reports"

$(cluster_section "$1" "[]")
TOML
}

start_node() {
    IMSITRACE_CLUSTER__COOKIE=bench-cluster-cookie-0123456789 NO_COLOR=1 \
        "$binary" node --config "$work_dir/$1.toml" >"$work_dir/$1.out" 2>"$work_dir/$1.log" &
    node_pids+=($!)
}

# Waits until probe $1 printed its summary's cluster lines; fails after 10 minutes.
wait_for_summary() {
    for _ in $(seq 6000); do
        if grep -q "events/s received" "$work_dir/$1.out" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "probe $1 printed no summary within 10 minutes; its log:" >&2
    cat "$work_dir/$1.log" >&2
    return 1
}

# Runs the collector and both probes with the inputs at speed $1 and prints probe A's events
# sent and probe B's cluster lines.
run_cluster() {
    local speed=$1 collector_port port_a port_b
    collector_port=$(free_port)
    port_a=$(free_port)
    port_b=$(free_port)
    redis-cli -h 127.0.0.1 -p "$redis_port" flushall >/dev/null
    write_collector "$collector_port"
    write_probe probe-a "$work_dir/cp.pcap" "$speed" "$port_a" "[\"127.0.0.1:$collector_port\"]"
    write_probe probe-b "$work_dir/up.pcap" "$speed" "$port_b" "[\"127.0.0.1:$collector_port\", \"127.0.0.1:$port_a\"]"
    start_node collector
    start_node probe-a
    start_node probe-b
    wait_for_summary probe-a
    wait_for_summary probe-b
    echo "replay speed $speed (0: as fast as possible)"
    echo "  probe A: $(grep '^cluster ' "$work_dir/probe-a.out" | sed 's/;.*//' | sed 's/^cluster *//')"
    grep -A1 '^cluster ' "$work_dir/probe-b.out" | sed 's/^/  probe B: /'
    for pid in "${node_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    node_pids=()
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo "splitting $capture by UDP port"
tshark -r "$capture" -Y 'udp.port == 2123' -w "$work_dir/cp.pcap" 2>/dev/null
tshark -r "$capture" -Y 'udp.port == 2152' -w "$work_dir/up.pcap" 2>/dev/null
start_redis
run_cluster 0
run_cluster "$replay_speed"
