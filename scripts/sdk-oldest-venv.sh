#!/usr/bin/env bash
# A venv for the services with the oldest azure-eventhub the project supports (pyproject: >=5.12,<6):
# the runtime lock with that one pin replaced, plus the project (editable). `make test-sdk-oldest` runs the
# services from it (HOMESEC_SERVICE_PYTHON) while the tests, the emulator and Azurite run as usual.
# Usage: scripts/sdk-oldest-venv.sh VENV_DIR SDK_VERSION
set -euo pipefail
venv=${1:?venv dir} version=${2:?azure-eventhub version}
test -x "$venv/bin/python" || python3.11 -m venv "$venv"
lock=$(mktemp)
trap 'rm -f "$lock"' EXIT
grep -v '^azure-eventhub==' requirements/runtime.txt > "$lock"
echo "azure-eventhub==$version" >> "$lock"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$lock"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . 2>/dev/null \
  || "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
"$venv/bin/python" -m pip check >/dev/null
installed=$("$venv/bin/python" -c 'import azure.eventhub; print(azure.eventhub.__version__)')
test "$installed" = "$version" || { echo "sdk-oldest-venv: got azure-eventhub $installed, wanted $version" >&2; exit 1; }
