"""Benchmarks for robotrace_assets: proof verification throughput and sensor tick cost.

Run with `python -m bench.run` (or `make bench`); see bench/README.md.
"""
