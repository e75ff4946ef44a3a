"""FritzboxSource: fake box behind httpx.MockTransport for exact results and failures, and
the project's FRITZ!Box simulator on loopback for the whole conversation."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
import pytest
from freezegun import freeze_time

from collector.errors import AuthError, CollectorError, PartialFailure, TransientError
from collector.model import Reading, utc_now
from collector.simulators.fritzbox import FritzboxSimulator
from collector.sources.fritzbox.source import FritzboxSource
from tests.sources.fritzbox import rows
from tests.sources.fritzbox.test_client import FakeBox, make_config
from tests.sources.fritzbox.test_tr064 import (
    ALL_ACTIONS,
    GET_VOIP_ACCOUNTS,
    GET_VOIP_STATUS,
    FakeTr064,
)

T = TypeVar("T")
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)  # epoch 1740830400
PLUG_A = "116570272633"
PLUG_B = "116570272641"
HKR = "099950421775"

DEVICELIST = """<devicelist version="1" fwversion="7.57">
<device identifier="11657 0272633" id="16" functionbitmask="35712" fwversion="04.27"
 manufacturer="AVM" productname="FRITZ!DECT 200"><present>1</present><name>Kühlschrank</name>
<switch><state>1</state><mode>auto</mode><lock>0</lock><devicelock>0</devicelock></switch>
<powermeter><voltage>230120</voltage><power>52340</power><energy>12345</energy></powermeter>
<temperature><celsius>215</celsius><offset>0</offset></temperature></device>
<device identifier="11657 0272641" id="17" functionbitmask="35712" fwversion="04.27"
 manufacturer="AVM" productname="FRITZ!DECT 200"><present>1</present><name>Fernseher</name>
<switch><state>0</state><mode>manuell</mode><lock>0</lock><devicelock>0</devicelock></switch>
<powermeter><voltage>229870</voltage><power>400</power><energy>2222</energy></powermeter>
<temperature><celsius>220</celsius><offset>-5</offset></temperature></device>
<group identifier="grp303E4F-3907" id="900" functionbitmask="6784" fwversion="1.0"
 manufacturer="AVM" productname=""><present>1</present><name>Erdgeschoss</name>
<switch><state>1</state><mode>auto</mode><lock>0</lock><devicelock>0</devicelock></switch>
<powermeter><voltage>230000</voltage><power>52740</power><energy>14567</energy></powermeter>
<groupinfo><masterdeviceid>0</masterdeviceid><members>16,17</members></groupinfo></group>
<device identifier="09995 0421775" id="21" functionbitmask="320" fwversion="05.16"
 manufacturer="AVM" productname="FRITZ!DECT 302"><present>1</present><name>Wohnzimmer</name>
