"""The soak benchmark: its figures, and the count of readings lost it rests on."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.bench_soak import SITE, main, readings_lost, slope_per_hour
from collector.lineprotocol import Encoder
from collector.simulators.fritzbox import FritzboxSimulator
from collector.sources.fritzbox.parse import parse_devicelist
from collector.stores.sqlite import SqliteStore

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()


@pytest.mark.skipif(not Path("/proc/self/stat").exists() or sys.platform != "linux",
                    reason="the soak reads /proc")
def test_soak_prints_its_figures_and_loses_no_reading(capsys: pytest.CaptureFixture[str]) -> None:
    figures = main(15.0)
    out = capsys.readouterr().out
    for key in ("soak_rss_mb", "soak_rss_growth_mb_per_h", "soak_cpu_ms_per_poll_cycle",
                "soak_readings_lost"):
        assert f"{key}: " in out
    assert figures["soak_readings_lost"] == 0.0
    # 15 s at a 2 s interval: several polls of 60 devices were served and counted
    assert figures["soak_poll_cycles"] >= 4
    assert figures["soak_readings_counted"] >= 100
    assert figures["soak_rss_mb"] > 0
    assert figures["soak_cpu_ms_per_poll_cycle"] > 0


def _answers(times: list[float]) -> list[tuple[float, bytes]]:
    """Device-list answers of a 10-device box served at ``times``."""
    box = FritzboxSimulator(devices=10, clock=lambda: T0)
    return [(t, box.devicelist_xml(t).encode()) for t in times]


def _own_time(xml: bytes) -> int:
    """Readings of an answer with a time of their own (a button's last press)."""
    polled = datetime.fromtimestamp(T0 + 1000, UTC)
    return sum(r.time != polled for r in parse_devicelist(xml, site=SITE, time=polled).readings)


def _store(path: Path, served: list[tuple[float, bytes]], polled: list[float],
           drop: int = 0) -> int:
    """Store the readings of each answer stamped at its poll time, less the last ``drop``
    of the final answer; returns the readings of the final answer."""
    store = SqliteStore(path)
    try:
        last = 0
        for i, ((_, xml), p) in enumerate(zip(served, polled, strict=True)):
            readings = parse_devicelist(xml, site=SITE,
                                        time=datetime.fromtimestamp(p, UTC)).readings
            last = len(readings)
            if i == len(served) - 1:
                readings = readings[:last - drop]
            store.write_sync(Encoder().encode_many(readings))
    finally:
        store.close()
    return last


def test_every_reading_stored_at_its_poll_time_is_found(tmp_path: Path) -> None:
    served = _answers([T0, T0 + 2, T0 + 4])
    per_answer = _store(tmp_path / "s.sqlite3", served, [T0 - 0.5, T0 + 1.2, T0 + 3.1])
    counted, lost = readings_lost(served, tmp_path / "s.sqlite3", T0 + 1, T0 + 5)
    assert per_answer > 10  # a 10-device house gives several readings per device
    # a button press repeated by both answers is one point
    assert _own_time(served[1][1]) > 0
    assert (counted, lost) == (2 * per_answer - _own_time(served[1][1]), 0)


def test_a_missing_reading_is_lost(tmp_path: Path) -> None:
    served = _answers([T0, T0 + 2, T0 + 4])
    per_answer = _store(tmp_path / "s.sqlite3", served, [T0 - 0.5, T0 + 1.2, T0 + 3.1], drop=3)
    counted, lost = readings_lost(served, tmp_path / "s.sqlite3", T0 + 1, T0 + 5)
    assert (counted, lost) == (2 * per_answer - _own_time(served[1][1]), 3)


def test_a_reading_stamped_outside_its_answers_window_is_lost(tmp_path: Path) -> None:
    served = _answers([T0, T0 + 2, T0 + 4])
    # the third poll's readings stamped after its answer was served: not that answer's
    _store(tmp_path / "s.sqlite3", served, [T0 - 0.5, T0 + 1.2, T0 + 4.5])
    polled = datetime.fromtimestamp(T0 + 4.5, UTC)
    stamped = [r for r in parse_devicelist(served[2][1], site=SITE, time=polled).readings
               if r.time == polled]
    counted, lost = readings_lost(served, tmp_path / "s.sqlite3", T0 + 3, T0 + 5)
    assert len(stamped) > 10
    assert lost == len(stamped)
    assert counted >= lost  # readings with a time of their own (button presses) are found


def test_answers_outside_the_counting_span_are_not_counted(tmp_path: Path) -> None:
    served = _answers([T0, T0 + 2])
    _store(tmp_path / "s.sqlite3", served, [T0 - 0.5, T0 + 1.2])
    assert readings_lost(served, tmp_path / "s.sqlite3", T0 + 10, T0 + 20) == (0, 0)


@given(st.floats(-100, 100), st.floats(-50, 50),
       st.lists(st.floats(0, 3600), min_size=2, max_size=50, unique=True))
def test_slope_of_a_line_is_its_gradient_per_hour(base: float, per_s: float,
                                                  ts: list[float]) -> None:
    if max(ts) - min(ts) < 1:
        return
    samples = [(t, base + per_s * t) for t in ts]
    assert slope_per_hour(samples) == pytest.approx(per_s * 3600, rel=1e-6, abs=1e-6)


def test_slope_of_too_few_samples_is_zero() -> None:
    assert slope_per_hour([]) == 0.0
    assert slope_per_hour([(1.0, 50.0)]) == 0.0
    assert slope_per_hour([(1.0, 50.0), (1.0, 60.0)]) == 0.0
