#!/usr/bin/env bash
# Installs the Debian 12 packages that imsitrace builds and tests against, and checks that cargo
# is at least the workspace's rust-version. Only missing packages are installed, with apt-get.
# Prints nothing when everything is present. Installing needs root.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

packages=(
    libpcap-dev  # linked by the capture code
    libndpi-dev  # linked by the classifier (nDPI 4.2)
    clang        # bindgen parses the nDPI headers with libclang
    libclang-dev
    pkg-config   # finds libndpi for build.rs
    tshark       # reads the pcap files written by the tests
    redis-server # the Redis microcloud tests start their own server on a free loopback port
)

is_installed() {
    local status
    status=$(dpkg-query --show --showformat='${Status}' "$1" 2>/dev/null) || return 1
    [[ $status == "install ok installed" ]]
}

install_missing_packages() {
    local missing=() package
    for package in "${packages[@]}"; do
        is_installed "$package" || missing+=("$package")
    done
    ((${#missing[@]} == 0)) && return 0

    if [[ $(id -u) -ne 0 ]]; then
        echo "setup.sh: missing packages: ${missing[*]}" >&2
        echo "setup.sh: run this script as root, or: apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Prints the workspace's rust-version (e.g. 1.85) from the root Cargo.toml.
required_rust_version() {
    sed -n 's/^rust-version *= *"\([0-9.]*\)".*/\1/p' "$repo_root/Cargo.toml" | head -n 1
}

check_cargo() {
    local required found
    required=$(required_rust_version)
    if [[ -z $required ]]; then
        echo "setup.sh: no rust-version found in $repo_root/Cargo.toml" >&2
        exit 1
    fi

    if ! command -v cargo >/dev/null 2>&1; then
        echo "setup.sh: cargo not found on PATH. Install a Rust toolchain >= $required" \
            "(for example with rustup; Debian 12's cargo package is too old) and put" \
            "cargo on PATH." >&2
        exit 1
    fi
    # `cargo --version` prints e.g. "cargo 1.95.0 (f2d3ce0bd 2026-03-21)".
    found=$(cargo --version | awk '{print $2}')
    if ! printf '%s\n%s\n' "$required" "$found" | sort --version-sort --check=quiet; then
        echo "setup.sh: cargo $found is older than the workspace's rust-version $required." \
            "Install a Rust toolchain >= $required (for example with rustup) and put its" \
            "cargo first on PATH." >&2
        exit 1
    fi
}

install_missing_packages
check_cargo
