"""Benchmarks: the relay against the bare stack it stands on, run with `python -m benchmarks`."""
