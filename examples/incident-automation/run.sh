#!/bin/sh
# Run the scenario with the repository's virtualenv (boto3 + awscli): see README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py="$root/.venv/bin/python"
if [ ! -x "$py" ]; then
  echo "no $py: create the virtualenv first (python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt)" >&2
  exit 2
fi
exec "$py" "$here/run.py" "$@"
