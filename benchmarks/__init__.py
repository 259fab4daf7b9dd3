"""Benchmarks: how fast the pipeline colorizes scans and how much memory a scan takes."""
