"""tsjnet_sdk.benchmarks: latency (bench.py), NA micro-benchmark (na_bench.py), fusion quality
(quality.py), metric speed (bench_metrics.py), FLOPs (flops.py).

Where data is read from and results go: tsjnet_sdk.results (data_root, results_dir)."""
