# Shared by the bench scripts (sourced, not run): generates the large synthetic capture on the
# first run, builds the release binary, and starts and stops a private redis-server.
# Sets: capture, binary, redis_port (after start_redis).

data_dir=${CARGO_TARGET_DIR:-target}/bench-data
capture=$data_dir/large.pcap
if [[ ! -f $capture ]]; then
    python3 -c 'import scapy, cryptography' 2>/dev/null || python3 -m pip install --quiet scapy cryptography
    mkdir -p "$data_dir"
    echo "generating $capture (about a minute)"
    python3 tools/gtpgen/gtpgen.py --subscribers 20000 --duration-s 900 --seed 4 --packets-target 1000000 --out "$data_dir/large"
fi

cargo build --release --quiet -p imsitrace-node
binary=${CARGO_TARGET_DIR:-target}/release/imsitrace

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
