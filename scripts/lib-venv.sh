# Sourced by trainer-env.sh and tools-env.sh: builds (once per machine) a Python venv for a
# requirements file in ${BRIGHTRUN_CACHE_DIR:-$XDG_CACHE_HOME/brightrun}/NAME-<first 12 hex of
# sha256(requirements)> (the name the engine looks for, for the trainer) and sets $venv.
# A build that is interrupted is redone from scratch next time.
# An optional fourth argument names a requirements file installed afterwards with --no-deps
# (its pins are named in REQUIREMENTS' comments, so the hash covers them).
build_venv() { # NAME REQUIREMENTS WHAT [NO-DEPS REQUIREMENTS]
  local name="$1" req="$2" what="$3" nodeps="${4:-}" hash cache
  hash="$(sha256sum "$req" | cut -c1-12)"
  cache="${BRIGHTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/brightrun}"
  venv="$cache/$name-$hash"
  if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    echo "building $what in $venv (once)" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -r "$req" >&2
    if [ -n "$nodeps" ]; then
      "$venv/bin/python" -m pip install --quiet --no-deps -r "$nodeps" >&2
    fi
    # Written last: an interrupted build is redone from scratch next time.
    touch "$venv/.complete"
  fi
}
