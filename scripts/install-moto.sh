#!/usr/bin/env bash
# Installs the pinned AWS emulator (moto) and the AWS CLI into a virtualenv, once per version of
# tests/harness/requirements.txt, and links it as the project's .venv. The test harness
# (tests/harness/strict_moto.py) patches moto's internals, so the version is pinned.
# The virtualenv lives in the user's cache (BOOKSTORE_CACHE, default ~/.cache/bookstore), named by
# the requirements' hash: a fresh clone on the same machine (CI) links it instead of installing
# again. A .venv that is a real directory (an older checkout) is kept while its hash matches.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sha256sum tests/harness/requirements.txt | cut -d' ' -f1)
if [[ -d .venv && ! -L .venv ]]; then
  if [[ -x .venv/bin/aws && "$(cat .venv/.requirements-sha256 2>/dev/null)" == "$want" ]]; then
    exit 0
  fi
fi
# shellcheck source=scripts/cached-venv.sh
. scripts/cached-venv.sh
cached_venv .venv "venv-moto-${want:0:16}" -r tests/harness/requirements.txt
