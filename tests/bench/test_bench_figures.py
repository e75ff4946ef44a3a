"""How the end-to-end benchmark turns its wall times into figures."""

from __future__ import annotations

import pytest

from collector.bench.figures import paired_ratios


def test_the_baseline_is_the_connection_count_fastest_over_all_alternations() -> None:
    # wall times in seconds: raw ingest on 1..4 connections, then the pipeline
    raw = [[0.60, 0.30, 0.36, 0.50],
           [0.62, 0.32, 0.20, 0.52],  # one lucky run on three connections
           [0.58, 0.28, 0.34, 0.48]]
    e2e = [0.50, 0.40, 0.56]
    figures = paired_ratios(raw, e2e)
    assert figures["raw_ingest_connections"] == 2.0  # median 0.30 against 0.34, 0.50, 0.60
    # each alternation against the pipeline's run beside it, on two connections
    assert figures["end_to_end_vs_raw_ingest"] == pytest.approx(0.6)  # 0.30 / 0.50
    assert figures["end_to_end_vs_raw_ingest_best"] == pytest.approx(0.8)  # 0.32 / 0.40
    assert figures["end_to_end_vs_raw_ingest_worst"] == pytest.approx(0.5)  # 0.28 / 0.56
    assert figures["end_to_end_vs_raw_ingest_1conn"] == pytest.approx(1.2)  # 0.60 / 0.50
    # the fastest of each alternation's four runs: 0.30/0.50, 0.20/0.40, 0.28/0.56
    assert figures["end_to_end_vs_raw_ingest_fastest_of_four"] == pytest.approx(0.5)
