#!/usr/bin/env bash
# Regenerates requirements/runtime.txt and requirements/dev.txt from pyproject.toml.
set -euo pipefail
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3.11 -m venv "$tmp/rt"
"$tmp/rt/bin/pip" install -q .
{ echo "# Runtime lock: exact pins for the producer and consumer images. Regenerate with 'make lock'."
  "$tmp/rt/bin/pip" freeze | grep -v -i homesec; } > requirements/runtime.txt
"$tmp/rt/bin/pip" install -q ".[dev]"
{ echo "# Dev/test lock: runtime pins plus tools. Regenerate with 'make lock'."; echo "-r runtime.txt"
  "$tmp/rt/bin/pip" freeze | grep -v -i homesec | grep -v -x -F -f <(tail -n +2 requirements/runtime.txt); } > requirements/dev.txt
