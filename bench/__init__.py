"""Benchmarks for robotrace_assets: proof verification throughput, sensor tick cost, review
derivatives (one decode vs one per derivative) and a derivatives backfill (runs of many
partitions vs one run per partition).

Run with `python -m bench.run` (or `make bench`); see bench/README.md.
"""
