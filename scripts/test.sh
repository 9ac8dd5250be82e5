#!/usr/bin/env bash
# The README's second command (.ci/run calls it too): install everything the test suite needs into the
# virtualenv .venv (made here when missing or broken) and run the whole suite with pytest -n 2.
# As root on Debian it also installs the system tools the interop and network-namespace tests use.
# Extra arguments go to pytest. PYTHON=/path/to/python installs into and runs that interpreter
# instead of .venv (CI/dev use).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh

DEBIAN_PACKAGES=(iproute2 nftables procps openssl nginx nsd unbound dnsutils curl chromium postgresql prometheus-pushgateway tinyproxy dante-server stress-ng)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    # The tests start their own nginx/nsd/unbound on loopback ports: keep the packages'
    # system services (port 80, 53 ...) from starting at install time.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
    fi
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
      echo "warning: could not install ${missing[*]}; the tests that need them will be skipped with a reason" >&2
    fi
    if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi
  fi
else
  echo "note: not root or no apt-get: the network-namespace tests will be skipped"
fi

autoglm_use_python
echo "installing pytest-autoglm (editable) with its test dependencies ..."
"$AUTOGLM_PY" -m pip install -q --disable-pip-version-check -e '.[test]'

set +e
"$AUTOGLM_PY" -m pytest -p no:cacheprovider -n 2 "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests: the suite is broken (exit code 5)" >&2
  exit 1
fi
exit "$status"
