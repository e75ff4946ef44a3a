"""The line-protocol encoder: exact lines, the parser round trip, and a real influxd.

The substitutions the encoder documents (module docstring of collector.lineprotocol) are
written out independently here as ``documented()``: line breaks in names and tags become
spaces; a backslash at the end of a name or tag, or right before a comma, equals sign or
space (after that first substitution), becomes ``/``; every other character is kept.
"""

from __future__ import annotations

import calendar
import itertools
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.errors import EncodeError
from collector.lineprotocol import (
    Encoder,
    encode,
    encode_many,
    escape_key,
    escape_measurement,
    escape_string_field,
    format_float,
    parse_line,
    time_ns,
)
from collector.model import Reading
from collector.schema import TABLE
from tests.influxd import Influxd

T0 = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
T0_NS = 1704164645123456000
TAIL = "device_id=116570012345,site=home,source=fritzbox"
BASE_LINE = f"temperature_c,device=Living\\ room,{TAIL} value=21.5 {T0_NS}"


def reading(**kw: Any) -> Reading:
    args: dict[str, Any] = {
        "measurement": "temperature_c",
        "value": 21.5,
        "time": T0,
        "source": "fritzbox",
        "site": "home",
        "device_id": "116570012345",
        "device": "Living room",
    }
    args.update(kw)
    return Reading(**args)


def documented(text: str) -> str:
    """What a name or tag becomes, per the encoder's module docstring."""
    text = text.replace("\r", " ").replace("\n", " ")
    return re.sub(r"\\(?=[,= ]|\Z)", "/", text)


def documented_label(text: str) -> str:
    """String fields keep everything except line breaks, which become spaces."""
    return text.replace("\r", " ").replace("\n", " ")


def expected_ns(ts: datetime) -> int:
    """Nanoseconds since the epoch computed without the encoder's arithmetic."""
    utc = ts.astimezone(UTC)
    return calendar.timegm(utc.timetuple()) * 10**9 + utc.microsecond * 1000


# --- exact lines --------------------------------------------------------------------------


def test_base_line() -> None:
    assert encode(reading()) == BASE_LINE


@pytest.mark.parametrize(
    ("device", "escaped"),
    [
        ("Plug", "Plug"),
        ("Plug 1", "Plug\\ 1"),
        ("a,b", "a\\,b"),
        ("a=b", "a\\=b"),
        ("a, b=c", "a\\,\\ b\\=c"),
        ('say "hi"', 'say\\ "hi"'),  # quotes need no escape in tags
        ("line1\nline2", "line1\\ line2"),
        ("crlf\r\n", "crlf\\ \\ "),
        ("Küche 🌡", "Küche\\ 🌡"),
        ("tab\there", "tab\there"),
        ("#hash", "#hash"),
        # backslashes: kept unless they would escape the next character or end the tag
        ("a\\b", "a\\b"),
        ("a\\\\b", "a\\\\b"),
        ("a\\", "a/"),
        ("\\", "/"),
        ("a\\,b", "a/\\,b"),
        ("a\\ b", "a/\\ b"),
        ("a\\=b", "a/\\=b"),
        ("a\\\nb", "a/\\ b"),
        ("a\\\\,b", "a\\/\\,b"),
    ],
)
def test_tag_value_escaping(device: str, escaped: str) -> None:
    assert encode(reading(device=device)) == (
        f"temperature_c,device={escaped},{TAIL} value=21.5 {T0_NS}"
    )


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("a b", "a\\ b"),
        ("a,b", "a\\,b"),
        ("a=b", "a\\=b"),
        ("a\nb", "a\\ b"),
        ("a\\", "a/"),
        ("a\\b", "a\\b"),
        ('a"b', 'a"b'),
    ],
)
def test_tag_key_escaping(key: str, escaped: str) -> None:
    # keys starting with "a" sort before "device"
    line = encode(reading(tags=((key, "x"),)))
    assert line == f"temperature_c,{escaped}=x,device=Living\\ room,{TAIL} value=21.5 {T0_NS}"


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("value", "value"),
        ("my field", "my\\ field"),
        ("a,b=c", "a\\,b\\=c"),
        ("a\\", "a/"),
    ],
)
def test_field_key_escaping(text: str, escaped: str) -> None:
    assert escape_key(text) == escaped


