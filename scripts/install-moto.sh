#!/usr/bin/env bash
# Installs the pinned AWS emulator (moto) into the project-local virtualenv .venv, once.
# The test harness (tests/harness/strict_moto.py) patches moto's internals, so the version is pinned.
set -euo pipefail
cd "$(dirname "$0")/.."
# Reinstalled whenever requirements.txt changes: its hash is kept beside the venv.
want=$(sha256sum tests/harness/requirements.txt | cut -d' ' -f1)
if [[ -x .venv/bin/aws && "$(cat .venv/.requirements-sha256 2>/dev/null)" == "$want" ]]; then
  exit 0
fi
echo "installing moto and the AWS CLI into .venv (one time, ~40 s)" >&2
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/harness/requirements.txt
echo "$want" >.venv/.requirements-sha256