<temperature><celsius>205</celsius><offset>-10</offset></temperature>
<hkr><tist>41</tist><tsoll>42</tsoll><absenk>34</absenk><komfort>42</komfort>
<battery>80</battery><batterylow>0</batterylow></hkr></device>
</devicelist>""".encode()

STATS_A = (
    b'<devicestats><power><stats count="3" grid="10" datatime="1740830400">1000,2000,-'
    b"</stats></power></devicestats>"
)
STATS_HKR = (
    b'<devicestats><temperature><stats count="2" grid="900" datatime="1740830400">215,-'
    b"</stats></temperature></devicestats>"
)
STATS_B = (
    b'<devicestats><voltage><stats count="1" grid="10" datatime="1740830400">230500'
    b"</stats></voltage></devicestats>"
)


class FakeFritz:
    """AHA on the configured URL, TR-064 on the default port 49000 of the same host."""

    def __init__(self, **tr064: Any) -> None:
        self.box = FakeBox()
        self.box.devicelist = DEVICELIST
        self.box.stats_bodies = {PLUG_A: STATS_A, PLUG_B: STATS_B, HKR: STATS_HKR}
        self.tr064 = FakeTr064(**tr064)

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.port == 49000:
            return self.tr064.handler(request)
        return self.box.handler(request)


def use_source(
    fake: FakeFritz,
    body: Callable[[FritzboxSource], Awaitable[T]],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_concurrency: int = 4,
    **config: Any,
) -> T:
    async def go() -> T:
        http = httpx.AsyncClient(transport=transport or httpx.MockTransport(fake.handler))
        settings = {"timezone": "Europe/Berlin", **config}
        source = FritzboxSource(make_config(**settings), http, max_concurrency=max_concurrency)
        try:
            async with source:
                return await body(source)
        finally:
            await http.aclose()

    return asyncio.run(go())


def voip_of(readings: Any) -> list[tuple[str, str, float, str | None]]:
    return [
        (r.measurement, r.device_id, r.value, r.label)
        for r in readings
        if r.device_id.startswith("voip")
    ]


EXPECTED_VOIP = [
    ("state", "voip-0", 2.0, "registered"),
    ("state", "voip-1", 1.0, "not registered"),
    ("state", "voip-3", 0.0, "disabled"),
    ("voip_clients", "voip", 2.0, None),
]


# --- poll ------------------------------------------------------------------------------------


_D200 = {"model": "FRITZ!DECT 200"}
_D302 = {"model": "FRITZ!DECT 302"}
_GRP = {"scope": "group"}


def _switch(ain: str, name: str, tags: dict[str, str], on: bool, mode: str) -> list[Any]:
    return [
        (ain, name, "state", 1.0, "present", tags | {"name": "present"}),
        (ain, name, "state", float(on), "on" if on else "off", tags | {"name": "switch"}),
        (ain, name, "state", 0.0, "unlocked", tags | {"name": "lock"}),
        (ain, name, "state", 0.0, "unlocked", tags | {"name": "device_lock"}),
        (ain, name, "state", float(mode == "auto"), mode, tags | {"name": "switch_mode"}),
    ]


#: DEVICELIST read by hand: mW -> W, mV -> V, 0.1 °C (offset already applied), HKR codes
#: in 0.5 °C (42 -> 21.0, 34 -> 17.0); the thermostat's tist is not a second temperature.
EXPECTED_LIST = [
    *_switch(PLUG_A, "Kühlschrank", _D200, True, "auto"),
    (PLUG_A, "Kühlschrank", "power_w", 52.34, None, _D200),
    (PLUG_A, "Kühlschrank", "energy_wh", 12345.0, None, _D200),
    (PLUG_A, "Kühlschrank", "voltage_v", 230.12, None, _D200),
    (PLUG_A, "Kühlschrank", "temperature_c", 21.5, None, _D200),
    *_switch(PLUG_B, "Fernseher", _D200, False, "manual"),
    (PLUG_B, "Fernseher", "power_w", 0.4, None, _D200),
    (PLUG_B, "Fernseher", "energy_wh", 2222.0, None, _D200),
    (PLUG_B, "Fernseher", "voltage_v", 229.87, None, _D200),
    (PLUG_B, "Fernseher", "temperature_c", 22.0, None, _D200),
    *_switch("grp303E4F-3907", "Erdgeschoss", _GRP, True, "auto"),
    ("grp303E4F-3907", "Erdgeschoss", "power_w", 52.74, None, _GRP),
    ("grp303E4F-3907", "Erdgeschoss", "energy_wh", 14567.0, None, _GRP),
    ("grp303E4F-3907", "Erdgeschoss", "voltage_v", 230.0, None, _GRP),
    (HKR, "Wohnzimmer", "state", 1.0, "present", _D302 | {"name": "present"}),
    (HKR, "Wohnzimmer", "temperature_c", 20.5, None, _D302),
    (HKR, "Wohnzimmer", "state", 0.0, "ok", _D302 | {"name": "battery_low"}),
    (HKR, "Wohnzimmer", "battery_pct", 80.0, None, _D302),
    (HKR, "Wohnzimmer", "state", 2.0, "setpoint", _D302 | {"name": "thermostat_mode"}),
    (HKR, "Wohnzimmer", "setpoint_c", 21.0, None, _D302 | {"kind": "target"}),
    (HKR, "Wohnzimmer", "setpoint_c", 21.0, None, _D302 | {"kind": "comfort"}),
    (HKR, "Wohnzimmer", "setpoint_c", 17.0, None, _D302 | {"kind": "eco"}),
]


@freeze_time(T0)
def test_poll_is_the_device_list_plus_voip_at_the_poll_time() -> None:
    fake = FakeFritz()
    readings = use_source(fake, lambda s: s.poll())
    device_rows = rows(r for r in readings if not r.device_id.startswith("voip"))
    assert device_rows == EXPECTED_LIST
    assert voip_of(readings) == EXPECTED_VOIP
    assert [r.device_id.startswith("voip") for r in readings] == (
        [False] * len(EXPECTED_LIST) + [True] * len(EXPECTED_VOIP)
    )
    assert {r.time for r in readings} == {T0}
    assert {r.site for r in readings} == {"home"}
    assert all(r.tag("number") is None for r in readings)
    assert fake.box.logins == 1


def test_numbers_as_tags_only_when_configured() -> None:
    readings = use_source(FakeFritz(), lambda s: s.poll(), voip_numbers_as_tags=True)
    numbers = [r.tag("number") for r in readings if r.tag("name") == "voip_status"]
    assert numbers == ["+4930123456", "+4930654321", "+4940111222"]


def test_poll_without_voip_never_asks_tr064() -> None:
    fake = FakeFritz()
    readings = use_source(fake, lambda s: s.poll(), voip=False)
    assert voip_of(readings) == []
    assert fake.tr064.requests == []


def test_voip_failure_keeps_the_device_list() -> None:
    fake = FakeFritz()
    fake.tr064.faults[GET_VOIP_ACCOUNTS] = 820

    async def body(source: FritzboxSource) -> None:
        with pytest.raises(PartialFailure) as info:
            await source.poll()
        assert rows(info.value.readings) == EXPECTED_LIST
        assert info.value.errors == [
            "voip: TransientError: FRITZ!Box home: TR-064 X_AVM-DE_GetVoIPAccounts: "
            "UPnPError 820: internal error of the box"
        ]
        assert list(source.problems) == ["voip"]
        assert isinstance(source.problems["voip"], TransientError)
        del fake.tr064.faults[GET_VOIP_ACCOUNTS]
        assert voip_of(await source.poll()) == EXPECTED_VOIP
        assert source.problems == {}

    use_source(fake, body)


def test_skipped_device_list_values_are_reported_with_the_readings() -> None:
    fake = FakeFritz()
    fake.box.devicelist = DEVICELIST.replace(b"<power>400</power>", b"<power>4x0</power>")

    async def body(source: FritzboxSource) -> None:
        with pytest.raises(PartialFailure) as info:
            await source.poll()
        (error,) = info.value.errors
        assert error.startswith("devicelist: ParseError: ")
        assert "power" in error
        assert voip_of(info.value.readings) == EXPECTED_VOIP
        assert "voip" not in source.problems

    use_source(fake, body)


def test_device_list_failure_fails_the_poll() -> None:
    fake = FakeFritz()
    fake.box.next_status = [500]

    async def body(source: FritzboxSource) -> None:
        with pytest.raises(TransientError, match="getdevicelistinfos"):
            await source.poll()
        assert list(source.problems) == ["devicelist"]
        assert voip_of(await source.poll()) == EXPECTED_VOIP
        assert source.problems == {}

    use_source(fake, body)
    assert fake.tr064.calls.count(GET_VOIP_ACCOUNTS) == 1  # the failed poll stopped early


# --- statistics --------------------------------------------------------------------------------


def test_stats_of_every_capable_device() -> None:
    fake = FakeFritz()
    readings = use_source(fake, lambda s: s.stats())
    asked = [r.url.params["ain"] for r in fake.box.aha_requests if "ain" in r.url.params]
    assert sorted(asked) == sorted([PLUG_A, PLUG_B, HKR])  # the group is never asked
    got = sorted((r.device_id, r.measurement, r.value, r.time, r.device, r.tags) for r in readings)
    plug = (("model", "FRITZ!DECT 200"),)
    assert got == [
        (HKR, "temperature_c", 21.5, T0, "Wohnzimmer", (("model", "FRITZ!DECT 302"),)),
        (PLUG_A, "power_w", 10.0, T0, "Kühlschrank", plug),
        (PLUG_A, "power_w", 20.0, T0 - timedelta(seconds=10), "Kühlschrank", plug),
        (PLUG_B, "voltage_v", 230.5, T0, "Fernseher", plug),
    ]


def test_one_failing_device_does_not_stop_the_others() -> None:
    fake = FakeFritz()
    fake.box.statuses[PLUG_B] = 500

    async def body(source: FritzboxSource) -> None:
        with pytest.raises(PartialFailure) as info:
            await source.stats()
        assert sorted({r.device_id for r in info.value.readings}) == sorted([HKR, PLUG_A])
        assert len(info.value.readings) == 3
        assert info.value.errors == [
            f"stats:{PLUG_B}: TransientError: FRITZ!Box home: getbasicdevicestats "
            f"ain={PLUG_B}: internal error of the box (HTTP 500)"
        ]
        assert list(source.problems) == [f"stats:{PLUG_B}"]
        sink = MemorySink(T0 - timedelta(seconds=5))
        with pytest.raises(PartialFailure) as partial_history:
            await source.history(T0 - timedelta(seconds=5), sink)
        assert list(partial_history.value.readings) == []
        assert partial_history.value.errors == info.value.errors
        assert sink.values() == {f"stats:{HKR}": [21.5], f"stats:{PLUG_A}": [10.0]}
        del fake.box.statuses[PLUG_B]
        assert len(await source.stats()) == 4
        assert source.problems == {}

    use_source(fake, body)


def test_a_bad_statistics_value_costs_only_that_value() -> None:
    fake = FakeFritz()
    fake.box.stats_bodies[PLUG_A] = (
        b'<devicestats><power><stats count="3" grid="10" datatime="1740830400">1000,2x0,3000'
        b"</stats></power></devicestats>"
    )

    async def body(source: FritzboxSource) -> None:
        with pytest.raises(PartialFailure) as info:
            await source.stats()
        assert sorted((r.device_id, r.measurement, r.value, r.time)
                      for r in info.value.readings) == [
            (HKR, "temperature_c", 21.5, T0),
            (PLUG_A, "power_w", 10.0, T0),
            (PLUG_A, "power_w", 30.0, T0 - timedelta(seconds=20)),
            (PLUG_B, "voltage_v", 230.5, T0),
        ]  # fmt: skip
        assert info.value.errors == [
            f"stats:{PLUG_A}: ParseError: not an integer: '2x0' "
            "(at devicestats/power/stats[1]/value[1])"
        ]

    use_source(fake, body)


def test_a_nameless_device_has_one_device_tag_live_and_in_statistics() -> None:
    fake = FakeFritz()
    fake.box.devicelist = DEVICELIST.replace(
        "<name>Kühlschrank</name>".encode(), b"<name></name>"
    )

    async def body(source: FritzboxSource) -> tuple[set[str], set[str]]:
        live = {r.device for r in await source.poll() if r.device_id == PLUG_A}
        stats = {r.device for r in await source.stats() if r.device_id == PLUG_A}
        return live, stats

    assert use_source(fake, body) == ({PLUG_A}, {PLUG_A})


def test_stats_stream_hands_over_one_device_at_a_time() -> None:
    fake = FakeFritz()
    fake.box.statuses[PLUG_B] = 500

    async def body(source: FritzboxSource) -> list[list[tuple[str, float]]]:
        parts: list[list[tuple[str, float]]] = []
        (stats_job,) = [j for j in source.jobs() if j.name == "stats"]
        assert stats_job.stream is not None
        with pytest.raises(PartialFailure) as info:
            await stats_job.stream(lambda rs: parts.append([(r.device_id, r.value) for r in rs]))
        assert info.value.readings == ()  # every reading went to the sink
        assert info.value.errors == [
            f"stats:{PLUG_B}: TransientError: FRITZ!Box home: getbasicdevicestats "
            f"ain={PLUG_B}: internal error of the box (HTTP 500)"
        ]
        assert list(source.problems) == [f"stats:{PLUG_B}"]
        return parts

    parts = use_source(fake, body)
    assert sorted(parts) == sorted([[(PLUG_A, 10.0), (PLUG_A, 20.0)], [(HKR, 21.5)]])


def test_stats_fail_when_every_device_fails() -> None:
    fake = FakeFritz()
    fake.box.statuses.update({PLUG_A: 500, PLUG_B: 500, HKR: 500})

    async def body(source: FritzboxSource) -> None:
        with pytest.raises(TransientError, match="HTTP 500"):
            await source.stats()

    use_source(fake, body)


def test_stats_requests_are_bounded() -> None:
    fake = FakeFritz()
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):
            await asyncio.sleep(0)
        in_flight -= 1
        return fake.handler(request)

    readings = use_source(
        fake, lambda s: s.stats(), transport=httpx.MockTransport(handler), max_concurrency=2
    )
    assert len(readings) == 4
    assert peak == 2


class MemorySink:
    """The backfill side of ``history``, in memory: watermarks per series, what was put."""

    def __init__(self, since: datetime, watermarks: dict[str, datetime] | None = None) -> None:
        self.since = since
        self.watermarks = dict(watermarks or {})
        self.put_readings: dict[str, list[Reading]] = {}
        self.until: dict[str, datetime] = {}
        self.windows: list[int] = []

    def start(self, series: str) -> datetime:
        return self.watermarks.get(series, self.since)

    def put(self, series: str, readings: Any, *, until: datetime) -> None:
        assert series not in self.put_readings, "one put per series and round"
        self.put_readings[series] = list(readings)
        self.until[series] = until
        self.watermarks[series] = until

    def total(self, windows: int) -> None:
        self.windows.append(windows)

    def values(self) -> dict[str, list[float]]:
        return {s: [r.value for r in rs] for s, rs in sorted(self.put_readings.items())}


def test_history_hands_one_series_per_device_from_the_given_time() -> None:
    fake = FakeFritz()
    sink = MemorySink(T0 - timedelta(seconds=5))
    before = utc_now()
    use_source(fake, lambda s: s.history(T0 - timedelta(seconds=5), sink))
    after = utc_now()
    # power 20.0 W at T0 - 10 s is before the start; "-" values are no points
    assert sink.values() == {
        f"stats:{HKR}": [21.5],
        f"stats:{PLUG_A}": [10.0],
        f"stats:{PLUG_B}": [230.5],
    }
    assert [(r.measurement, r.time) for r in sink.put_readings[f"stats:{PLUG_A}"]] == [
        ("power_w", T0)
    ]
    assert sink.windows == [3]
    assert all(before <= until <= after for until in sink.until.values())


def test_history_resumes_each_series_at_its_watermark() -> None:
    fake = FakeFritz()
    since = T0 - timedelta(hours=1)
    sink = MemorySink(since, {f"stats:{PLUG_A}": T0 - timedelta(seconds=5)})
    use_source(fake, lambda s: s.history(since, sink))
    # PLUG_A's 20.0 W at T0 - 10 s was stored by an earlier run; the others start at since
    assert sink.values() == {
        f"stats:{HKR}": [21.5],
        f"stats:{PLUG_A}": [10.0],
        f"stats:{PLUG_B}": [230.5],
    }
    sink = MemorySink(T0 - timedelta(hours=1))
    use_source(FakeFritz(), lambda s: s.history(T0 - timedelta(hours=1), sink))
    assert sink.values()[f"stats:{PLUG_A}"] == [10.0, 20.0]


STATS_ENERGY = (
    b'<devicestats><energy><stats count="2" grid="86400" datatime="1740830400">500,400</stats>'
    b'<stats count="2" grid="2678400" datatime="1740830400">9000,8000</stats>'
    b"</energy></devicestats>"
)


def test_history_keeps_the_running_day_and_month_buckets() -> None:
    """Buckets are stamped at the start of their local day or month (Europe/Berlin): the
    day and month that contain the start are kept, the ones before are not."""
    fake = FakeFritz()
    fake.box.stats_bodies[PLUG_A] = STATS_ENERGY
    sink = MemorySink(T0 - timedelta(seconds=5))  # 2025-03-01 12:59:55 in Berlin
    use_source(fake, lambda s: s.history(T0 - timedelta(seconds=5), sink))
    midnight = datetime(2025, 2, 28, 23, 0, tzinfo=UTC)  # 2025-03-01 00:00 in Berlin
    assert sorted(
        (dict(r.tags)["period"], r.value, r.time) for r in sink.put_readings[f"stats:{PLUG_A}"]
    ) == [("day", 500.0, midnight), ("month", 9000.0, midnight)]


# --- jobs, check, configuration ---------------------------------------------------------------


def test_jobs_use_both_intervals() -> None:
    async def body(source: FritzboxSource) -> list[tuple[str, float]]:
        return [(job.name, job.interval_s) for job in source.jobs()]

    jobs = use_source(FakeFritz(), body, interval="90s", stats_interval="15m")
    assert jobs == [("poll", 90.0), ("stats", 900.0)]


def test_check_describes_the_box() -> None:
    assert use_source(FakeFritz(), lambda s: s.check()) == (
        "FRITZ!OS 7.57 (FRITZ!Box 7590), 3 devices, 1 group, VoIP: 3 accounts"
    )


def test_check_says_when_the_firmware_has_no_voip_registration_status() -> None:
    old = ALL_ACTIONS - {GET_VOIP_ACCOUNTS, GET_VOIP_STATUS}
    assert use_source(FakeFritz(actions=old), lambda s: s.check()) == (
        "FRITZ!OS 7.57 (FRITZ!Box 7590), 3 devices, 1 group, VoIP: 3 accounts, "
        "VoIP registration status: not offered by this firmware; accounts and clients are read"
    )


def test_check_without_voip_tolerates_a_missing_tr064() -> None:
    fake = FakeFritz()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.port == 49000:
            raise httpx.ConnectError("connection refused")
        return fake.handler(request)

    text = use_source(fake, lambda s: s.check(), transport=httpx.MockTransport(handler), voip=False)
    assert text == "FRITZ!Box, 3 devices, 1 group"


def test_check_with_voip_reports_a_tr064_problem() -> None:
    fake = FakeFritz(password="not-the-same")

    async def body(source: FritzboxSource) -> None:
        with pytest.raises(AuthError, match="TR-064 X_AVM-DE_GetVoIPAccounts"):
            await source.check()

    use_source(fake, body)


def test_time_zone_from_config_or_this_machine() -> None:
    fake = FakeFritz()
    assert use_source(fake, lambda s: asyncio.sleep(0, s.tz)) == ZoneInfo("Europe/Berlin")
    local = use_source(fake, lambda s: asyncio.sleep(0, s.tz), timezone=None)
    assert local.utcoffset(T0.replace(tzinfo=None)) is not None


# --- against the simulator ------------------------------------------------------------------------


@pytest.fixture
def sim() -> Any:
    simulator = FritzboxSimulator()
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


def sim_source(
    sim: FritzboxSimulator, body: Callable[[FritzboxSource], Awaitable[T]], **config: Any
) -> T:
    async def go() -> T:
        settings = {
            "url": sim.url,
            "tr064_url": sim.tr064_url,
            "password": sim.password,
            "timezone": "Europe/Berlin",
            **config,
        }
        async with FritzboxSource(make_config(**settings)) as source:
            return await body(source)

    return asyncio.run(go())


def test_simulator_one_session_for_many_polls(
    sim: FritzboxSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim.tr064.set_status(0, "connected")

    async def body(source: FritzboxSource) -> list[Reading]:
        before = utc_now()
        readings: list[Reading] = []
        for _ in range(3):
            readings = list(await source.poll())
        after = utc_now()
        # button presses carry the time of the press; everything else the poll time
        polled = {r.time for r in readings if r.tag("name") != "button"}
        assert len(polled) == 1
        assert before <= polled.pop() <= after
        stats = await source.stats()
        assert stats
        assert source.problems == {}
        return readings

    readings = sim_source(sim, body)
    assert voip_of(readings) == [
        ("state", "voip-0", 3.0, "connected"),
        ("state", "voip-1", 1.0, "not registered"),
        ("state", "voip-2", 0.0, "disabled"),
        ("voip_clients", "voip", 2.0, None),
    ]
    assert all(r.tag("number") is None for r in readings)
    assert sim.login_count == 1
    assert sim.invalid_sid_count == 0
    assert sim.active_sessions == 0  # logged out on close
    assert sim.commands["getdevicelistinfos"] == 4
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("collector"))
    assert sim.password not in ours
    assert re.search(r"\b[0-9a-f]{16}\b", ours) is None  # no session id


def test_simulator_session_renewed_after_the_box_ends_it(sim: FritzboxSimulator) -> None:
    async def body(source: FritzboxSource) -> None:
        await source.poll()
        sim.faults.expire_sessions()
        await source.poll()
        await source.poll()

    sim_source(sim, body, voip=False)
    assert sim.login_count == 2
    assert sim.invalid_sid_count == 1  # the one request that learnt of the end


def test_simulator_md5_login() -> None:
    simulator = FritzboxSimulator(md5_only=True)
    simulator.start()
    try:
        assert sim_source(simulator, lambda s: s.check(), voip=False).endswith("1 group")
        assert simulator.login_count == 1
    finally:
        simulator.stop()


def test_simulator_wrong_password_is_not_retried(sim: FritzboxSimulator) -> None:
    async def body(source: FritzboxSource) -> list[str]:
        errors = []
        for _ in range(3):
            try:
                await source.poll()
            except CollectorError as err:
                errors.append(type(err).__name__)
        return errors

    assert sim_source(sim, body, password="wrong-password") == ["AuthError"] * 3
    assert sim.logins_failed == 1
    assert sim.login_count == 0


def test_simulator_old_firmware_skips_missing_actions_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    simulator = FritzboxSimulator(old_firmware=True)
    simulator.start()
    try:

        async def body(source: FritzboxSource) -> list[Reading]:
            readings: list[Reading] = []
            for _ in range(3):
                readings = list(await source.poll())
            assert source.problems == {}
            return readings

        readings = sim_source(simulator, body)
    finally:
        simulator.stop()
    assert voip_of(readings) == [("voip_clients", "voip", 2.0, None)]
    skipped = [r.getMessage() for r in caplog.records if "skipping it" in r.getMessage()]
    assert skipped == [
        "FRITZ!Box home: TR-064 action X_AVM-DE_GetVoIPAccounts is not supported by this "
        "firmware (absent from the service description); skipping it",
        "FRITZ!Box home: TR-064 action X_AVM-DE_GetVoIPStatus is not supported by this "
        "firmware (absent from the service description); skipping it",
    ]
    assert simulator.tr064.soap_actions["X_AVM-DE_GetVoIPAccounts"] == 0
