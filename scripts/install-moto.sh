#!/usr/bin/env bash
# Installs the pinned AWS emulator (moto) into the project-local virtualenv .venv, once.
# The test harness (tests/harness/strict_moto.py) patches moto's internals, so the version is pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^moto\[server\]==//p' tests/harness/requirements.txt)
if .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$want')" 2>/dev/null; then
  exit 0
fi
echo "installing moto $want into .venv (one time, ~30 s)" >&2
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/harness/requirements.txt