@pytest.mark.parametrize(
    ("measurement", "escaped"),
    [
        ("temperature_c", "temperature_c"),
        ("my measurement", "my\\ measurement"),
        ("a,b", "a\\,b"),
        ("a=b", "a=b"),  # equals signs are not escaped in measurements
        ('a"b', 'a"b'),
        ("a\nb", "a\\ b"),
        ("a\\b", "a\\b"),
        ("a\\", "a/"),
        ("a\\,b", "a/\\,b"),
        ("a\\=b", "a/=b"),
    ],
)
def test_measurement_escaping(measurement: str, escaped: str) -> None:
    assert escape_measurement(measurement) == escaped
    assert encode(reading(measurement=measurement)) == f"{escaped},{BASE_LINE[14:]}"


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("off", 'label="off"'),
        ("", 'label=""'),
        ('off "manual"', 'label="off \\"manual\\""'),
        ("C:\\dir", 'label="C:\\\\dir"'),
        ("trailing\\", 'label="trailing\\\\"'),
        ('\\"', 'label="\\\\\\""'),
        ("a, b=c d", 'label="a, b=c d"'),
        ("line1\nline2\r", 'label="line1 line2 "'),
        ("Küche 🌡", 'label="Küche 🌡"'),
    ],
)
def test_label_string_field(label: str, field: str) -> None:
    line = encode(reading(measurement="state", value=1, label=label))
    assert line == f"state,device=Living\\ room,{TAIL} value=1.0,{field} {T0_NS}"


def test_escape_string_field() -> None:
    assert escape_string_field('a\\b"c\nd') == 'a\\\\b\\"c d'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (21, "21.0"),
        (21.5, "21.5"),
        (0, "0.0"),
        (-0.0, "-0.0"),
        (-40, "-40.0"),
        (True, "1.0"),
        (False, "0.0"),
        (0.1, "0.1"),
        (1e16, "1e+16"),
        (1e-7, "1e-07"),
        (123456789012345678, "1.2345678901234568e+17"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
    ],
)
def test_values_are_always_floats(value: float, text: str) -> None:
    line = encode(reading(value=value))
    assert line == f"temperature_c,device=Living\\ room,{TAIL} value={text} {T0_NS}"
    assert format_float(value) == text
    assert parse_line(line).field("value") == float(value)
    assert type(parse_line(line).field("value")) is float


def test_tags_sorted_by_key_whatever_the_input_order() -> None:
    tags = (("zone", "b"), ("kind", "a"), ("Model", "c"), ("ä", "1"), ("z", "2"))
    expected = (
        "temperature_c,Model=c,device=Living\\ room,device_id=116570012345,kind=a,"
        f"site=home,source=fritzbox,z=2,zone=b,ä=1 value=21.5 {T0_NS}"
    )
    assert encode(reading(tags=tags)) == expected
    assert encode(reading(tags=tuple(reversed(tags)))) == expected
    assert Encoder().encode(reading(tags=tags[2:] + tags[:2])) == expected


def test_empty_tag_values_are_left_out() -> None:
    line = encode(reading(device="", site="", tags=(("room", ""), ("kind", "target"))))
    assert line == (
        f"temperature_c,device_id=116570012345,kind=target,source=fritzbox value=21.5 {T0_NS}"
    )


def test_encode_many_matches_encode() -> None:
    readings = [reading(), reading(value=3, device="B"), reading(label="x")]
    assert encode_many(readings) == [encode(r) for r in readings]
    assert Encoder().encode_many(readings) == [
        BASE_LINE,
        f"temperature_c,device=B,{TAIL} value=3.0 {T0_NS}",
        f'temperature_c,device=Living\\ room,{TAIL} value=21.5,label="x" {T0_NS}',
    ]


