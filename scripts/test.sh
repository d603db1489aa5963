#!/usr/bin/env bash
# Run every test: the Rust workspace (cargo nextest) and the Python end-to-end suite (tests/e2e), which
# drives the built `opsloop` binary with the real aws CLI and boto3. Self-sufficient on a machine with
# Rust and Python 3.11: creates .venv and installs the pinned clients, installs cargo-nextest if missing.
# Exits non-zero if anything fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
venv="$root/.venv"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

step() { printf '\n==> %s\n' "$*"; }

step "python environment (.venv)"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" || {
        echo "error: cannot create a virtualenv with $python (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r tests/e2e/requirements.txt

# A full run gains nothing from incremental compilation, and its caches double the disk a build takes.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "build opsloop"
cargo build -p opsloop

step "rust tests (cargo nextest)"
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi
# Run both suites even when the first fails, so one run reports every failure.
rust_status=0
cargo nextest run --workspace --no-fail-fast || rust_status=$?

step "end-to-end tests (pytest tests/e2e)"
e2e_status=0
OPSLOOP_BIN="${OPSLOOP_BIN:-$target_dir/debug/opsloop}" "$venv/bin/python" -m pytest tests/e2e \
    -p no:cacheprovider -q -ra || e2e_status=$?

step "disk used by the build"
du -sh "$target_dir" 2>/dev/null || true

if [ "$rust_status" -ne 0 ] || [ "$e2e_status" -ne 0 ]; then
    echo "error: tests failed (cargo nextest: exit $rust_status, pytest: exit $e2e_status)" >&2
    exit 1
fi
