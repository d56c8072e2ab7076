#!/usr/bin/env bash
# Measures `imsitrace analyze` end to end on the large synthetic capture: frames per second and
# peak memory with 1 and 2 shards, and with the whole process pinned to one core. Generates the
# capture (about 190 MB) into target/bench-data on the first run. Needs python3 with scapy and
# cryptography for the generator; they are installed with pip when missing.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
"$repo_root/scripts/setup.sh"

data_dir=target/bench-data
capture=$data_dir/large.pcap
if [[ ! -f $capture ]]; then
    python3 -c 'import scapy, cryptography' 2>/dev/null || python3 -m pip install --quiet scapy cryptography
    mkdir -p "$data_dir"
    echo "generating $capture (about a minute)"
    python3 tools/gtpgen/gtpgen.py --subscribers 20000 --duration-s 900 --seed 4 --packets-target 1000000 --out "$data_dir/large"
fi

cargo build --release --quiet -p imsitrace-node
binary=target/release/imsitrace

run() {
    local label=$1
    shift
    local times
    times=$(mktemp)
    /usr/bin/time -f '%e %M' -o "$times" "$@" --json >"$times.json"
    python3 - "$label" "$times" <<'PY'
import json, sys
label, times = sys.argv[1], sys.argv[2]
wall, rss_kb = open(times).read().split()
summary = json.load(open(times + ".json"))
print(f"{label:<28} {summary['capture']['frames']:>9} frames  {summary['frames_per_s']:>12,.0f} frames/s  "
      f"wall {float(wall):.2f} s  peak RSS {int(rss_kb) / 1024:.0f} MiB")
PY
    rm -f "$times" "$times.json"
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
for repeat in 1 2 3; do
    run "1 shard" "$binary" analyze "$capture" --shards 1
    run "2 shards" "$binary" analyze "$capture" --shards 2
    run "1 shard, pinned to 1 core" taskset -c 0 "$binary" analyze "$capture" --shards 1
done
