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
  rm -rf .venv
fi
cache="${BOOKSTORE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bookstore}"
venv="$cache/venv-moto-${want:0:16}"
# A virtualenv cannot move (its scripts name its path): it is made in place, complete once marked.
if [[ ! -f "$venv/.complete" ]]; then
  echo "installing moto and the AWS CLI into $venv (one time, ~40 s)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/harness/requirements.txt
  touch "$venv/.complete"
fi
ln -sfn "$venv" .venv
