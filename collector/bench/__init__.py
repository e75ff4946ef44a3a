"""The benchmarks: ``python -m collector.bench`` prints every figure."""
