#!/usr/bin/env bash
# Runs every opsloop benchmark on this machine (loopback only) and prints the results table.
# Installs Prometheus (Debian package `prometheus`, 2.42 on bookworm) for the comparison if it is
# missing, builds the release binaries, then runs `opsloop-bench all`. Extra arguments go to
# `opsloop-bench all` (e.g. `--duration 30 --connections 8 --keep`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1; then
    echo "installing prometheus (Debian package) for the remote-write comparison" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

cargo build --release -p opsloop-bench -p opsloop
exec target/release/opsloop-bench all "$@"
