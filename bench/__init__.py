"""Benchmarks for ``make bench``: ``python -m bench.run [--quick]``; see docs/performance.rst."""
