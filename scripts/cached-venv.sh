# Sourced by install-moto.sh and payload-deps.sh. `cached_venv LINK NAME PIP-ARGS...` makes the
# virtualenv NAME in the user's cache (BOOKSTORE_CACHE, default ~/.cache/bookstore) once, with
# `pip install PIP-ARGS`, and links it as LINK in the project: another clone on the same machine
# (CI) links it instead of installing again. NAME carries the versions, so a change makes a new one.
# A virtualenv cannot move (its scripts name its path): it is made in place, complete once marked.
cached_venv() {
  local link=$1 name=$2 cache venv
  shift 2
  cache="${BOOKSTORE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bookstore}"
  venv="$cache/$name"
  if [[ ! -f "$venv/.complete" ]]; then
    echo "installing $* into $venv (one time)" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    touch "$venv/.complete"
  fi
  rm -rf "$link"
  ln -sfn "$venv" "$link"
}
