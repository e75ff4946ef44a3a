"""The app's chunk encoder: readings given again are written from the text kept of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.chunk import Chunk
from collector.lineprotocol import Encoder, parse_line
from collector.model import Again, Reading, ReadingBatch, make_tags
from collector.rooms import RoomMap, SiteRooms

T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
LATER = T + timedelta(minutes=1)
PRESS = T - timedelta(hours=2)


def _reading(measurement: str, value: float, *, time: datetime = T, label: str | None = None,
             device_id: str = "087610000434", tags: tuple[tuple[str, str], ...] = ()) -> Reading:
    return Reading(measurement, value, time, "fritzbox", "home", device_id, "Plug",
                   tags or make_tags(model="FRITZ!DECT 200"), label)


TEMPLATE = (
    (_reading("power_w", 12.5), True),
    (_reading("state", 1.0, label="on", tags=make_tags(name="switch")), True),
    (_reading("state", 1.0, time=PRESS, label="pressed", tags=make_tags(name="button")), False),
)


def _lines(chunk: Chunk) -> list[str]:
    return sorted(chunk.text().split("\n")) if chunk.lines else []


def _expected(readings: list[Reading], encoder: Encoder) -> list[str]:
    return sorted(encoder.encode_many(readings))


def test_readings_given_again_are_the_lines_of_the_readings_at_the_new_time() -> None:
    again = Again(TEMPLATE, LATER, {})
    encoder = Encoder()
    for time in (LATER, LATER + timedelta(minutes=1)):
        part = again._replace(time=time)
        chunk = Chunk(encoder)
        chunk.add(ReadingBatch([(_reading("voltage_v", 230.1, time=time),), part]))
        assert chunk.lines == 4
        assert _lines(chunk) == _expected([_reading("voltage_v", 230.1, time=time),
                                           *part.readings()], Encoder())  # fmt: skip
        times = {parse_line(line).measurement + str(parse_line(line).field("label")):
                 parse_line(line).time_ns for line in chunk.text().split("\n")}  # fmt: skip
        ns = int(time.timestamp()) * 10**9
        assert times == {"voltage_vNone": ns, "power_wNone": ns, "stateon": ns,
                         "statepressed": int(PRESS.timestamp()) * 10**9}
    # what the encoder made of the template is kept once, with the template
    assert len(again.memo) == 1


def test_rooms_apply_to_readings_given_again() -> None:
    rooms = RoomMap({("fritzbox", "home"): SiteRooms({"087610000434": "Kitchen"})})
    chunk = Chunk(Encoder(), rooms)
    chunk.add(ReadingBatch([Again(TEMPLATE, LATER, {})]))
    assert chunk.lines == 3
    assert {dict(parse_line(line).tags)["room"] for line in chunk.text().split("\n")} == {
        "Kitchen"}


def test_an_unencodable_reading_given_again_is_dropped_and_counted_every_time() -> None:
    bad = _reading("power_w", 1.0, tags=(("time", "x"),))  # 'time' cannot be a tag key
    again = Again(((bad, True), *TEMPLATE), LATER, {})
    encoder = Encoder()
    for _ in range(2):
        chunk = Chunk(encoder)
        chunk.add(ReadingBatch([again]))
        assert (chunk.lines, chunk.dropped) == (3, 1)
        assert list(chunk.drops) == [("power_w", "087610000434")]
        assert "'time' cannot be a tag key" in chunk.drops[("power_w", "087610000434")]


def test_a_poll_time_line_protocol_cannot_carry_costs_only_the_readings_at_that_time() -> None:
    beyond = datetime(2300, 1, 1, tzinfo=UTC)
    chunk = Chunk(Encoder())
    chunk.add(ReadingBatch([Again(TEMPLATE, beyond, {})]))
    # the press keeps its own time and is written; the two at the poll time are dropped
    assert (chunk.lines, chunk.dropped) == (1, 2)
    assert parse_line(chunk.text()).field("label") == "pressed"


def test_a_batch_is_a_sequence_of_its_readings() -> None:
    fresh = (_reading("voltage_v", 230.1, time=LATER),)
    batch = ReadingBatch([fresh, Again(TEMPLATE, LATER, {})]).plus(
        [_reading("energy_wh", 5.0, time=LATER)])
    readings = [fresh[0], *Again(TEMPLATE, LATER, {}).readings(),
                _reading("energy_wh", 5.0, time=LATER)]
    assert len(batch) == 5
    assert list(batch) == readings
    assert batch == tuple(readings)
    assert batch[1].time == LATER and batch[3].time == PRESS
    assert ReadingBatch() == ()


def test_readings_at_fresh_positions_are_written_anew_the_rest_from_the_kept_text() -> None:
    memo: dict[object, object] = {}
    encoder = Encoder()
    for watts in (12.5, 13.25, 0.0):
        template = ((_reading("power_w", watts), True), *TEMPLATE[1:])
        part = Again(template, LATER, memo, fresh=(0,))
        chunk = Chunk(encoder)
        chunk.add(ReadingBatch([part]))
        assert _lines(chunk) == _expected(part.readings(), Encoder())
        power = next(parse_line(line) for line in chunk.text().split("\n")
                     if line.startswith("power_w"))  # fmt: skip
        assert (power.field("value"), power.time_ns) == (watts, int(LATER.timestamp()) * 10**9)
    # one text kept for all three polls, and the fresh lines of the last template
    assert len(memo) == 2


def test_a_fresh_reading_the_encoder_refuses_costs_only_itself() -> None:
    bad = _reading("power_w", 1.0, tags=(("time", "x"),))  # 'time' cannot be a tag key
    memo: dict[object, object] = {}
    encoder = Encoder()
    for _ in range(2):
        chunk = Chunk(encoder)
        chunk.add(ReadingBatch([Again(((bad, True), *TEMPLATE), LATER, memo, fresh=(0, 1))]))
        assert (chunk.lines, chunk.dropped) == (3, 1)
        assert list(chunk.drops) == [("power_w", "087610000434")]
        assert _lines(chunk) == _expected(Again(TEMPLATE, LATER, {}).readings(), Encoder())


def test_the_body_is_the_text_in_utf8_whatever_the_names() -> None:
    kitchen = _reading("power_w", 3.5, time=LATER)._replace(device="Küche ☕")
    chunk = Chunk(Encoder())
    chunk.add(ReadingBatch([Again(TEMPLATE, LATER, {}), (kitchen,)]))
    assert chunk.body() == chunk.text().encode("utf-8")
    assert 'device=Küche\\ ☕'.encode() in chunk.body()
    assert chunk.body().count(b"\n") == chunk.lines - 1 == 3


def test_rooms_apply_to_fresh_readings_too() -> None:
    rooms = RoomMap({("fritzbox", "home"): SiteRooms({"087610000434": "Kitchen"})})
    memo: dict[object, object] = {}
    encoder = Encoder()
    for watts in (12.5, 99.0):
        template = ((_reading("power_w", watts), True), *TEMPLATE[1:])
        chunk = Chunk(encoder, rooms)
        chunk.add(ReadingBatch([Again(template, LATER, memo, fresh=(0,))]))
        power = next(parse_line(line) for line in chunk.text().split("\n")
                     if line.startswith("power_w"))  # fmt: skip
        assert (dict(power.tags)["room"], power.field("value")) == ("Kitchen", watts)
