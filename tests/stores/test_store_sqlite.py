"""The embedded SQLite store."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.errors import StoreRejected
from collector.lineprotocol import Encoder, parse_line, time_ns
from collector.model import Reading, make_tags
from collector.stores.sqlite import LatestValue, SqliteStore

T0 = 1_700_000_000_000_000_000
MIN = 60_000_000_000

PLUG = "power_w,device=Plug\\ 1,device_id=116570012345,site=home,source=fritzbox"
HKR = "temperature_c,device=HKR\\,Bad,device_id=09995,room=Bad,site=home,source=fritzbox"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "data" / "collector.sqlite3")
    yield s
    s.close()


def write(store: SqliteStore, lines: list[str]) -> None:
    asyncio.run(store.write(lines))


def rows(store: SqliteStore) -> list[tuple[object, ...]]:
    with sqlite3.connect(store.path) as db:
        return db.execute(
            "SELECT measurement, series, time_ns, value, label, tags FROM points "
            "ORDER BY measurement, series, time_ns"
        ).fetchall()


def test_row_layout(store: SqliteStore) -> None:
    write(store, [f"{PLUG} value=12.5 {T0}", f"{HKR} value=21.0 {T0 + MIN}"])
    assert rows(store) == [
        (
            "power_w",
            "device=Plug\\ 1,device_id=116570012345,site=home,source=fritzbox",
            T0,
            12.5,
            None,
            '{"device":"Plug 1","device_id":"116570012345","site":"home","source":"fritzbox"}',
        ),
        (
            "temperature_c",
            "device=HKR\\,Bad,device_id=09995,room=Bad,site=home,source=fritzbox",
            T0 + MIN,
            21.0,
            None,
            '{"device":"HKR,Bad","device_id":"09995","room":"Bad","site":"home",'
            '"source":"fritzbox"}',
        ),
    ]


def test_same_line_twice_is_one_row(store: SqliteStore) -> None:
    line = f"{PLUG} value=12.5 {T0}"
    write(store, [line])
    write(store, [line, line])
    assert len(rows(store)) == 1
    assert store.measurements() == [("power_w", 1)]


def test_same_series_and_time_overwrites(store: SqliteStore) -> None:
    write(store, [f"{PLUG} value=12.5 {T0}"])
    write(store, [f"{PLUG} value=13.25 {T0}", f"{PLUG} value=14.0 {T0 + MIN}"])
    assert [(r[2], r[3]) for r in rows(store)] == [(T0, 13.25), (T0 + MIN, 14.0)]


def test_tag_order_does_not_make_a_new_series(store: SqliteStore) -> None:
    write(store, [f"m,b=2,a=1 value=1.0 {T0}", f"m,a=1,b=2 value=2.0 {T0}"])
    assert rows(store) == [("m", "a=1,b=2", T0, 2.0, None, '{"a":"1","b":"2"}')]


def test_labels(store: SqliteStore) -> None:
    write(
        store,
        [
            "state,device=HKR,device_id=09995,name=mode,site=home,source=fritzbox "
            f'value=0.0,label="off \\"manual\\"" {T0}',
            f'state,device=HKR,device_id=09995,name=window,site=home value=1.0,label="open" {T0}',
        ],
    )
    assert [(r[3], r[4]) for r in rows(store)] == [(0.0, 'off "manual"'), (1.0, "open")]


def test_integer_value_is_stored_as_float(store: SqliteStore) -> None:
    write(store, [f"m,a=1 value=3i {T0}"])
    [row] = rows(store)
    assert row[3] == 3.0
    assert isinstance(row[3], float)


def test_unicode_tags_round_trip(store: SqliteStore) -> None:
    write(store, [f"temperature_c,device=Küche\\ =\\ 1,room=Küche value=20.5 {T0}"])
    [(t, tags, value, label)] = list(store.query("temperature_c", None, None, None))
    assert (t, tags, value, label) == (T0, {"device": "Küche = 1", "room": "Küche"}, 20.5, None)
    assert rows(store)[0][5] == '{"device":"Küche = 1","room":"Küche"}'


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("garbage", "line 2: no field set"),
        ("m,a=1 value=1.0,other=2.0 1700000000000000000", "line 2: unsupported field other=2.0"),
        ('m,a=1 label="x" 1700000000000000000', "line 2: no numeric value field"),
        ("m,a=1 value=t 1700000000000000000", "line 2: unsupported field value=True"),
        ("m,a=1 value=nan 1700000000000000000", "line 2: value nan is not finite"),
        ("m,a=1 value=1.0", "line 2: no timestamp"),
        ("", "line 2: no measurement"),
        ("m,a=1 value=1.0 17000000000000x", "line 2: malformed line protocol"),
    ],
)
def test_bad_line_rejects_the_whole_batch(store: SqliteStore, bad: str, message: str) -> None:
    write(store, [f"{PLUG} value=1.0 {T0 - MIN}"])
    batch = [f"{PLUG} value=2.0 {T0}", bad, f"{HKR} value=21.0 {T0}"]
    with pytest.raises(StoreRejected) as info:
        write(store, batch)
    assert info.value.status == 400
    assert str(info.value).startswith(message)
    assert [(r[0], r[2], r[3]) for r in rows(store)] == [("power_w", T0 - MIN, 1.0)]


def test_cached_series_does_not_hide_a_malformed_line(store: SqliteStore) -> None:
    """An unescaped space in a tag key must not lend its series to a later line."""
    write(store, [f"m,a b=c value=1.0 {T0}"])
    with pytest.raises(StoreRejected) as info:
        write(store, [f"m,a value=2.0 {T0 + MIN}"])
    assert str(info.value).startswith("line 1: ")
    assert rows(store) == [("m", "a\\ b=c", T0, 1.0, None, '{"a b":"c"}')]


def test_file_and_parent_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "c.sqlite3"
    s = SqliteStore(path)
    try:
        write(s, [f"{PLUG} value=1.0 {T0}"])
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(Path(f"{path}-wal").stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        s.close()


def test_existing_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    s = SqliteStore(path)
    write(s, [f"{PLUG} value=1.0 {T0}"])
    s.close()
    path.chmod(0o644)  # e.g. copied in place by hand, or made under another umask
    s = SqliteStore(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert s.measurements() == [("power_w", 1)]
    finally:
        s.close()


def test_wal_and_full_sync(store: SqliteStore) -> None:
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert store._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    s = SqliteStore(path)
    write(s, [f"{PLUG} value=1.0 {T0}"])
    asyncio.run(s.aclose())
    s = SqliteStore(path)
    try:
        assert s.measurements() == [("power_w", 1)]
    finally:
        s.close()


def test_query_filters_by_time_and_device(store: SqliteStore) -> None:
    other = "power_w,device=Dryer,device_id=116570099999,site=home,source=fritzbox"
    write(
        store,
        [
            f"{PLUG} value=1.0 {T0}",
            f"{other} value=2.0 {T0}",
            f"{PLUG} value=3.0 {T0 + MIN}",
            f"{other} value=4.0 {T0 + 2 * MIN}",
            f"{PLUG} value=5.0 {T0 + 3 * MIN}",
            f"{HKR} value=21.0 {T0 + MIN}",
        ],
    )
    plug = {"device": "Plug 1", "device_id": "116570012345", "site": "home", "source": "fritzbox"}
    dryer = {"device": "Dryer", "device_id": "116570099999", "site": "home", "source": "fritzbox"}
    assert list(store.query("power_w", None, None, None)) == [
        (T0, dryer, 2.0, None),
        (T0, plug, 1.0, None),
        (T0 + MIN, plug, 3.0, None),
        (T0 + 2 * MIN, dryer, 4.0, None),
        (T0 + 3 * MIN, plug, 5.0, None),
    ]
    # start inclusive, end exclusive
    assert [p[0] for p in store.query("power_w", T0 + MIN, T0 + 3 * MIN, None)] == [
        T0 + MIN,
        T0 + 2 * MIN,
    ]
    assert [p[2] for p in store.query("power_w", None, None, "Plug 1")] == [1.0, 3.0, 5.0]
    assert [p[2] for p in store.query("power_w", None, None, "116570099999")] == [2.0, 4.0]
    assert [p[2] for p in store.query("power_w", T0 + 1, None, "Dryer")] == [4.0]
    assert list(store.query("power_w", None, None, "nobody")) == []
    assert list(store.query("energy_wh", None, None, None)) == []


def test_measurements_and_latest(store: SqliteStore) -> None:
    write(
        store,
        [
            f"{PLUG} value=1.0 {T0}",
            f"{PLUG} value=3.0 {T0 + 2 * MIN}",
            f"{PLUG} value=2.0 {T0 + MIN}",
            f"{HKR} value=21.0 {T0 + MIN}",
            f'state,device_id=x,name=mode value=1.0,label="on" {T0}',
        ],
    )
    assert store.measurements() == [("power_w", 3), ("state", 1), ("temperature_c", 1)]
    assert store.latest() == [
        LatestValue(
            "power_w",
            T0 + 2 * MIN,
            {"device": "Plug 1", "device_id": "116570012345", "site": "home", "source": "fritzbox"},
            3.0,
            None,
        ),
        LatestValue("state", T0, {"device_id": "x", "name": "mode"}, 1.0, "on"),
        LatestValue(
            "temperature_c",
            T0 + MIN,
            {
                "device": "HKR,Bad",
                "device_id": "09995",
                "room": "Bad",
                "site": "home",
                "source": "fritzbox",
            },
            21.0,
            None,
        ),
    ]


def test_check(store: SqliteStore) -> None:
    text = asyncio.run(store.check())
    assert text == f"SQLite {sqlite3.sqlite_version} at {store.path}: writable"


def test_empty_batch(store: SqliteStore) -> None:
    write(store, [])
    assert rows(store) == []


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    device=_text,
    room=_text,
    value=st.floats(allow_nan=False, allow_infinity=False, width=64),
    label=st.one_of(st.none(), _text),
    seconds=st.integers(min_value=0, max_value=4_000_000_000),
)
def test_encoder_output_round_trips(
    tmp_path_factory: pytest.TempPathFactory,
    device: str,
    room: str,
    value: float,
    label: str | None,
    seconds: int,
) -> None:
    """Whatever the encoder writes comes back out with the same tags, value and time."""
    when = datetime.fromtimestamp(seconds, UTC)
    reading = Reading(
        measurement="temperature_c",
        value=value,
        time=when,
        source="fritzbox",
        site="home",
        device_id="dev1",
        device=device,
        tags=make_tags(room=room),
        label=label,
    )
    later = reading._replace(value=value / 2, time=when + timedelta(seconds=1), label=None)
    encoder = Encoder()
    line, line2 = encoder.encode(reading), encoder.encode(later)
    s = SqliteStore(tmp_path_factory.mktemp("rt") / "c.sqlite3")
    try:
        write(s, [line, line])
        write(s, [line2])  # same series prefix: the cached fast path
        got = list(s.query("temperature_c", None, None, None))
    finally:
        s.close()
    tags = dict(parse_line(line).tags)
    assert tags["device_id"] == "dev1"
    expected_label = None if label is None else label.replace("\n", " ").replace("\r", " ")
    assert got == [
        (time_ns(when), tags, value, expected_label),
        (time_ns(when) + 1_000_000_000, tags, value / 2, None),
    ]
