#!/usr/bin/env bash
# Builds imsitrace in release mode and analyzes tests/data/gtpgen/small.pcap, following every
# subscriber: per-subscriber pcap files, 5-minute reports and the session event log are written
# under out/demo, which is emptied first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

cargo build --release --package imsitrace-node --bin imsitrace
binary="${CARGO_TARGET_DIR:-target}/release/imsitrace"

out=out/demo
rm -rf "$out"
mkdir -p "$out/pcap" "$out/reports"

"$binary" analyze tests/data/gtpgen/small.pcap \
    --track-all \
    --pcap-dir "$out/pcap" \
    --report-dir "$out/reports" \
    --events "$out/events.jsonl" \
    --idle-timeout 90

echo
echo "Outputs in $out:"
ls -l "$out"
echo
echo "Per-subscriber pcap files in $out/pcap: $(find "$out/pcap" -type f | wc -l)"
echo "Reports (one file per 300-second bucket): $out/reports"
echo "Session events (JSON lines): $out/events.jsonl"
