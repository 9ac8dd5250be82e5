#!/usr/bin/env bash
# Is the package real? Build the sdist and the wheel with `python -m build`, check that both hold every
# file of pytest_autoglm/ (package data too: templates, the schema, py.typed), install the wheel (not
# editable) into a fresh virtualenv and run the demo from that install in a folder outside the source
# tree, so that nothing can import the checkout by accident. Exits non-zero on any problem.
# Everything happens in a temporary folder (removed at exit; KEEP=1 keeps it). .ci/run calls it.
# PYTHON=/path/to/python makes the temporary virtualenvs from that interpreter instead of python3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/venv.sh

base=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/autoglm-package.XXXXXX")
if [ "${KEEP:-0}" = 1 ]; then
  trap 'echo "kept $tmp"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi

step() { printf -- '-- %s\n' "$*"; }
fail() {
  echo "check-package: FAILED: $*" >&2
  exit 1
}
# Runs a command quietly; on failure shows its output and stops.
quiet() {
  local log=$tmp/step.log
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    fail "$*"
  fi
}

step "python -m build (sdist, then the wheel from the sdist)"
autoglm_make_venv "$tmp/build-venv" "$base"
quiet "$tmp/build-venv/bin/python" -m pip install -q --disable-pip-version-check build
quiet "$tmp/build-venv/bin/python" -m build --outdir "$tmp/dist" "$root"
sdist=$(ls "$tmp"/dist/*.tar.gz)
wheel=$(ls "$tmp"/dist/*.whl)
echo "built $(basename "$sdist") and $(basename "$wheel")"

step "contents of the sdist and the wheel"
# The package's files as the source tree has them (git's list when this is a clone).
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files pytest_autoglm >"$tmp/expected.txt"
else
  (cd "$root" && find pytest_autoglm -type f ! -path '*/__pycache__/*' ! -name '*.pyc') >"$tmp/expected.txt"
fi
"$tmp/build-venv/bin/python" - "$root" "$sdist" "$wheel" "$tmp/expected.txt" <<'PY' || fail "the archives' contents"
"""Every file of pytest_autoglm/ in both archives, nothing else of the tree in the wheel, the metadata right."""
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

root, sdist, wheel, expected_list = sys.argv[1:]
expected = {line for line in Path(expected_list).read_text().splitlines() if line}
must = {"pytest_autoglm/py.typed", "pytest_autoglm/inventory/inventory.schema.json"}
problems = [f"{path} is not in the source tree's list" for path in sorted(must - expected)]
if not any(p.startswith("pytest_autoglm/reporting/templates/") for p in expected):
    problems.append("no file in pytest_autoglm/reporting/templates/")

project = tomllib.loads((Path(root) / "pyproject.toml").read_text())["project"]
version = project["version"]

with zipfile.ZipFile(wheel) as zf:
    names = set(zf.namelist())
    dist_info = f"pytest_autoglm-{version}.dist-info"
    metadata = zf.read(f"{dist_info}/METADATA").decode() if f"{dist_info}/METADATA" in names else ""
    entry_points = zf.read(f"{dist_info}/entry_points.txt").decode() if f"{dist_info}/entry_points.txt" in names else ""
in_wheel = {n for n in names if n.startswith("pytest_autoglm/")}
problems += [f"wheel lacks {p}" for p in sorted(expected - in_wheel)]
problems += [f"wheel has {p}, which the source tree does not track" for p in sorted(in_wheel - expected)]
problems += [f"wheel has {n} outside the package" for n in sorted(names - in_wheel) if not n.startswith(dist_info)]
if f"Version: {version}\n" not in metadata:
    problems.append(f"wheel METADATA does not say Version: {version}")
if "autoglm = pytest_autoglm.plugin" not in entry_points:
    problems.append("wheel's entry_points.txt lacks the pytest11 entry point autoglm = pytest_autoglm.plugin")

with tarfile.open(sdist) as tf:
    top = f"pytest_autoglm-{version}/"
    in_sdist = {m.name[len(top):] for m in tf.getmembers() if m.isfile() and m.name.startswith(top)}
problems += [f"sdist lacks {p}" for p in sorted(expected - in_sdist)]
problems += [f"sdist lacks {p}" for p in ("pyproject.toml", "README.md", "CHANGELOG.md") if p not in in_sdist]

for problem in problems:
    print("  " + problem, file=sys.stderr)
if problems:
    raise SystemExit(1)
print(f"wheel: {len(in_wheel)} package files (all of pytest_autoglm/, package data included); sdist: {len(in_sdist)} files")
PY

step "install the wheel (not editable) into a fresh virtualenv"
autoglm_make_venv "$tmp/venv" "$base"
quiet "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel"

# Outside the source tree: pytest's rootdir, sys.path[0] and the inventory are all in $work.
work=$tmp/work
mkdir -p "$work"
cd "$work"

step "the installed package is the one that imports and that pytest loads"
"$tmp/venv/bin/python" - "$tmp/venv" <<'PY' || fail "installed package"
"""pytest_autoglm comes from the fresh venv (not the checkout) and finds its package data."""
import sys
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

import pytest_autoglm

venv = Path(sys.argv[1]).resolve()
where = Path(pytest_autoglm.__file__).resolve()
if venv not in where.parents:
    raise SystemExit(f"pytest_autoglm imported from {where}, not from {venv}")
package = files("pytest_autoglm")
missing = [
    name
    for name in ("py.typed", "inventory/inventory.schema.json")
    if not package.joinpath(name).is_file()
]
if not any(t.is_file() for t in package.joinpath("reporting/templates").iterdir()):
    missing.append("reporting/templates/*")
if missing:
    raise SystemExit(f"the installed package lacks {', '.join(missing)}")
print(f"pytest_autoglm {version('pytest-autoglm')} from {where}")
PY
"$tmp/venv/bin/python" -m pytest --version --version >"$tmp/pytest-version.txt" 2>&1 || {
  cat "$tmp/pytest-version.txt" >&2
  fail "pytest --version --version"
}
grep -q "pytest-autoglm-[^ ]* at $tmp/venv/" "$tmp/pytest-version.txt" || {
  cat "$tmp/pytest-version.txt" >&2
  fail "pytest does not list the plugin pytest-autoglm from $tmp/venv"
}
echo "pytest loads the plugin from the wheel's install"

step "the demo, run from the installed wheel in $work"
# Its pytest output goes to a log (shown on failure): the suite's summary stays the last one printed.
if ! "$tmp/venv/bin/python" "$root/demo/run_demo.py" --workdir "$work" >"$tmp/demo.log" 2>&1; then
  cat "$tmp/demo.log" >&2
  fail "the demo"
fi
"$tmp/venv/bin/python" - "$work/reports" <<'PY' || {
"""The demo wrote both reports; most checks pass and a few fail on purpose."""
import json
import sys
from pathlib import Path

reports = Path(sys.argv[1])
html = reports / "demo.html"
if not html.is_file() or html.stat().st_size == 0:
    raise SystemExit(f"{html} missing or empty")
data = json.loads((reports / "demo.json").read_text())
outcomes = [r["outcome"] for r in data["results"]]
failing, passing = outcomes.count("failed"), outcomes.count("passed")
if not failing or not passing:
    raise SystemExit(f"the demo's report has {passing} passing and {failing} failing checks; expected both")
print(f"demo.json: {len(outcomes)} checks ({failing} failing on purpose); demo.html: {html.stat().st_size} bytes")

# The second part (issue 17) runs as root only; where it ran, the loopback-bind mistake must be named.
vantages = reports / "demo-vantages.json"
if vantages.is_file():
    data = json.loads(vantages.read_text())
    patterns = [d["pattern"] for d in data.get("vantages", {}).get("diagnoses", [])]
    seen = sorted({r.get("vantage") for r in data["results"]})
    if "loopback_bind" not in patterns or seen != ["local", "server"]:
        raise SystemExit(f"demo-vantages.json: vantages {seen}, diagnoses {patterns}; expected loopback_bind")
    print(f"demo-vantages.json: {len(data['results'])} checks from {', '.join(seen)}; diagnosis loopback_bind")
PY
  cat "$tmp/demo.log" >&2
  fail "the demo's reports"
}

echo "check-package: OK ($(basename "$wheel"))"
