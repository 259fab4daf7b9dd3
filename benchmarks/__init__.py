"""Throughput benchmarks: how fast the pipeline colorizes scans, compared with the model alone."""
