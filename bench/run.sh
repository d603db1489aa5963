#!/usr/bin/env bash
# Runs every opsloop benchmark on this machine (loopback only) and prints the results table.
#
# Installs Prometheus (Debian package `prometheus`, 2.42 on bookworm) for the comparison if it is
# missing, builds the release binaries, copies them aside (so a concurrent build cannot swap the
# server binary mid-run), then runs `opsloop-bench all` (startup, ingest, query, alarms). Extra
# arguments go to `opsloop-bench all`
# (e.g. `--duration 30 --connections 8 --rounds 5 --keep`).
#
# On a shared machine other processes skew every number. When it can (root, scheduler autogroups),
# the script runs the bench in its own session with autogroup nice -15, so the bench, the opsloop
# server and Prometheus (all children, equally) win the CPU over other sessions' work. Set
# OPSLOOP_BENCH_NO_BOOST=1 to run at normal priority. The table reports the CPU other processes still
# took during each ingest run.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v prometheus >/dev/null 2>&1; then
    echo "installing prometheus (Debian package) for the remote-write comparison" >&2
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

cargo build --release -p opsloop-bench -p opsloop
target_dir="${CARGO_TARGET_DIR:-target}"
bin_dir="$(mktemp -d -t opsloop-bench-bin.XXXXXX)"
trap 'rm -rf "$bin_dir"' EXIT
cp "$target_dir/release/opsloop" "$target_dir/release/opsloop-bench" "$bin_dir/"
if rev="$(git rev-parse --short HEAD 2>/dev/null)"; then
    git diff --quiet HEAD 2>/dev/null || rev="$rev (+ uncommitted changes)"
    echo "commit: $rev"
fi

cmd=("$bin_dir/opsloop-bench" all --server-bin "$bin_dir/opsloop" "$@")
if [ -z "${OPSLOOP_BENCH_NO_BOOST:-}" ] && [ "$(id -u)" -eq 0 ] && [ -e /proc/self/autogroup ]; then
    echo "priority: own session, autogroup nice -15"
    setsid --wait bash -c 'echo -15 > /proc/self/autogroup && exec "$@"' bench "${cmd[@]}"
else
    echo "priority: normal"
    "${cmd[@]}"
fi
