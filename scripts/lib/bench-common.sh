# Shared by the bench scripts (sourced, not run): generates the large synthetic capture on the
# first run, builds the release binary, and starts and stops a private redis-server.
# Sets: capture, truth (the generator's ground truth of the capture), binary, redis_port
# (after start_redis).

data_dir=${CARGO_TARGET_DIR:-target}/bench-data
capture=$data_dir/large.pcap
truth=$data_dir/large.truth.json
if [[ ! -f $capture ]]; then
    python3 -c 'import scapy, cryptography' 2>/dev/null || python3 -m pip install --quiet scapy cryptography
    mkdir -p "$data_dir"
    echo "generating $capture (about a minute)"
    python3 tools/gtpgen/gtpgen.py --subscribers 20000 --duration-s 900 --seed 4 --packets-target 1000000 --out "$data_dir/large"
fi

cargo build --release --quiet -p imsitrace-node
binary=${CARGO_TARGET_DIR:-target}/release/imsitrace

# Builds the bare libpcap read loop (actors/examples/pcap_read_loop.rs) and sets read_loop.
build_read_loop() {
    cargo build --release --quiet -p imsitrace-actors --example pcap_read_loop
    read_loop=${CARGO_TARGET_DIR:-target}/release/examples/pcap_read_loop
}

# Reads FILE once so that the runs that follow find it in the page cache.
warm_page_cache() {
    cat "$1" >/dev/null
}

# Prints the number of frames in the pcap FILE, counted with the read loop.
count_frames() {
    "$read_loop" "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["packets"])'
}

# Prints the 1-, 5- and 15-minute load averages.
load_average() {
    cut -d' ' -f1-3 /proc/loadavg
}

# Runs a command under /usr/bin/time and appends "WALL_S PEAK_RSS_KB CPU_S" to TIMES_FILE,
# CPU_S being user plus system time. Usage: timed TIMES_FILE COMMAND...
timed() {
    local times_file=$1 status=0
    shift
    /usr/bin/time -f '%e %M %U %S' -a -o "$times_file.raw" "$@" || status=$?
    awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' "$times_file.raw" >>"$times_file"
    rm -f "$times_file.raw"
    return "$status"
}

redis_pid=
redis_dir=
redis_port=

stop_redis() {
    if [[ -n $redis_pid ]]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=
    fi
    if [[ -n $redis_dir ]]; then
        rm -rf "$redis_dir"
        redis_dir=
    fi
}
trap stop_redis EXIT

# Starts redis-server on a free loopback port and waits until it replies to PING. A port taken
# between the check and the start makes the server exit; another port is tried then.
start_redis() {
    for _ in 1 2 3 4 5; do
        redis_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        redis_dir=$(mktemp -d)
        redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" >"$redis_dir/log" 2>&1 &
        redis_pid=$!
        for _ in $(seq 100); do
            if redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null | grep -q PONG; then
                return 0
            fi
            kill -0 "$redis_pid" 2>/dev/null || break
            sleep 0.1
        done
        stop_redis
    done
    echo "redis-server did not start on a free loopback port in 5 attempts" >&2
    return 1
}

# Prints "IMSI FRAMES" for the subscriber of the ground truth that the tshark comparison
# extracts, and writes its frame numbers (1-based, as tshark numbers them) to FRAMES_FILE.
# The subscriber is BENCH_IMSI when set. Otherwise it is the one with the most frames among
# those with two or more sessions and a handover or SGSN change, so that the extraction has
# to follow new TEIDs. Usage: pick_imsi TRUTH_FILE FRAMES_FILE
pick_imsi() {
    python3 - "$1" "$2" "${BENCH_IMSI:-}" <<'PY'
import json, sys
truth_path, frames_path, wanted = sys.argv[1:]
subscribers = json.load(open(truth_path))["subscribers"]

def moves(subscriber):
    return any(tunnel["reason"] in ("handover", "sgsn_change")
               for session in subscriber["sessions"] for tunnel in session["tunnels"])

if wanted:
    chosen = [s for s in subscribers if s["imsi"] == wanted]
    if not chosen:
        sys.exit(f"BENCH_IMSI {wanted} is not a subscriber of {truth_path}; pick one of its subscribers[].imsi")
else:
    chosen = sorted((s for s in subscribers if len(s["sessions"]) >= 2 and moves(s)),
                    key=lambda s: (-len(s["frames"]), s["imsi"]))
    if not chosen:
        sys.exit(f"{truth_path} has no subscriber with two sessions and a move; set BENCH_IMSI")
subscriber = chosen[0]
with open(frames_path, "w") as out:
    out.writelines(f"{index + 1}\n" for index in subscriber["frames"])
print(subscriber["imsi"], len(subscriber["frames"]))
PY
}

# Extracts the frames of one IMSI with tshark's GTP session tracking
# (`-o gtp.track_gtp_session:TRUE`, tshark 4.0 of Debian 12), in two passes over CAPTURE.
# The first lists the session ids of the frames carrying the IMSI: `gtp.session` for
# GTPv1-C and GTP-U, `gtpv2.session` for GTPv2-C, both numbered from one sequence. The
# second writes every frame of those sessions to OUT_PCAP and its frame number to OUT_FRAMES.
# Both passes need `-2`: in one pass, tshark marks the session only on frames after the
# Create response, so the requests and most G-PDUs lack it. Appends one
# "WALL_S RSS_KB CPU_S" line per pass to TIMES_FILE and tshark's messages to LOG_FILE.
# Usage: tshark_extract CAPTURE IMSI OUT_PCAP OUT_FRAMES TIMES_FILE LOG_FILE
tshark_extract() {
    local capture=$1 imsi=$2 out_pcap=$3 out_frames=$4 times_file=$5 log_file=$6
    local sessions
    sessions=$(timed "$times_file" tshark -n -2 -r "$capture" -o gtp.track_gtp_session:TRUE \
        -Y "e212.imsi == \"$imsi\"" -T fields -e gtp.session -e gtpv2.session 2>>"$log_file" \
        | tr '\t,' '\n\n' | sed '/^$/d' | sort -un | paste -sd, -)
    if [[ -z $sessions ]]; then
        echo "tshark found no GTP session of IMSI $imsi in $capture; see $log_file" >&2
        return 1
    fi
    timed "$times_file" tshark -n -2 -r "$capture" -o gtp.track_gtp_session:TRUE \
        -Y "gtp.session in {$sessions} || gtpv2.session in {$sessions}" \
        -w "$out_pcap" -P -T fields -e frame.number >"$out_frames" 2>>"$log_file"
}
