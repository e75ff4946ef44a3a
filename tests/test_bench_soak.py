"""The soak benchmark: its figures, and the count of readings lost it rests on."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.bench_soak import SITE, main, readings_lost, slope_per_hour
from collector.bench_soak_lost import (
    KnxAnswer,
    OverkizAnswer,
    count_lost,
    overkiz_expected,
    stored_points,
    thinknx_expected,
)
from collector.config_sources import ThinknxObject
from collector.lineprotocol import Encoder
from collector.model import Reading
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz_answers import changes, setup, state_json
from collector.simulators.overkiz_house import TICK_S, House
from collector.simulators.thinknx import ThinknxSimulator
from collector.sources.fritzbox.parse import parse_devicelist
from collector.sources.overkiz.parse import Device, parse_events, parse_setup, parse_states
from collector.sources.overkiz.readings import availability
from collector.sources.overkiz.readings import reading as overkiz_reading
from collector.sources.thinknx.parse import (
    CONTROLLERS,
    ObjectInfo,
    object_readings,
    parse_server_status,
    parse_status,
)
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
    # and so were the KNX objects' status answers and the Overkiz events: none lost
    for source in ("fritzbox", "thinknx", "overkiz"):
        assert figures[f"soak_readings_lost_{source}"] == 0.0
        assert f"soak: {source}: " in out
    assert figures["soak_readings_counted_thinknx"] >= 25
    assert figures["soak_readings_counted_overkiz"] > 0
    assert figures["soak_readings_counted"] == sum(
        figures[f"soak_readings_counted_{s}"] for s in ("fritzbox", "thinknx", "overkiz"))
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


# ---- Thinknx and Overkiz: each served answer is looked for in the store -------------------


def _write(path: Path, readings: list[Reading]) -> None:
    store = SqliteStore(path)
    try:
        store.write_sync(Encoder().encode_many(readings))
    finally:
        store.close()


KNX_SITE = "villa"


def _knx_answers(times: list[float]) -> tuple[list[KnxAnswer], list[ObjectInfo], str]:
    """Every status answer of a small Thinknx project, asked over loopback at each of
    ``times`` (the simulator's clock), with the objects and the server's device id."""
    now = [times[0]]
    answers: list[KnxAnswer] = []
    with ThinknxSimulator(count=6, clock=lambda: now[0]) as sim, httpx.Client(timeout=5) as http:
        objects = [ObjectInfo(o.guid, o.kind, o.name or o.guid, o.room, o.quantity, o.unit)
                   for o in (ThinknxObject(**entry) for entry in sim.config_objects())]
        for t in times:
            now[0] = t
            questions = [("system/serverStatus", "")] + [
                (controller, o.guid) for o in objects for controller in CONTROLLERS[o.kind]]
            for controller, guid in questions:
                answer = http.get(f"{sim.cloud_url()}/api/V1/{controller}",
                                  params={"guid": guid} if guid else None)
                assert answer.status_code == 200, answer.text
                answers.append(KnxAnswer(t, controller, guid, answer.content))
        host = urlsplit(sim.url).hostname
    return answers, objects, f"server:{host}"


def _knx_readings(answers: list[KnxAnswer], objects: list[ObjectInfo], server_id: str,
                  polled_at: float) -> list[Reading]:
    """What the collector stores for ``answers``, its poll stamped ``polled_at``."""
    polled = datetime.fromtimestamp(polled_at, UTC)
    by_guid = {o.guid: o for o in objects}
    out: list[Reading] = []
    for a in answers:
        if not a.guid:
            out += parse_server_status(a.body, site=KNX_SITE, device_id=server_id,
                                       device=f"{KNX_SITE} server", time=polled).readings
        else:
            value = parse_status(a.body, controller=a.controller, guid=a.guid, what=a.guid)
            out += object_readings(by_guid[a.guid], {a.controller: value}, site=KNX_SITE,
                                   time=polled)
    return out


@pytest.mark.parametrize(("drop", "stamp_late", "lost"), [
    (0, False, 0),  # every reading of both polls found
    (1, False, 1),  # one reading of the second poll never stored
    (0, True, None),  # the second poll stamped after its answers: every reading is lost
])
def test_thinknx_answers_are_found_or_lost(tmp_path: Path, drop: int, stamp_late: bool,
                                           lost: int | None) -> None:
    answers, objects, server_id = _knx_answers([T0, T0 + 2])
    first = [a for a in answers if a.at == T0]
    second = [a for a in answers if a.at == T0 + 2]
    stored = _knx_readings(first, objects, server_id, T0 - 0.1)
    later = _knx_readings(second, objects, server_id, T0 + 2.5 if stamp_late else T0 + 1.9)
    _write(tmp_path / "s.sqlite3", stored + later[:len(later) - drop])
    # the answers carry the time they were served; the poll's stamp lies before them
    served = [KnxAnswer(a.at + 0.05, a.controller, a.guid, a.body) for a in answers]
    expected = thinknx_expected(served, objects, site=KNX_SITE, server_id=server_id,
                                start=T0 + 1, end=T0 + 3)
    counted, found_lost = count_lost(expected, stored_points(tmp_path / "s.sqlite3",
                                                             "thinknx"))
    assert len(later) > 20  # the server's figures and the objects' values
    assert counted == len(later)  # only the second poll is inside the counting span
    assert found_lost == (len(later) if lost is None else lost)


def _overkiz_answers(start: float) -> tuple[list[OverkizAnswer], list[Device]]:
    """What the simulated Overkiz account serves at ``start``: the states of every device
    (one answer per device, a tenth of a second apart), then the event fetches of the next
    five ticks, with their own times."""
    house = House(0, start, "Europe/Paris")
    devices = list(parse_setup(json.loads(json.dumps(setup(house, start, False)))).items)
    answers = [OverkizAnswer(start + i / 10, "states", d.url,
                             json.dumps([state_json(house, d, s, start, False)
                                         for s in d.states]).encode())
               for i, d in enumerate(house.devices)]
    first_tick = int(start // TICK_S + 1) * TICK_S
    answers += [OverkizAnswer(t + 0.5, "events", "",
                              json.dumps(changes(house, t, local=False)).encode())
                for t in range(first_tick, first_tick + 5 * TICK_S, TICK_S)]
    return answers, devices


def _overkiz_readings(answers: list[OverkizAnswer], devices: list[Device],
                      delay_s: float) -> list[Reading]:
    """What the collector stores: a state read's availability stamped ``delay_s`` after its
    answer arrived, each state at its own lastUpdateTime; events at their own time."""
    by_url = {d.url: d for d in devices}
    out: list[Reading] = []
    for a in answers:
        doc = json.loads(a.body)
        if a.kind == "states":
            polled = datetime.fromtimestamp(a.at + delay_s, UTC)
            device = by_url[a.device_url]
            states = parse_states(doc).items
            status = next((s.value for s in states if s.name == "core:StatusState"), None)
            available = device.available if status is None else status != "unavailable"
            out.append(availability(device, available, polled, site="tahoma"))
            out += [r for s in states if s.name != "core:StatusState"
                    and (r := overkiz_reading(device, s, datetime.fromtimestamp(
                        s.updated_ms / 1000, UTC) if s.updated_ms else polled, site="tahoma"))]
        else:
            for change in parse_events(doc).items:
                when = datetime.fromtimestamp(change.time_ms / 1000, UTC)  # type: ignore[operator]
                out += [r for s in change.states
                        if (r := overkiz_reading(by_url[change.device_url], s, when,
                                                 site="tahoma"))]
    return out


@pytest.mark.parametrize(("case", "lost"), [
    ("all", 0),
    ("one state missing", 1),
    ("one event missing", 1),
    ("a state read stamped after the next read", None),
])
def test_overkiz_events_and_state_reads_are_found_or_lost(tmp_path: Path, case: str,
                                                          lost: int | None) -> None:
    answers, devices = _overkiz_answers(T0)
    states = [a for a in answers if a.kind == "states"]
    events = [a for a in answers if a.kind == "events"]
    stored_states = _overkiz_readings(states, devices, 0.01)
    stored_events = _overkiz_readings(events, devices, 0.0)
    assert len(stored_states) > 20 and len(stored_events) > 0
    if case == "one state missing":
        stored_states = stored_states[1:]
    elif case == "one event missing":
        stored_events = stored_events[1:]
    elif case == "a state read stamped after the next read":
        late = _overkiz_readings(states[:1], devices, 0.15)  # the next read came at 0.1 s
        stored_states = late + stored_states[len(late):]
        # only what is stamped with the read is late: the availability; the states keep
        # their own times
        lost = sum(1 for r in late if r.measurement == "state" and r.tag("name") == "present")
        assert lost == 1
    _write(tmp_path / "s.sqlite3", stored_states + stored_events)
    expected = overkiz_expected(answers, devices, site="tahoma", start=T0, end=T0 + 3600)
    counted, found_lost = count_lost(expected, stored_points(tmp_path / "s.sqlite3",
                                                             "overkiz"))
    # an event's points are counted once each; a state read's readings each
    assert counted == len(stored_states) + len(set(map(_point, stored_events))) + (
        1 if case == "one state missing" else 0) + (1 if case == "one event missing" else 0)
    assert found_lost == lost


def _point(r: Reading) -> tuple[str, str, tuple[tuple[str, str], ...], datetime]:
    return r.measurement, r.device_id, r.tags, r.time
