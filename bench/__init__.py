"""Socle benchmarks: each module runs as `python -m bench.<name>`; figures go to bench/RESULTS.md."""
