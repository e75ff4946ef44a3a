"""Tests of the FRITZ!Box parsers and normaliser, and shared helpers for them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from collector.model import Reading

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fritzbox"


def fixture(endpoint: str, case: str) -> bytes:
    return (FIXTURES / endpoint / f"{case}.xml").read_bytes()


def rows(readings: Iterable[Reading]) -> list[tuple[Any, ...]]:
    """Readings as comparable rows: (device_id, device, measurement, value, label, tags)."""
    return [
        (r.device_id, r.device, r.measurement, r.value, r.label, dict(r.tags)) for r in readings
    ]


def series(readings: Iterable[Reading]) -> list[tuple[Any, ...]]:
    """Readings as (measurement, value, UTC ISO time, tags) rows."""
    return [(r.measurement, r.value, r.time.isoformat(), dict(r.tags)) for r in readings]
