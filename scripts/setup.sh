#!/usr/bin/env bash
# Installs the Debian 12 packages that imsitrace builds and tests against, and checks that cargo
# is at least the workspace's rust-version. Only missing packages are installed, with apt-get.
# Prints nothing when everything is present. Installing needs root.
#
# Usage: setup.sh [--bench]
#   --bench  also installs the packages that only scripts/bench.sh uses.
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
    python3      # runs ansible-core and ansible-lint for the deployment test (tests/deploy.rs)
    python3-venv
    iproute2     # ip: the live-capture test's veth pair in a network namespace of its own
)

# Only for scripts/bench.sh, which compares imsitrace with these tools.
bench_packages=(
    libndpi-bin  # ndpiReader 4.2, the classification baseline
)

case ${1:-} in
    '') ;;
    --bench) packages+=("${bench_packages[@]}") ;;
    *)
        echo "setup.sh: unknown option $1; the only option is --bench" >&2
        exit 2
        ;;
esac

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

# Debian's python3, with the venv module of python3-venv. A python3 found first on PATH
# (pyenv, a conda environment) is not used, so every machine runs the same tools.
deploy_python=/usr/bin/python3
deploy_venv="$repo_root/.venv-deploy"
deploy_requirements="$repo_root/deploy/requirements.txt"

# Installs the pinned ansible-core and ansible-lint of deploy/requirements.txt into
# .venv-deploy/, where tests/deploy.rs looks for them. A copy of the requirements file in
# the venv records what was installed, so nothing runs when the pins are unchanged.
install_deploy_tools() {
    local stamp="$deploy_venv/installed-requirements.txt"
    if [[ -x $deploy_venv/bin/ansible-playbook && -x $deploy_venv/bin/ansible-lint ]] \
        && cmp --silent "$deploy_requirements" "$stamp"; then
        return 0
    fi

    echo "setup.sh: installing ansible-core and ansible-lint into $deploy_venv"
    rm -rf "$deploy_venv"
    "$deploy_python" -m venv "$deploy_venv"
    "$deploy_venv/bin/pip" install --quiet --disable-pip-version-check --requirement "$deploy_requirements"
    cp "$deploy_requirements" "$stamp"
}

install_missing_packages
check_cargo
install_deploy_tools
