#!/usr/bin/env bash
# Create .venv in the repository and install the SDK (editable) with proven pins. Idempotent.
#   bash scripts/install.sh runtime   the user's install: runtime + ONNX Runtime + the shipped models, no torch
#                                     (requirements/runtime.txt): runs `tsjnet demo`, `tsjnet fuse`, Fuser
#   bash scripts/install.sh [dev]     the developers' install: torch, export, training, tests, TensorRT-RTX and
#                                     NATTEN (requirements/ci.txt; NATTEN built against the installed torch)
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-dev}
PYTHON=${PYTHON:-python3}
case "$PROFILE" in
  runtime) requirements=requirements/runtime.txt ;;
  dev) requirements=requirements/ci.txt ;;
  *) echo "usage: bash scripts/install.sh [runtime|dev]  (got '$PROFILE')" >&2; exit 2 ;;
esac
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q -r "$requirements"
.venv/bin/python -m pip install -q --no-deps -e .
if [ "$PROFILE" = dev ]; then
  .venv/bin/python -m pip install -q --no-build-isolation natten==0.21.7
fi
.venv/bin/python -m pip check >/dev/null || .venv/bin/python -m pip check
echo "installed tsjnet-sdk $(.venv/bin/python -c 'import tsjnet_sdk; print(tsjnet_sdk.__version__)') ($PROFILE) into .venv"
