#!/usr/bin/env bash
# Measures `imsitrace analyze` on the large synthetic capture side by side with its peers, on
# the same file, read from the page cache after one warm-up read:
# - a bare libpcap read loop (actors/examples/pcap_read_loop.rs), the ceiling of any reader;
# - `imsitrace analyze` with 1 and 2 shards, and with 1 shard pinned to one core;
# - the extraction of one subscriber's frames: `imsitrace analyze --track IMSI` against tshark
#   with GTP session tracking (two passes), both checked against the generator's ground truth;
# - `ndpiReader -t` (nDPI 4.2 of Debian's libndpi-bin) classifying every flow;
# - with --redis, analyze with the microcloud on a Redis server, each rate as a share of the
#   embedded run's. The script starts that redis-server on a free loopback port with an empty
#   temporary directory and no persistence, and stops it at the end.
# Each run is repeated (3 times by default). The script prints every run, then a table of
# medians and the ratios between the tools.
#
# Usage: bench.sh [--repeats N] [--tshark-repeats N] [--redis]
#   --repeats N         runs of each measurement (default 3)
#   --tshark-repeats N  runs of the tshark extraction (default: --repeats, 0 skips it); each
#                       takes minutes
#   --redis             adds the runs with --redis (about 10 s each)
#
# Generates the capture (about 190 MB) into target/bench-data (under CARGO_TARGET_DIR when that
# is set) on the first run. Needs python3 with scapy and cryptography for the generator; they
# are installed with pip when missing.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"

repeats=3
tshark_repeats=
with_redis=false
while (($# > 0)); do
    case $1 in
        --repeats) repeats=${2:?--repeats needs a number of runs}; shift 2 ;;
        --tshark-repeats) tshark_repeats=${2:?--tshark-repeats needs a number of runs}; shift 2 ;;
        --redis) with_redis=true; shift ;;
        *)
            echo "bench.sh: unknown option $1; see the usage at the top of scripts/bench.sh" >&2
            exit 2
            ;;
    esac
done
tshark_repeats=${tshark_repeats:-$repeats}
if [[ ! $repeats =~ ^[1-9][0-9]*$ ]]; then
    echo "bench.sh: invalid value '$repeats' for --repeats; give a whole number of runs, at least 1" >&2
    exit 2
fi
if [[ ! $tshark_repeats =~ ^[0-9]+$ ]]; then
    echo "bench.sh: invalid value '$tshark_repeats' for --tshark-repeats; give a whole number of runs, 0 to skip tshark" >&2
    exit 2
fi

"$repo_root/scripts/setup.sh" --bench

# shellcheck source=scripts/lib/bench-common.sh
source "$repo_root/scripts/lib/bench-common.sh"
build_read_loop

work_dir=$(mktemp -d)
trap 'stop_redis; rm -rf "$work_dir"' EXIT
# One line per run: tool, frames, frames/s as the tool measures it (or -), wall s, peak RSS KB,
# CPU s (user plus system), 1-minute load average before the run.
results=$work_dir/results.tsv

# Appends one result line. Usage: record TOOL FRAMES OWN_RATE WALL_S RSS_KB CPU_S LOAD1
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

# Prints the last "WALL_S RSS_KB CPU_S" line of a times file.
last_times() {
    tail -n 1 "$1"
}

run_read_loop() {
    local load1 times=$work_dir/times
    load1=$(load_average | cut -d' ' -f1)
    : >"$times"
    timed "$times" "$read_loop" "$capture" >"$work_dir/loop.json"
    read -r wall rss_kb cpu <<<"$(last_times "$times")"
    python3 - "$work_dir/loop.json" "$wall" "$rss_kb" "$cpu" "$load1" <<'PY' >>"$results"
import json, sys
path, wall, rss_kb, cpu, load1 = sys.argv[1:]
loop = json.load(open(path))
print(f"bare libpcap loop\t{loop['packets']}\t{loop['packets_per_s']}\t{wall}\t{rss_kb}\t{cpu}\t{load1}")
PY
}

# Runs one analyze command with --json and records its frames/s. Sets last_rate.
# Usage: run_analyze TOOL COMMAND...
run_analyze() {
    local tool=$1 load1 times=$work_dir/times
    shift
    load1=$(load_average | cut -d' ' -f1)
    : >"$times"
    timed "$times" "$@" --json >"$work_dir/summary.json"
    read -r wall rss_kb cpu <<<"$(last_times "$times")"
    last_rate=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["frames_per_s"])' "$work_dir/summary.json")
    local frames
    frames=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["capture"]["frames"])' "$work_dir/summary.json")
    record "$tool" "$frames" "$last_rate" "$wall" "$rss_kb" "$cpu" "$load1"
}

