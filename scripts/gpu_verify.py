#!/usr/bin/env python3
"""Verify the SDK's GPU side on this machine in one run (<= ~8 min); see benchmarks/gpu_verify.py.

    python scripts/gpu_verify.py --out OUT_DIR [--kernels-dir PREBUILT] [--deadline 450] [--dry-run]

Works from a plain checkout (no install needed): the checkout this file sits in is put first on the
import path, so its tsjnet_sdk (and the stage folders kernels/, benchmarks/, ... as sub-packages) is used.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tsjnet_sdk.benchmarks.gpu_verify import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
