#!/usr/bin/env bash
# The README's first command: install the project into the virtualenv .venv (made here when missing
# or broken) and run the bundled demo environment, which writes reports/demo.html and reports/demo.json.
# Extra arguments go to pytest (e.g. `bash scripts/demo.sh -m tcp`). PYTHON=/path/to/python uses that
# interpreter instead of .venv (CI/dev use).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

autoglm_use_python
echo "installing pytest-autoglm (editable) and its dependencies ..."
"$AUTOGLM_PY" -m pip install -q --disable-pip-version-check -e .

"$AUTOGLM_PY" demo/run_demo.py "$@"

if [ -z "${PYTHON:-}" ]; then
  echo "pytest-autoglm is installed in .venv: run '.venv/bin/pytest --autoglm-target your-inventory.yaml'"
  echo "(or 'source .venv/bin/activate', then plain 'pytest --autoglm-target ...')."
fi
