#!/usr/bin/env bash
# Measures `imsitrace analyze` end to end on the large synthetic capture: frames per second and
# peak memory with 1 and 2 shards, with the whole process pinned to one core, and with the
# microcloud on a Redis server (`--redis`), printing each Redis run's rate as a share of the
# embedded run's. The Redis server is started by this script on a free loopback port with an
# empty temporary directory and no persistence, and stopped at the end.
# Generates the capture (about 190 MB) into target/bench-data (under CARGO_TARGET_DIR when that
# is set) on the first run. Needs python3
# with scapy and cryptography for the generator; they are installed with pip when missing.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
"$repo_root/scripts/setup.sh"

# shellcheck source=scripts/lib/bench-common.sh
source "$repo_root/scripts/lib/bench-common.sh"

# Prints the CPU time, user plus system in seconds, that the bench's redis-server has used.
redis_cpu() {
    redis-cli -h 127.0.0.1 -p "$redis_port" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ { total += $2 } END { printf "%.2f", total }'
}

# Runs one analyze command with --json and prints frames/s, wall time and peak RSS. Sets
# last_rate to the frames/s of the run.
run() {
    local label=$1
    shift
    local times
    times=$(mktemp)
    /usr/bin/time -f '%e %M' -o "$times" "$@" --json >"$times.json"
    last_rate=$(python3 - "$label" "$times" <<'PY'
import json, sys
label, times = sys.argv[1], sys.argv[2]
wall, rss_kb = open(times).read().split()
summary = json.load(open(times + ".json"))
print(f"{label:<28} {summary['capture']['frames']:>9} frames  {summary['frames_per_s']:>12,.0f} frames/s  "
      f"wall {float(wall):.2f} s  peak RSS {int(rss_kb) / 1024:.0f} MiB", file=sys.stderr)
print(summary['frames_per_s'])
PY
)
    rm -f "$times" "$times.json"
}

# Runs analyze with --redis on an emptied server and prints the rate as a share of
# `embedded_rate` (frames/s of the embedded run with the same shards), with the server's CPU time.
run_redis() {
    local label=$1 embedded_rate=$2
    shift 2
    redis-cli -h 127.0.0.1 -p "$redis_port" flushall >/dev/null
    local cpu_before
    cpu_before=$(redis_cpu)
    run "$label" "$@" --redis "redis://127.0.0.1:$redis_port/"
    python3 -c 'import sys; rate, embedded, before, after = map(float, sys.argv[1:]); print(" " * 29 + f"{rate / embedded:.0%} of the embedded rate, redis-server CPU {after - before:.2f} s")' \
        "$last_rate" "$embedded_rate" "$cpu_before" "$(redis_cpu)"
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
start_redis
echo "$(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$redis_port"
for repeat in 1 2 3; do
    run "1 shard" "$binary" analyze "$capture" --shards 1
    embedded_1=$last_rate
    run "2 shards" "$binary" analyze "$capture" --shards 2
    embedded_2=$last_rate
    run "1 shard, pinned to 1 core" taskset -c 0 "$binary" analyze "$capture" --shards 1
    run_redis "1 shard, --redis" "$embedded_1" "$binary" analyze "$capture" --shards 1
    run_redis "2 shards, --redis" "$embedded_2" "$binary" analyze "$capture" --shards 2
done
