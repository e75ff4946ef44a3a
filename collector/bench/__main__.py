"""``python -m collector.bench``: the benchmark figures, side by side."""

from collector.bench.figures import main

main()