# Prints the redis-server CPU time, user plus system in seconds.
redis_cpu() {
    redis-cli -h 127.0.0.1 -p "$redis_port" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ { total += $2 } END { printf "%.2f", total }'
}

# Runs analyze with --redis on an emptied server and prints the rate as a share of
# EMBEDDED_RATE (frames/s of the embedded run with the same shards), with the server's CPU.
# Usage: run_redis TOOL EMBEDDED_RATE COMMAND...
run_redis() {
    local tool=$1 embedded_rate=$2 cpu_before
    shift 2
    redis-cli -h 127.0.0.1 -p "$redis_port" flushall >/dev/null
    cpu_before=$(redis_cpu)
    run_analyze "$tool" "$@" --redis "redis://127.0.0.1:$redis_port/"
    python3 -c 'import sys; label, rate, embedded, before, after = sys.argv[1:]; print(f"{label}: {float(rate) / float(embedded):.0%} of the embedded rate, redis-server CPU {float(after) - float(before):.2f} s")' \
        "$tool" "$last_rate" "$embedded_rate" "$cpu_before" "$(redis_cpu)"
}

# Compares a count of extracted frames with the ground truth. Usage: check_count TOOL FRAMES
check_count() {
    if (($2 == truth_count)); then
        echo "$1: $2 frames of IMSI $imsi, as in the ground truth"
    else
        echo "$1: $2 frames of IMSI $imsi, the ground truth has $truth_count"
    fi
}

# Extracts the subscriber's frames with `analyze --track` (1 shard) and records the wall time.
run_analyze_track() {
    local load1 times=$work_dir/times pcap_dir=$work_dir/track
    rm -rf "$pcap_dir"
    load1=$(load_average | cut -d' ' -f1)
    : >"$times"
    timed "$times" "$binary" analyze "$capture" --shards 1 --track "$imsi" --pcap-dir "$pcap_dir" >/dev/null
    read -r wall rss_kb cpu <<<"$(last_times "$times")"
    local frames
    frames=$(count_frames "$pcap_dir/$imsi.pcap")
    record "analyze --track, 1 shard" "$frames" - "$wall" "$rss_kb" "$cpu" "$load1"
    check_count "analyze --track" "$frames"
}

# Extracts the subscriber's frames with tshark, records the two passes' total wall and CPU
# time and the higher peak RSS, and lists frames that differ from the ground truth.
run_tshark() {
    local load1 times=$work_dir/tshark.times
    load1=$(load_average | cut -d' ' -f1)
    : >"$times"
    tshark_extract "$capture" "$imsi" "$work_dir/tshark.pcap" "$work_dir/tshark.frames" "$times" "$work_dir/tshark.log"
    read -r wall rss_kb cpu < <(awk '{ wall += $1; cpu += $3; if ($2 > rss) rss = $2 } END { print wall, rss, cpu }' "$times")
    local frames
    frames=$(wc -l <"$work_dir/tshark.frames")
    record "tshark, two passes" "$frames" - "$wall" "$rss_kb" "$cpu" "$load1"
    check_count "tshark" "$frames"
    local missing extra
    missing=$(comm -23 <(sort "$truth_frames") <(sort "$work_dir/tshark.frames") | sort -n | paste -sd' ' -)
    extra=$(comm -13 <(sort "$truth_frames") <(sort "$work_dir/tshark.frames") | sort -n | paste -sd' ' -)
    [[ -z $missing ]] || echo "  frames of the truth that tshark left out: $missing"
    [[ -z $extra ]] || echo "  frames tshark added that the truth gives to no one or another IMSI: $extra"
}

run_ndpi_reader() {
    local load1 times=$work_dir/times
    load1=$(load_average | cut -d' ' -f1)
    : >"$times"
    timed "$times" ndpiReader -t -q -i "$capture" >"$work_dir/ndpi.log" 2>&1
    read -r wall rss_kb cpu <<<"$(last_times "$times")"
    record "ndpiReader -t" "$capture_frames" - "$wall" "$rss_kb" "$cpu" "$load1"
}

