#!/usr/bin/env bash
# Installs what is missing (scripts/setup.sh), then runs every test of the workspace in release
# mode, because the end-to-end tests run the binary many times, once on an input of millions of frames.
# Arguments are passed on to `cargo test`. Exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

status=0
cargo test --workspace --release "$@" || status=$?
if ((status == 0)); then
    echo "test.sh: all tests passed"
else
    echo "test.sh: tests failed (cargo test exited with status $status)"
fi
exit "$status"