def test_one_encoder_follows_every_change_of_a_series() -> None:
    """The encoder caches series prefixes, state field sets and the poll's timestamp: a
    change in any part of a reading shows in its line."""
    enc = Encoder()
    later = T0 + timedelta(seconds=1)
    state = reading(measurement="state", value=1.0, label="on", tags=(("name", "switch"),))
    variants = [
        state,
        state._replace(label="off"),
        state._replace(value=0.0),
        state._replace(value=-0.0),  # equal to 0.0 as a float, written differently
        state._replace(value=0.0, label="off"),
        state._replace(tags=(("name", "lock"),)),
        state._replace(device="Kitchen"),
        state._replace(device_id="116570012346"),
        state._replace(site="cabin"),
        state._replace(source="thinknx"),
        state._replace(measurement="state2"),
        state._replace(time=later),
        state._replace(label=None),
    ]
    lines = enc.encode_many(variants) + enc.encode_many(variants)
    assert lines == [encode(r) for r in variants] * 2 == [Encoder().encode(r) for r in variants] * 2
    tail = "device_id=116570012345,name=switch,site=home,source=fritzbox"
    assert lines[:5] == [
        f'state,device=Living\\ room,{tail} value=1.0,label="on" {T0_NS}',
        f'state,device=Living\\ room,{tail} value=1.0,label="off" {T0_NS}',
        f'state,device=Living\\ room,{tail} value=0.0,label="on" {T0_NS}',
        f'state,device=Living\\ room,{tail} value=-0.0,label="on" {T0_NS}',
        f'state,device=Living\\ room,{tail} value=0.0,label="off" {T0_NS}',
    ]
    assert lines[11].endswith(f'value=1.0,label="on" {T0_NS + 10**9}')
    assert lines[12] == f"state,device=Living\\ room,{tail} value=1.0 {T0_NS}"
    assert len(set(lines[:13])) == 13


# --- refused input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"), [(math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")]
)
def test_non_finite_values_refused_at_construction(value: float, shown: str) -> None:
    with pytest.raises(EncodeError) as info:
        reading(value=value)
    assert str(info.value) == f"temperature_c of '116570012345': value {shown} is not finite"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_format_float_refuses_non_finite(value: float) -> None:
    with pytest.raises(EncodeError, match=r"^value (nan|inf|-inf) cannot be written$"):
        format_float(value)


def test_naive_datetime_refused() -> None:
    with pytest.raises(EncodeError) as info:
        reading(time=datetime(2024, 1, 1, 12, 0))
    assert str(info.value) == "temperature_c of '116570012345': naive timestamp"
    with pytest.raises(EncodeError) as info:
        time_ns(datetime(2024, 1, 1, 12, 0))
    assert str(info.value) == "naive timestamp"


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ((("room", "a"), ("room", "b")), "temperature_c: tag 'room' given twice"),
        ((("device", "other"),), "temperature_c: tag 'device' given twice"),
        ((("", "x"),), "temperature_c: empty tag key"),
        ((("time", "x"),), "temperature_c: 'time' cannot be a tag key"),
    ],
)
def test_bad_tags_refused(tags: tuple[tuple[str, str], ...], message: str) -> None:
    with pytest.raises(EncodeError) as info:
        Encoder().encode(reading(tags=tags))
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("measurement", "message"),
    [
        ("", "empty measurement name"),
        # the server would read the line as a comment, answer 204 and store nothing
        ("#power", "measurement '#power' starts with '#' (a comment line)"),
        # the server strips a leading tab: "\tpower" would be stored as "power"
        ("\tpower", "measurement '\\tpower' starts with a tab (the server drops it)"),
    ],
)
def test_bad_measurement_refused(measurement: str, message: str) -> None:
    with pytest.raises(EncodeError) as info:
        Encoder().encode(reading(measurement=measurement))
    assert str(info.value) == message


# --- timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "ns"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (T0, T0_NS),
        (datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC), 1704067200000001000),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), -1000),
        (datetime(1900, 1, 1, tzinfo=UTC), -2208988800000000000),
        (datetime(2250, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), 8867491199999999000),
        # the first and last microsecond InfluxDB can store
        (datetime(1677, 9, 21, 0, 12, 43, 145225, tzinfo=UTC), -9223372036854775000),
        (datetime(2262, 4, 11, 23, 47, 16, 854775, tzinfo=UTC), 9223372036854775000),
        # aware non-UTC datetimes are converted
        (datetime(2024, 7, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")), 1719828000000000000),
        (datetime(2024, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
         1704067200000000000),
    ],
)
def test_timestamps_exact_ns(ts: datetime, ns: int) -> None:
    assert time_ns(ts) == ns
    line = encode(reading(time=ts))
    assert line.endswith(f" value=21.5 {ns}")
    assert parse_line(line).time_ns == ns


@pytest.mark.parametrize(
    "ts",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1677, 9, 21, 0, 12, 43, 145224, tzinfo=UTC),
        datetime(2262, 4, 11, 23, 47, 16, 854776, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
    ],
)
def test_timestamps_outside_influx_range_refused(ts: datetime) -> None:
    with pytest.raises(EncodeError) as info:
        Encoder().encode(reading(time=ts))
    assert str(info.value) == (
        f"timestamp {ts.isoformat()} is outside InfluxDB's range (1677-09-21 to 2262-04-11)"
    )


