"""tsjnet_sdk.benchmarks"""