# Prints each run, the median of every tool and the ratios.
print_summary() {
    python3 - "$results" <<'PY'
import statistics, sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    tool, frames, own_rate, wall, rss_kb, cpu, load1 = line.rstrip("\n").split("\t")
    runs[tool].append({"frames": int(frames), "own": None if own_rate == "-" else float(own_rate),
                       "wall": float(wall), "rss": int(rss_kb) / 1024, "cpu": float(cpu), "load": float(load1)})

def joined(values, form):
    return " / ".join(form.format(v) for v in values)

print(f"\n{'run':<34} {'frames':>9}  {'frames/s, own timer':<38} {'wall s':<20} {'CPU s':<20} {'peak RSS MiB':<16} load")
for tool, items in runs.items():
    own = joined([r["own"] for r in items], "{:,.0f}") if items[0]["own"] is not None else ""
    print(f"{tool:<34} {items[0]['frames']:>9}  {own:<38} {joined([r['wall'] for r in items], '{:.2f}'):<20} "
          f"{joined([r['cpu'] for r in items], '{:.2f}'):<20} {joined([r['rss'] for r in items], '{:.0f}'):<16} "
          f"{joined([r['load'] for r in items], '{:.1f}')}")

def median(tool, key):
    items = runs.get(tool)
    return statistics.median(r[key] for r in items) if items else None

def ratio(label, numerator, denominator, target=None, form="{:.2f}"):
    if numerator is None or not denominator:
        return
    value = numerator / denominator
    verdict = ""
    if target is not None:
        verdict = f"  target >= {form.format(target)}: " + ("met" if value >= target else f"missed by {1 - value / target:.0%}")
    print(f"{label:<58} {form.format(value)}{verdict}")

print("\nratios of medians")
ratio("analyze 1 shard / bare loop (frames/s, own timers)", median("analyze, 1 shard", "own"),
      median("bare libpcap loop", "own"), 0.60, "{:.1%}")
ratio("analyze 2 shards / 1 shard (frames/s, own timers)", median("analyze, 2 shards", "own"),
      median("analyze, 1 shard", "own"), 1.8)
ratio("tshark extraction / analyze --track (wall time)", median("tshark, two passes", "wall"),
      median("analyze --track, 1 shard", "wall"), 50.0)
ratio("tshark extraction / analyze 1 shard (wall time)", median("tshark, two passes", "wall"),
      median("analyze, 1 shard", "wall"))
ratio("ndpiReader -t / analyze 1 shard (wall time)", median("ndpiReader -t", "wall"),
      median("analyze, 1 shard", "wall"), 2.0)
ratio("ndpiReader -t / analyze 2 shards (wall time)", median("ndpiReader -t", "wall"),
      median("analyze, 2 shards", "wall"), 2.0)
wall_rate = lambda tool: (runs[tool][0]["frames"] / median(tool, "wall")) if tool in runs else None
for tool in ("analyze, 1 shard", "analyze, 2 shards", "ndpiReader -t"):
    if tool in runs:
        print(f"{tool + ', frames / median wall time':<58} {wall_rate(tool):,.0f} frames/s")
print("\nthe same with CPU time (user plus system), which other load on the machine changes less")
ratio("analyze 1 shard / bare loop (CPU time per frame)", median("bare libpcap loop", "cpu"),
      median("analyze, 1 shard", "cpu"), 0.60, "{:.1%}")
ratio("tshark extraction / analyze --track (CPU time)", median("tshark, two passes", "cpu"),
      median("analyze --track, 1 shard", "cpu"), 50.0)
ratio("ndpiReader -t / analyze 1 shard (CPU time)", median("ndpiReader -t", "cpu"),
      median("analyze, 1 shard", "cpu"), 2.0)
ratio("ndpiReader -t / analyze 2 shards (CPU time)", median("ndpiReader -t", "cpu"),
      median("analyze, 2 shards", "cpu"), 2.0)
PY
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ { print $2 }') GiB"
echo "$(tshark --version 2>/dev/null | head -n 1 | cut -d' ' -f1-3), $(ndpiReader -h 2>/dev/null | sed -n 's/^Welcome to //p')"

warm_page_cache "$capture"
"$read_loop" "$capture" >/dev/null
capture_frames=$(count_frames "$capture")
truth_frames=$work_dir/truth.frames
read -r imsi truth_count <<<"$(pick_imsi "$truth" "$truth_frames")"
echo "capture: $capture, $capture_frames frames; extracted IMSI: $imsi ($truth_count frames in the truth)"
if $with_redis; then
    start_redis
    echo "$(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$redis_port"
fi

for repeat in $(seq "$repeats"); do
    echo "run $repeat of $repeats, load average $(load_average)"
    run_read_loop
    run_analyze "analyze, 1 shard" "$binary" analyze "$capture" --shards 1
    embedded_1=$last_rate
    run_analyze "analyze, 2 shards" "$binary" analyze "$capture" --shards 2
    embedded_2=$last_rate
    run_analyze "analyze, 1 shard, pinned to 1 core" taskset -c 0 "$binary" analyze "$capture" --shards 1
    run_analyze_track
    run_ndpi_reader
    if $with_redis; then
        run_redis "analyze, 1 shard, --redis" "$embedded_1" "$binary" analyze "$capture" --shards 1
        run_redis "analyze, 2 shards, --redis" "$embedded_2" "$binary" analyze "$capture" --shards 2
    fi
done
for repeat in $(seq "$tshark_repeats"); do
    echo "tshark extraction $repeat of $tshark_repeats, load average $(load_average)"
    run_tshark
done
print_summary