# --- strategies --------------------------------------------------------------------------

SCHEMA_NAMES = [m.name for m in TABLE]
SPECIAL = ' ,="\\\n\r\t#'
CHARS = st.one_of(
    st.sampled_from(SPECIAL),
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
)
EXTRA_KEYS = ("kind", "model", "room")
TIMES = st.datetimes(
    min_value=datetime(1678, 1, 1),
    max_value=datetime(2262, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)), ZoneInfo("Europe/Berlin")]),
)
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63),
)


def texts(min_size: int = 0, max_size: int = 16) -> st.SearchStrategy[str]:
    return st.text(CHARS, min_size=min_size, max_size=max_size)


# schema names, and arbitrary ones except those the encoder refuses (see above)
MEASUREMENTS = st.sampled_from(SCHEMA_NAMES) | texts(min_size=1).filter(lambda m: m[0] not in "#\t")


@st.composite
def readings(draw: st.DrawFn, *, time: datetime | None = None) -> Reading:
    return Reading(
        measurement=draw(MEASUREMENTS),
        value=draw(VALUES),
        time=time if time is not None else draw(TIMES),
        source=draw(st.sampled_from(["fritzbox", "thinknx", "overkiz", "collector"])),
        site=draw(texts()),
        device_id=draw(texts(min_size=1)),
        device=draw(texts()),
        tags=tuple((k, draw(texts())) for k in EXTRA_KEYS if draw(st.booleans())),
        label=draw(st.none() | texts()),
    )


@st.composite
def batches(draw: st.DrawFn) -> list[Reading]:
    """Readings with distinct instants, so none overwrites another in the server."""
    times = draw(st.lists(TIMES, min_size=1, max_size=25, unique_by=expected_ns))
    return [draw(readings(time=t)) for t in times]


def expected_tags(r: Reading) -> dict[str, str | None]:
    """Every tag the server should report for ``r``; None where the encoder left it out."""
    given = {"source": r.source, "site": r.site, "device_id": r.device_id, "device": r.device}
    given.update(dict(r.tags))
    tags: dict[str, str | None] = dict.fromkeys(EXTRA_KEYS)
    tags.update({k: documented(v) if v else None for k, v in given.items()})
    return tags


# --- parser round trip -------------------------------------------------------------------


@settings(max_examples=300)
@given(r=readings())
def test_parse_line_round_trips_encode(r: Reading) -> None:
    line = encode(r)
    assert "\n" not in line and "\r" not in line
    assert Encoder().encode(r) == line  # the prefix cache changes nothing
    parsed = parse_line(line)
    assert parsed.measurement == documented(r.measurement)
    assert dict(parsed.tags) == {k: v for k, v in expected_tags(r).items() if v is not None}
    assert [k for k, _ in parsed.tags] == sorted(k for k, _ in parsed.tags)
    value = parsed.field("value")
    assert type(value) is float
    assert value == float(r.value)
    expected_label = None if r.label is None else documented_label(r.label)
    assert parsed.field("label") == expected_label
    assert parsed.time_ns == expected_ns(r.time)


# --- a real InfluxDB ---------------------------------------------------------------------

_dbs = itertools.count()


@pytest.fixture
def fresh_db(influxd: Influxd) -> Iterator[Any]:
    """A factory of new databases (hypothesis examples must not share one)."""
    made: list[str] = []

    def make() -> str:
        name = f"lp{next(_dbs)}"
        influxd.create_db(name)
        made.append(name)
        return name

    yield make
    for name in made:
        influxd.query(f'DROP DATABASE "{name}"')


