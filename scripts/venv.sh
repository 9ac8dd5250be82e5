# Shared by scripts/demo.sh, scripts/test.sh and scripts/check-package.sh (sourced, not run).
#
# Why: a stock Debian 12 / Ubuntu 24.04 Python refuses `pip install` into itself (PEP 668,
# "externally-managed-environment"), so every command installs into a virtualenv it makes itself.
#
#   autoglm_use_python         sets AUTOGLM_PY: $PYTHON when set (CI/dev: an interpreter you chose),
#                              else the project's .venv/bin/python, made (or remade when broken) from python3
#   autoglm_make_venv DIR BASE makes a fresh virtualenv DIR from the interpreter BASE, or exits with one
#                              line that says what to install

AUTOGLM_MIN_PYTHON="3.11"

# True when PYTHON_EXE is at least AUTOGLM_MIN_PYTHON.
autoglm_python_recent() {
  "$1" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

# True when DIR is a virtualenv whose python runs, is recent enough, and has a working pip.
autoglm_venv_healthy() {
  [ -x "$1/bin/python" ] &&
    "$1/bin/python" -c 'import sys; raise SystemExit(sys.version_info < (3, 11) or sys.prefix == sys.base_prefix)' \
      >/dev/null 2>&1 &&
    "$1/bin/python" -m pip --version >/dev/null 2>&1
}

autoglm_make_venv() {
  local dir=$1 base=$2 log
  if ! command -v "$base" >/dev/null 2>&1; then
    echo "error: $base not found: install Python $AUTOGLM_MIN_PYTHON or newer (Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
    exit 1
  fi
  if ! autoglm_python_recent "$base"; then
    echo "error: $base is Python $("$base" -c 'import platform; print(platform.python_version())' 2>/dev/null || echo '?'); pytest-autoglm needs $AUTOGLM_MIN_PYTHON or newer: run again with PYTHON=/path/to/python3.11 (or newer)" >&2
    exit 1
  fi
  log=$(mktemp)
  if ! "$base" -m venv --clear "$dir" >"$log" 2>&1; then
    # Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package.
    if ! grep -qi ensurepip "$log"; then
      cat "$log" >&2
      rm -f "$log"
      echo "error: '$base -m venv $dir' failed (output above)" >&2
      exit 1
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "installing the Debian package python3-venv ('$base -m venv' needs it) ..."
      if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; } ||
        ! "$base" -m venv --clear "$dir" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "error: could not make a virtualenv even after 'apt-get install python3-venv' (output above)" >&2
        exit 1
      fi
    else
      rm -f "$log"
      echo "error: $base cannot make a virtualenv: install the python3-venv package (sudo apt-get install python3-venv) and run this command again" >&2
      exit 1
    fi
  fi
  rm -f "$log"
}

autoglm_use_python() {
  if [ -n "${PYTHON:-}" ]; then
    AUTOGLM_PY=$PYTHON
    echo "using PYTHON=$PYTHON (no .venv)"
    return
  fi
  local venv=$PWD/.venv
  if [ -e "$venv" ] && ! autoglm_venv_healthy "$venv"; then
    echo "the virtualenv .venv is broken or too old: making it again"
  fi
  if ! autoglm_venv_healthy "$venv"; then
    echo "making the virtualenv .venv with $(command -v python3 || echo python3)"
    autoglm_make_venv "$venv" python3
  fi
  AUTOGLM_PY=$venv/bin/python
}
