"""Benchmarks: `make bench` (python -m bench). Each ratio's baseline is measured in the same run."""