def write_and_read(influxd: Influxd, db: str, batch: list[Reading]) -> dict[int, dict[str, Any]]:
    resp = influxd.write(db, "\n".join(encode_many(batch)))
    assert resp.status_code == 204, resp.text
    rows = influxd.rows("SELECT * FROM /.*/", db)
    assert len(rows) == len(batch)
    return {row["time"]: row for row in rows}


def assert_stored(row: dict[str, Any], r: Reading) -> None:
    assert row["_measurement"] == documented(r.measurement)
    for key, value in expected_tags(r).items():
        assert row.get(key) == value, key
    assert float(row["value"]) == r.value
    assert row.get("label") == (None if r.label is None else documented_label(r.label))


TRICKY = [
    "Plug 1", "a,b", "a=b", 'say "hi"', "line1\nline2", "crlf\r\n", "Küche 🌡", "tab\there",
    "#hash", " lead", "trail ", "a\\b", "a\\\\b", "a\\", "\\", "a\\,b", "a\\ b", "a\\=b",
    "a\\\nb", "a\\\\,b", "=", ",", " ", "\n", "é\u00a0\u2028\u3000\x85\x1c",
]


@pytest.mark.integration
def test_real_influxd_stores_the_documented_substitutions(influxd: Influxd, fresh_db: Any) -> None:
    batch = [
        reading(
            measurement="state", time=T0 + timedelta(seconds=i), value=i, device=text,
            device_id=f"id{text}", site=text, tags=(("room", text),), label=text,
        )
        for i, text in enumerate(TRICKY)
    ]
    by_time = write_and_read(influxd, fresh_db(), batch)
    for r in batch:
        row = by_time[expected_ns(r.time)]
        assert_stored(row, r)
    # spot checks of the rule itself, written out
    assert by_time[T0_NS + 13 * 10**9]["device"] == "a/"
    assert by_time[T0_NS + 15 * 10**9]["device"] == "a/,b"
    assert by_time[T0_NS + 11 * 10**9]["device"] == "a\\b"
    assert by_time[T0_NS + 4 * 10**9]["device"] == "line1 line2"
    assert by_time[T0_NS + 4 * 10**9]["label"] == "line1 line2"
    assert by_time[T0_NS + 3 * 10**9]["label"] == 'say "hi"'


@pytest.mark.integration
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=batches())
def test_real_influxd_reads_back_what_was_encoded(
    influxd: Influxd, fresh_db: Any, batch: list[Reading]
) -> None:
    # Newlines in tags come back as spaces and a backslash that would escape the next
    # character (or end the tag) as "/", see documented(); labels keep everything but
    # line breaks. Values come back equal as floats, timestamps to the nanosecond.
    by_time = write_and_read(influxd, fresh_db(), batch)
    for r in batch:
        assert_stored(by_time[expected_ns(r.time)], r)


@pytest.mark.integration
def test_int_then_float_is_one_float_field(influxd: Influxd, influx_db: str) -> None:
    first = reading(measurement="power_w", value=21, time=T0)
    second = reading(measurement="power_w", value=21.5, time=T0 + timedelta(seconds=60))
    assert encode(first).endswith(f" value=21.0 {T0_NS}")
    for r in (first, second):
        resp = influxd.write(influx_db, encode(r))
        assert resp.status_code == 204, resp.text
    keys = influxd.rows("SHOW FIELD KEYS FROM power_w", influx_db)
    assert [(k["fieldKey"], k["fieldType"]) for k in keys] == [("value", "float")]
    rows = influxd.rows("SELECT value FROM power_w", influx_db)
    assert [(row["time"], float(row["value"])) for row in rows] == [
        (T0_NS, 21.0),
        (T0_NS + 60 * 10**9, 21.5),
    ]
    # the server does enforce one type per field: an integer first would have broken this
    conflict_db = influx_db + "_int"
    influxd.create_db(conflict_db)
    assert influxd.write(conflict_db, f"power_w,device_id=x value=21i {T0_NS}").status_code == 204
    resp = influxd.write(conflict_db, f"power_w,device_id=x value=21.5 {T0_NS + 1}")
    assert resp.status_code == 400
    assert "field type conflict" in resp.text
