from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from collector.errors import ParseError
from collector.model import Reading, Tags
from collector.sources.fritzbox.parse import parse_devicestats
from tests.sources.fritzbox import fixture, series

BERLIN = ZoneInfo("Europe/Berlin")
FETCHED = datetime(2024, 1, 7, 12, 5, 7, tzinfo=UTC)


def parse(case: str, *, fetched_at: datetime = FETCHED, tags: Tags = ()) -> tuple[Reading, ...]:
    return parse_devicestats(
        fixture("devicestats", case),
        site="home",
        device_id="087610000434",
        device="Steckdose",
        fetched_at=fetched_at,
        tz=BERLIN,
        tags=tags,
    )


DAY = {"period": "day"}
MONTH = {"period": "month"}


def test_spec_example_without_datatime_uses_fetch_time_floored_to_grid() -> None:
    assert series(parse("spec_example")) == [
        ("temperature_c", 24.5, "2024-01-07T12:00:00+00:00", {}),
        ("temperature_c", 25.5, "2024-01-07T11:45:00+00:00", {}),
        # "-" at 11:30 is unknown: no point, but it keeps its place in the grid
        ("temperature_c", 24.0, "2024-01-07T11:15:00+00:00", {}),
        ("voltage_v", 228.615, "2024-01-07T12:05:00+00:00", {}),
        ("voltage_v", 228.615, "2024-01-07T12:04:50+00:00", {}),
        ("voltage_v", 228.61, "2024-01-07T12:04:40+00:00", {}),
        ("power_w", 10.67, "2024-01-07T12:05:00+00:00", {}),
        ("power_w", 10.67, "2024-01-07T12:04:50+00:00", {}),
        ("power_w", 10.66, "2024-01-07T12:04:40+00:00", {}),
    ]


def test_every_block_has_its_own_datatime() -> None:
    readings = parse("datatime_all")
    assert series(readings) == [
        ("temperature_c", 21.5, "2024-01-07T11:58:20+00:00", {}),
        ("temperature_c", 21.0, "2024-01-07T11:43:20+00:00", {}),
        ("temperature_c", 20.5, "2024-01-07T11:13:20+00:00", {}),
        ("humidity_pct", 48.0, "2024-01-07T11:58:20+00:00", {}),
        ("humidity_pct", 47.0, "2024-01-07T11:43:20+00:00", {}),
        ("humidity_pct", 49.0, "2024-01-07T11:28:20+00:00", {}),
        ("voltage_v", 230.252, "2024-01-07T12:00:00+00:00", {}),
        ("voltage_v", 230.1, "2024-01-07T11:59:50+00:00", {}),
        ("power_w", 10.67, "2024-01-07T12:00:00+00:00", {}),
        ("power_w", 0.0, "2024-01-07T11:59:50+00:00", {}),
        ("power_w", 0.12, "2024-01-07T11:59:40+00:00", {}),
        # the current month (January 2024) and day (7 January) in Berlin, still growing
        ("energy_period_wh", 820.0, "2023-12-31T23:00:00+00:00", MONTH),
        ("energy_period_wh", 9100.0, "2023-11-30T23:00:00+00:00", MONTH),
        ("energy_period_wh", 120.0, "2024-01-06T23:00:00+00:00", DAY),
        ("energy_period_wh", 343.0, "2024-01-05T23:00:00+00:00", DAY),
    ]
    assert {(r.source, r.site, r.device_id, r.device) for r in readings} == {
        ("fritzbox", "home", "087610000434", "Steckdose")
    }
    assert all(r.time.tzinfo is UTC for r in readings)
    assert all(r.label is None for r in readings)


def test_extra_tags_are_merged_sorted() -> None:
    readings = parse("energy_no_datatime", tags=(("model", "FRITZ!DECT 200"), ("room", "Flur")))
    assert {r.tags for r in readings} == {
        (("model", "FRITZ!DECT 200"), ("period", "month"), ("room", "Flur")),
        (("model", "FRITZ!DECT 200"), ("period", "day"), ("room", "Flur")),
    }


def test_energy_periods_across_summer_time_and_new_year() -> None:
    assert series(parse("energy_dst")) == [
        ("energy_period_wh", 12.0, "2024-03-31T22:00:00+00:00", MONTH),  # April (CEST)
        ("energy_period_wh", 8301.0, "2024-02-29T23:00:00+00:00", MONTH),  # March (CET)
        ("energy_period_wh", 3256.0, "2024-01-31T23:00:00+00:00", MONTH),
        ("energy_period_wh", 1455.0, "2023-12-31T23:00:00+00:00", MONTH),
        ("energy_period_wh", 5.0, "2024-03-31T22:00:00+00:00", DAY),  # 1 April
        ("energy_period_wh", 343.0, "2024-03-30T23:00:00+00:00", DAY),  # 31 March: 23 h long
        ("energy_period_wh", 347.0, "2024-03-29T23:00:00+00:00", DAY),
        ("energy_period_wh", 0.0, "2024-03-28T23:00:00+00:00", DAY),  # a zero is a reading
    ]


