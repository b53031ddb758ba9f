"""tsjnet_sdk.benchmarks: latency (bench.py), NA micro-benchmark (na_bench.py), fusion quality
(quality.py), metric speed (bench_metrics.py), FLOPs (flops.py)."""

from pathlib import Path

#: the checkout's root (benchmarks/ installs as tsjnet_sdk.benchmarks in editable mode)
REPO_ROOT = Path(__file__).resolve().parents[1]
#: the shared data sets beside the checkout (../shared/data; see its README)
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
