"""The app's chunk encoder: the lines of one job run, where a reading that cannot be
encoded costs only itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.lineprotocol import Encoder, parse_line
from collector.model import Reading, make_tags
from collector.pipeline.chunk import Chunk
from collector.pipeline.rooms import RoomMap, SiteRooms

T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
LATER = T + timedelta(minutes=1)
PRESS = T - timedelta(hours=2)


def _reading(measurement: str, value: float, *, time: datetime = T, label: str | None = None,
             device_id: str = "087610000434", tags: tuple[tuple[str, str], ...] = ()) -> Reading:
    return Reading(measurement, value, time, "fritzbox", "home", device_id, "Plug",
                   tags or make_tags(model="FRITZ!DECT 200"), label)


def _polled(time: datetime) -> list[Reading]:
    """A plug's readings of a poll at ``time``: two at the poll's time, a button press at
    its own."""
    return [
        _reading("power_w", 12.5, time=time),
        _reading("state", 1.0, time=time, label="on", tags=make_tags(name="switch")),
        _reading("state", 1.0, time=PRESS, label="pressed", tags=make_tags(name="button")),
    ]


def test_rooms_apply_to_the_readings() -> None:
    rooms = RoomMap({("fritzbox", "home"): SiteRooms({"087610000434": "Kitchen"})})
    chunk = Chunk(Encoder(), rooms)
    chunk.add(_polled(LATER))
    assert chunk.lines == 3
    assert {dict(parse_line(line).tags)["room"] for line in chunk.text().split("\n")} == {
        "Kitchen"}


def test_an_unencodable_reading_is_dropped_and_counted_every_time() -> None:
    bad = _reading("power_w", 1.0, time=LATER, tags=(("time", "x"),))  # not a tag key
    encoder = Encoder()
    for _ in range(2):
        chunk = Chunk(encoder)
        chunk.add([bad, *_polled(LATER)])
        assert (chunk.lines, chunk.dropped) == (3, 1)
        assert list(chunk.drops) == [("power_w", "087610000434")]
        assert "'time' cannot be a tag key" in chunk.drops[("power_w", "087610000434")]


def test_a_poll_time_line_protocol_cannot_carry_costs_only_the_readings_at_that_time() -> None:
    beyond = datetime(2300, 1, 1, tzinfo=UTC)
    chunk = Chunk(Encoder())
    chunk.add(_polled(beyond))
    # the press keeps its own time and is written; the two at the poll time are dropped
    assert (chunk.lines, chunk.dropped) == (1, 2)
    assert parse_line(chunk.text()).field("label") == "pressed"


def test_the_body_is_the_text_in_utf8_whatever_the_names() -> None:
    kitchen = _reading("power_w", 3.5, time=LATER)._replace(device="Küche ☕")
    chunk = Chunk(Encoder())
    chunk.add(_polled(LATER))
    chunk.add((kitchen,))
    assert chunk.body() == chunk.text().encode("utf-8")
    assert 'device=Küche\\ ☕'.encode() in chunk.body()
    assert chunk.body().count(b"\n") == chunk.lines - 1 == 3