def test_energy_without_datatime_uses_the_day_of_the_fetch() -> None:
    # 23:30 UTC on 7 January is 00:30 on 8 January in Berlin
    late = datetime(2024, 1, 7, 23, 30, tzinfo=UTC)
    assert series(parse("energy_no_datatime", fetched_at=late)) == [
        ("energy_period_wh", 300.0, "2023-12-31T23:00:00+00:00", MONTH),
        ("energy_period_wh", 400.0, "2023-11-30T23:00:00+00:00", MONTH),
        ("energy_period_wh", 10.0, "2024-01-07T23:00:00+00:00", DAY),
        ("energy_period_wh", 20.0, "2024-01-06T23:00:00+00:00", DAY),
    ]


def test_not_connected_device_has_no_statistics() -> None:
    assert parse("not_connected") == ()


def test_unknown_energy_grid_and_unknown_quantity_are_skipped() -> None:
    assert series(parse("unknown_energy_grid")) == [
        ("temperature_c", 20.0, "2024-01-07T12:00:00+00:00", {}),
    ]


def test_reparsing_gives_identical_timestamps() -> None:
    for case in ("datatime_all", "energy_dst"):
        first = parse(case, fetched_at=FETCHED)
        again = parse(case, fetched_at=datetime(2024, 1, 9, 3, 0, tzinfo=UTC))
        assert first == again
    # without datatime: identical within the same grid slot
    first = parse("spec_example", fetched_at=datetime(2024, 1, 7, 12, 5, 1, tzinfo=UTC))
    again = parse("spec_example", fetched_at=datetime(2024, 1, 7, 12, 5, 9, tzinfo=UTC))
    assert first == again


@pytest.mark.parametrize(
    ("case", "part", "message"),
    [
        ("bad_value", "devicestats/power/stats[1]/value[1]", "not an integer: '1x0'"),
        ("missing_grid", "devicestats/temperature/stats[1]@grid", "grid is missing"),
        ("bad_datatime", "devicestats/voltage/stats[1]@datatime", "not an integer"),
        ("before_1970", "devicestats/power/stats[1]/value[2]", "before 1970"),
        ("hostile_entity_expansion", "devicestats", "document type declarations"),
        ("truncated", "devicestats", "not well-formed XML"),
    ],
)
def test_bad_statistics_raise_parse_error(case: str, part: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse(case)
    assert info.value.part == part


_POWER = "devicestats/power/stats[1]"


@pytest.mark.parametrize(
    ("xml", "part", "message"),
    [
        (b"<devicelist/>", "devicestats", "root element is <devicelist>"),
        (b'<devicestats><power><stats grid="0">1</stats></power></devicestats>',
         f"{_POWER}@grid", "grid is missing or zero"),
        (b'<devicestats><power><stats grid="-10">1</stats></power></devicestats>',
         f"{_POWER}@grid", "grid out of range: -10"),
        (b'<devicestats><power><stats grid="10" count="many">1</stats></power></devicestats>',
         f"{_POWER}@count", "not an integer: 'many'"),
        (b'<devicestats><power><stats grid="10" datatime="99999999999999">1</stats></power>'
         b"</devicestats>", f"{_POWER}@datatime", "datatime out of range: 99999999999999"),
        # 2262-04-12: after the last second InfluxDB can store
        (b'<devicestats><power><stats grid="10" datatime="9223372037">1</stats></power>'
         b"</devicestats>", f"{_POWER}@datatime", "datatime out of range: 9223372037"),
        (b'<devicestats><energy><stats grid="86400" datatime="100">1,2,3</stats></energy>'
         b"</devicestats>", "devicestats/energy/stats[1]/value[0]", "before 1970"),
        (b'<devicestats><humidity><stats grid="900" datatime="1704628800">101</stats>'
         b"</humidity></devicestats>", "devicestats/humidity/stats[1]/value[0]",
         "percentage out of range: 101"),
    ],
)  # fmt: skip
def test_invalid_statistics(xml: bytes, part: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_devicestats(
            xml, site="home", device_id="x", device="x", fetched_at=FETCHED, tz=BERLIN
        )
    assert info.value.part == part


def test_a_bad_value_costs_only_itself_when_problems_are_collected() -> None:
    """humidity 101 and a datatime after 2262 are lost; every other value is read."""
    xml = (
        b'<devicestats><humidity><stats count="3" grid="900" datatime="1704628800">'
        b"45,101,47</stats></humidity>"
        b'<temperature><stats count="2" grid="900" datatime="1704628800">215,210</stats>'
        b"</temperature>"
        b'<power><stats count="1" grid="10" datatime="9223372037">100</stats></power>'
        b"</devicestats>"
    )
    problems: list[ParseError] = []
    readings = parse_devicestats(
        xml, site="home", device_id="x", device="x", fetched_at=FETCHED, tz=BERLIN,
        problems=problems,
    )  # fmt: skip
    assert series(readings) == [
        ("humidity_pct", 45.0, "2024-01-07T12:00:00+00:00", {}),
        ("humidity_pct", 47.0, "2024-01-07T11:30:00+00:00", {}),
        ("temperature_c", 21.5, "2024-01-07T12:00:00+00:00", {}),
        ("temperature_c", 21.0, "2024-01-07T11:45:00+00:00", {}),
    ]
    assert [(p.part, str(p)) for p in problems] == [
        ("devicestats/humidity/stats[1]/value[1]",
         "percentage out of range: 101 (at devicestats/humidity/stats[1]/value[1])"),
        (f"{_POWER}@datatime",
         f"attribute datatime out of range: 9223372037 (at {_POWER}@datatime)"),
    ]  # fmt: skip
