#!/usr/bin/env bash
# Installs what the monolith payload test runs for real, standing in for Amazon Linux 2023's
# packages: Debian's nginx, pebble (Let's Encrypt's test ACME server) and openssl, plus certbot
# 5.8.0 from PyPI in its own virtualenv (.venv-certbot, linked from the user's cache), as the
# monolith image has it.
# MariaDB comes from scripts/mariadb.sh. Prints the certbot path.
# With `sslyze`: installs sslyze instead and prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v pebble >/dev/null || [[ -x /usr/bin/pebble ]] || missing+=(pebble)
command -v openssl >/dev/null || missing+=(openssl)
if ((${#missing[@]})); then
  echo "installing ${missing[*]} (one time)" >&2
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq >&2
  # Debian starts nginx on install; the test runs its own, so stop the packaged one by its unit.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
  $sudo systemctl disable --now nginx >/dev/null 2>&1 || true
fi
# `payload-deps.sh sslyze`: sslyze (PyPI), which checks the monolith's nginx against Mozilla's
# intermediate TLS profile; prints its path.
if [[ "${1:-}" == sslyze ]]; then
  # shellcheck source=scripts/cached-venv.sh
  . scripts/cached-venv.sh
  cached_venv .venv-sslyze venv-sslyze-6.3.1 "sslyze==6.3.1"
  echo "$PWD/.venv-sslyze/bin/sslyze"
  exit 0
fi
# certbot's virtualenv lives in the user's cache (as moto's, scripts/install-moto.sh), linked as
# .venv-certbot: a fresh clone on the same machine links it instead of installing again.
if [[ -d .venv-certbot && ! -L .venv-certbot ]] && .venv-certbot/bin/certbot --version 2>&1 | grep -q "5.8.0"; then
  echo "$PWD/.venv-certbot/bin/certbot"
  exit 0
fi
# shellcheck source=scripts/cached-venv.sh
. scripts/cached-venv.sh
cached_venv .venv-certbot venv-certbot-5.8.0 "certbot==5.8.0"
echo "$PWD/.venv-certbot/bin/certbot"
