#!/usr/bin/env bash
# Create .venv in the repository and install the SDK with the proven pins (requirements/ci.txt),
# the dev extras and NATTEN (built without isolation against the installed torch). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -r requirements/ci.txt
.venv/bin/python -m pip install -q --no-deps -e .
.venv/bin/python -m pip install -q --no-build-isolation natten==0.21.7
.venv/bin/python -m pip check >/dev/null || .venv/bin/python -m pip check
echo "installed tsjnet-sdk $(.venv/bin/python -c 'import tsjnet_sdk; print(tsjnet_sdk.__version__)') into .venv"
