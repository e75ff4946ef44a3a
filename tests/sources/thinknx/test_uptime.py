"""Uptime texts of system/serverStatus, English and Italian, singular and plural."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import ParseError
from collector.sources.thinknx.uptime import parse_uptime

D, H, M = 86400.0, 3600.0, 60.0


@pytest.mark.parametrize(("text", "seconds"), [
    ("2 days 1 hour 3 min", 2 * D + H + 3 * M),
    ("23 days 4 hours 12 min", 23 * D + 4 * H + 12 * M),
    ("1 day 1 hour 1 min", D + H + M),
    ("0 days 0 hours 0 min", 0.0),
    ("2 giorni 1 ora 3 min", 2 * D + H + 3 * M),
    ("1 giorno 5 ore 0 min", D + 5 * H),
    ("5 hours 2 min", 5 * H + 2 * M),  # a zero part left out
    ("7 min", 7 * M),
    ("3 days", 3 * D),
    (" 1 Day, 2 Hours, 3 Min ", D + 2 * H + 3 * M),
    ("10 minutes", 10 * M),
    ("4 minuti", 4 * M),
])
def test_uptime_table(text: str, seconds: float) -> None:
    value = parse_uptime(text)
    assert value == seconds and type(value) is float


@pytest.mark.parametrize("text", [
    "", "soon", "2 days 1 hour 3", "2 weeks", "1 day 2 days", "days 3", "1 day; drop table",
    "-1 day", "1.5 hours",
])
def test_garbage_is_a_parse_error_naming_the_field(text: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_uptime(text, field="process_uptime")
    assert caught.value.part == "process_uptime"


def test_not_a_text() -> None:
    with pytest.raises(ParseError, match="server_uptime"):
        parse_uptime(12, field="server_uptime")


@given(d=st.integers(0, 5000), h=st.integers(0, 23), m=st.integers(0, 59),
       italian=st.booleans())
def test_round_trip(d: int, h: int, m: int, italian: bool) -> None:
    if italian:
        text = (f"{d} {'giorno' if d == 1 else 'giorni'} {h} {'ora' if h == 1 else 'ore'} "
                f"{m} min")
    else:
        text = f"{d} {'day' if d == 1 else 'days'} {h} {'hour' if h == 1 else 'hours'} {m} min"
    assert parse_uptime(text) == d * D + h * H + m * M


@given(st.text(max_size=30))
def test_fuzz_only_parse_errors(text: str) -> None:
    try:
        value = parse_uptime(text)
    except ParseError:
        return
    assert value >= 0 and type(value) is float
