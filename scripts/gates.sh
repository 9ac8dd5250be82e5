#!/usr/bin/env bash
# The static gates: ruff check, ruff format --check, mypy --strict and import-linter.
# Installs the project's `lint` extra into the interpreter given as PYTHON (default: the
# project's .venv/bin/python, else python3) and exits non-zero if any gate fails.
#
# Scope: ruff (lint and format) over the whole tree (package, tests, benchmarks, demo),
# mypy --strict over the whole pytest_autoglm package, and every import-linter contract of
# pyproject.toml (docs/architecture.md explains them).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

"$PYTHON" -m pip install -q -e '.[lint]' || { echo "gates: cannot install the lint extra" >&2; exit 2; }

failed=()
run() {
  local name=$1
  shift
  echo "== $name"
  if ! "$@"; then failed+=("$name"); fi
}

run "ruff check" "$PYTHON" -m ruff check .
run "ruff format --check" "$PYTHON" -m ruff format --check .
run "mypy --strict" "$PYTHON" -m mypy --strict pytest_autoglm
BIN=$("$PYTHON" -c 'import os, sys; print(os.path.dirname(sys.executable))')
run "lint-imports" "$BIN/lint-imports"

if [ ${#failed[@]} -gt 0 ]; then
  echo "gates failed: ${failed[*]}" >&2
  exit 1
fi
echo "gates passed"
