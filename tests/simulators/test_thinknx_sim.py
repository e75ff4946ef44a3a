"""The Thinknx simulator, driven by hand over HTTP the way the Integration Kit describes."""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import parse_config
from collector.simulators.thinknx import ThinknxSimulator, format_uptime
from collector.simulators.thinknx_auth import LocalAuth, Verdict
from collector.simulators.thinknx_project import STATUS, Kind

# 2024-06-10 12:00:00 UTC: daytime, comfort mode, blinds open-ish, sun up
START = 1718020800.0
NIGHT = START + 15 * 3600  # 03:00 UTC the next day
#: The objects of the default project without some capabilities of their kind.
LACKING = {
    "Termostato Ingresso": {"actualtemp", "chronoenstatus"},  # no sensor, no chrono
    "Tapparella Soggiorno": {"blindanglestatus"},  # roller shutters: no slats
    "Tapparella Camera": {"blindanglestatus"},
    "Clima Camera": {"hvacfanset", "hvacfanstatus"},  # no fan object
}
IMPOSSIBLE = (400, {"error": "impossible to execute"})


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[ThinknxSimulator]:
    with ThinknxSimulator(clock=clock) as running:
        yield running


@pytest.fixture
def http(sim: ThinknxSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10,
                      auth=httpx.DigestAuth(sim.username, sim.password)) as client:
        yield client


def get(http: httpx.Client, controller: str, **params: str) -> httpx.Response:
    return http.get(f"/api/V1/{controller}", params={**params, "auth": "digest"})


def status_of(http: httpx.Client, controller: str, guid: str) -> float:
    response = get(http, controller, guid=guid)
    assert response.status_code == 200, response.text
    return float(response.json()["status"])


# ---- shapes ---------------------------------------------------------------------------------


def test_default_project_has_two_of_every_kind_with_unique_guids(sim: ThinknxSimulator) -> None:
    kinds = [o.kind for o in sim.objects]
    assert all(kinds.count(kind) >= 2 for kind in Kind)
    assert len(set(sim.guids())) == len(sim.objects)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", g) for g in sim.guids())
    analog = [o for o in sim.objects if o.kind is Kind.ANALOG]
    units = {(o.quantity, o.unit) for o in analog}
    assert {("power", "kW"), ("energy", "kWh"), ("luminance", "lx")} <= units


def test_every_status_controller_answers_the_documented_shape(
    sim: ThinknxSimulator, http: httpx.Client
) -> None:
    ranges = {
        "powerstatus": {0, 1}, "chronoenstatus": {0, 1}, "hvacpowerstatus": {0, 1},
        "tempmodestatus": {0, 1, 2, 3}, "hvacmodestatus": {0, 1, 2, 3, 4},
        "hvacfanset": {0, 1, 2, 3}, "hvacfanstatus": {0, 1, 2, 3},
    }
    kinds_of_status: dict[type, int] = {}
    for obj in sim.objects:
        for controller in STATUS[obj.kind]:
            response = get(http, controller, guid=obj.guid)
            if controller in LACKING.get(obj.name, ()):
                assert (response.status_code, response.json()) == IMPOSSIBLE
                continue
            assert response.status_code == 200, (controller, response.text)
            assert response.headers["content-type"] == "application/json"
            body = response.json()
            assert set(body) == {"namespace", "guid", "status", "comm_obj"}
            # the document answers the fan speed status as "hvacfanset" under both names
            expected = "hvacfanset" if controller == "hvacfanstatus" else controller
            assert body["namespace"] == expected
            assert body["guid"] == obj.guid
            assert isinstance(body["comm_obj"], int)
            status = body["status"]
            kinds_of_status[type(status)] = kinds_of_status.get(type(status), 0) + 1
            assert isinstance(status, int | float | str)
            if obj.text:
                assert isinstance(status, str)
            value = float(status)
            if controller in ranges:
                assert value in ranges[controller], (controller, value)
            elif controller in ("powerlevelstatus", "heightlevelstatus", "blindanglestatus"):
                assert 0 <= value <= 100
            elif controller in ("actualtemp", "setpointstatus", "hvacsetpointstatus"):
                assert 5 <= value <= 35
    # numbers and numeric strings both occur, as on real servers
    assert kinds_of_status.get(str, 0) > 5
    assert kinds_of_status.get(int, 0) + kinds_of_status.get(float, 0) > 5


def test_fan_speed_under_both_names_is_the_same_value(
    sim: ThinknxSimulator, http: httpx.Client
) -> None:
    for obj in sim.objects:
        if obj.kind is Kind.HVAC and obj.name != "Clima Camera":
            a = get(http, "hvacfanset", guid=obj.guid).json()
            b = get(http, "hvacfanstatus", guid=obj.guid).json()
            assert a == b


def test_objects_without_some_capabilities(sim: ThinknxSimulator, http: httpx.Client) -> None:
    by_name = {o.name: o for o in sim.objects}
    assert set(LACKING) <= set(by_name)
    for name, missing in LACKING.items():
        obj = by_name[name]
        for controller in STATUS[obj.kind]:
            response = get(http, controller, guid=obj.guid)
            if controller in missing:
                assert (response.status_code, response.json()) == IMPOSSIBLE, (name, controller)
            else:
                assert response.status_code == 200, (name, controller)
    # nor can the missing part be set
    for name, command, cmd in (("Tapparella Soggiorno", "blindangle", "30"),
                               ("Clima Camera", "hvacfan", "2"),
                               ("Termostato Ingresso", "chronoen", "1")):
        response = get(http, command, guid=by_name[name].guid, cmd=cmd, fb="")
        assert (response.status_code, response.json()) == IMPOSSIBLE, name
    # the rest of such an object works as usual
    ingresso = by_name["Termostato Ingresso"].guid
    assert get(http, "setpoint", guid=ingresso, cmd="21.5", fb="").json()["status"] == 21.5
    assert status_of(http, "setpointstatus", ingresso) == 21.5
    assert status_of(http, "tempmodestatus", ingresso) == 1  # comfort, no chrono to change it


def test_server_status_shape_and_uptimes_that_grow(
    sim: ThinknxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    first = get(http, "system/serverStatus").json()
    assert set(first) == {"namespace", "version", "process_uptime", "server_uptime",
                          "config_time", "connected_clients", "pbx_users"}
    assert first["namespace"] == "system/serverStatus"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", first["version"])
    form = r"(\d+) days? (\d+) hours? (\d+) min"
    assert re.fullmatch(form, first["process_uptime"])
    assert first["process_uptime"] == "2 days 1 hour 3 min"
    assert first["server_uptime"] == "23 days 4 hours 12 min"
    assert re.fullmatch(r"\d\d:\d\d:\d\d \d{4}-\d\d-\d\d", first["config_time"])
    # 125 s before the restart, 08:54:48 UTC, on the server's clock in Rome (summer: +2)
    assert first["config_time"] == "12:54:48 2024-06-08"
    assert isinstance(first["connected_clients"], int)
    assert 1 <= first["connected_clients"] <= 4
    clock.now += 86400 + 3600 + 2 * 60
    later = get(http, "system/serverStatus").json()
    assert later["process_uptime"] == "3 days 2 hours 5 min"
    assert later["server_uptime"] == "24 days 5 hours 14 min"
    assert later["config_time"] == first["config_time"]


def test_server_clock_in_another_zone(clock: FakeClock) -> None:
    with ThinknxSimulator(clock=clock, timezone="UTC") as sim:
        body = httpx.get(f"{sim.cloud_url()}/api/V1/system/serverStatus", timeout=10).json()
        assert sim.config_dict()["timezone"] == "UTC"
    assert body["config_time"] == "10:54:48 2024-06-08"


def test_server_status_in_italian(clock: FakeClock) -> None:
    with ThinknxSimulator(clock=clock, language="it") as sim:
        body = httpx.get(f"{sim.cloud_url()}/api/V1/system/serverStatus", timeout=10).json()
    assert body["process_uptime"] == "2 giorni 1 ora 3 min"
    assert body["server_uptime"] == "23 giorni 4 ore 12 min"


@pytest.mark.parametrize(("seconds", "en", "it"), [
    (0, "0 days 0 hours 0 min", "0 giorni 0 ore 0 min"),
    (59, "0 days 0 hours 0 min", "0 giorni 0 ore 0 min"),
    (86400 + 3600 + 60, "1 day 1 hour 1 min", "1 giorno 1 ora 1 min"),
    (2 * 86400 + 23 * 3600 + 59 * 60, "2 days 23 hours 59 min", "2 giorni 23 ore 59 min"),
    (400 * 86400 + 7200, "400 days 2 hours 0 min", "400 giorni 2 ore 0 min"),
])
def test_uptime_forms(seconds: float, en: str, it: str) -> None:
    assert format_uptime(seconds) == en
    assert format_uptime(seconds, "it") == it


# ---- authentication -------------------------------------------------------------------------


def test_basic_auth_accepts_the_password_with_colon_and_space(sim: ThinknxSimulator) -> None:
    guid = sim.guids(Kind.LIGHT)[0]
    url = f"{sim.url}/api/V1/powerstatus"
    params = {"guid": guid, "auth": "basic"}
    ok = httpx.get(url, params=params, auth=(sim.username, sim.password), timeout=10)
    assert ok.status_code == 200
    assert ok.json()["guid"] == guid
    assert ":" in sim.password and " " in sim.password
    wrong = httpx.get(url, params=params, auth=(sim.username, "demo pass"), timeout=10)
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith('Basic realm="Thinknx"')
    missing = httpx.get(url, params=params, timeout=10)
    assert missing.status_code == 401
    token = base64.b64encode(b"service-without-colon").decode()
    broken = httpx.get(url, params=params, headers={"Authorization": f"Basic {token}"},
                       timeout=10)
    assert broken.status_code == 401
    assert sim.auth_failures == 3


def test_digest_auth_issues_a_challenge_and_checks_the_answer(sim: ThinknxSimulator) -> None:
    guid = sim.guids(Kind.ANALOG)[0]
    url = f"{sim.url}/api/V1/getvalue"
    params = {"guid": guid, "auth": "digest"}
    challenge = httpx.get(url, params=params, timeout=10)
    assert challenge.status_code == 401
    header = challenge.headers["www-authenticate"]
    assert header.startswith('Digest realm="Thinknx"')
    assert 'qop="auth"' in header and "nonce=" in header
    ok = httpx.get(url, params=params, auth=httpx.DigestAuth(sim.username, sim.password),
                   timeout=10)
    assert ok.status_code == 200
    assert ok.json()["namespace"] == "getvalue"
    wrong = httpx.get(url, params=params, auth=httpx.DigestAuth(sim.username, "nope"),
                      timeout=10)
    assert wrong.status_code == 401
    other_user = httpx.get(url, params=params, auth=httpx.DigestAuth("admin", sim.password),
                           timeout=10)
    assert other_user.status_code == 401
    # basic credentials are no answer to auth=digest
    basic = httpx.get(url, params=params, auth=(sim.username, sim.password), timeout=10)
    assert basic.status_code == 401


def test_a_digest_answer_for_another_path_is_refused(sim: ThinknxSimulator) -> None:
    guid = sim.guids(Kind.ANALOG)[0]
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        first = client.get("/api/V1/getvalue", params={"guid": guid, "auth": "digest"},
                           auth=httpx.DigestAuth(sim.username, sim.password))
        sent = first.request.headers["authorization"]
        replayed = client.get("/api/V1/actualtemp",
                              params={"guid": sim.guids(Kind.THERMOSTAT)[0], "auth": "digest"},
                              headers={"Authorization": sent})
    assert first.status_code == 200
    assert replayed.status_code == 401


def test_params_auth_in_the_url(sim: ThinknxSimulator) -> None:
    guid = sim.guids(Kind.BLIND)[0]
    url = f"{sim.url}/api/V1/heightlevelstatus"
    ok = httpx.get(url, params={"guid": guid, "auth": "basic", "user": sim.username,
                                "pass": sim.password}, timeout=10)
    assert ok.status_code == 200
    assert "pass=demo+pass%3A5051" in str(ok.request.url)
    wrong = httpx.get(url, params={"guid": guid, "auth": "basic", "user": sim.username,
                                   "pass": "demo pass:5052"}, timeout=10)
    assert wrong.status_code == 403  # "403 - the authentication information is incorrect"
    no_mode = httpx.get(url, params={"guid": guid}, timeout=10)
    assert no_mode.status_code == 400
    assert no_mode.json() == {"error": "params errors"}


def test_post_with_an_urlencoded_body(sim: ThinknxSimulator) -> None:
    guid = sim.guids(Kind.LIGHT)[0]
    response = httpx.post(f"{sim.url}/api/V1/powerstatus",
                          data={"guid": guid, "auth": "basic", "user": sim.username,
                                "pass": sim.password}, timeout=10)
    assert response.status_code == 200
    assert response.json()["guid"] == guid


def test_cloud_form_needs_only_the_key(sim: ThinknxSimulator) -> None:
    guid = sim.guids(Kind.THERMOSTAT)[0]
    ok = httpx.get(f"{sim.cloud_url()}/api/V1/actualtemp", params={"guid": guid}, timeout=10)
    assert ok.status_code == 200
    assert ok.json()["namespace"] == "actualtemp"
    assert re.fullmatch(r"[A-Za-z0-9]{32}", sim.cloud_key)
    wrong = httpx.get(f"{sim.url}/{'x' * 32}/api/V1/actualtemp", params={"guid": guid},
                      timeout=10)
    assert wrong.status_code == 403
    assert httpx.get(f"{sim.url}/elsewhere", timeout=10).status_code == 404


# ---- errors, rate limit, faults ---------------------------------------------------------------


def test_documented_error_bodies(sim: ThinknxSimulator, http: httpx.Client) -> None:
    unknown = get(http, "powerstatus", guid="NoSuchGuid0000000000000")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "device not found"})
    no_guid = get(http, "powerstatus")
    assert (no_guid.status_code, no_guid.json()) == (400, {"error": "params errors"})
    wrong_kind = get(http, "actualtemp", guid=sim.guids(Kind.LIGHT)[0])
    assert (wrong_kind.status_code, wrong_kind.json()) == (400, {"error": "impossible to execute"})
    unknown_controller = get(http, "colourstatus", guid=sim.guids(Kind.LIGHT)[0])
    assert unknown_controller.status_code == 400
    bad_value = get(http, "setpoint", guid=sim.guids(Kind.THERMOSTAT)[0], cmd="warm")
    assert (bad_value.status_code, bad_value.json()) == (400, {"error": "params errors"})


def test_object_faults(sim: ThinknxSimulator, http: httpx.Client) -> None:
    gone, stuck, fine = sim.guids(Kind.DIMMER)[0], sim.guids(Kind.DIMMER)[1], sim.guids()[0]
    sim.fail_object(gone)
    sim.fail_object(stuck, "impossible to execute")
    assert get(http, "powerlevelstatus", guid=gone).status_code == 404
    assert get(http, "powerlevelstatus", guid=stuck).json() == {"error": "impossible to execute"}
    assert get(http, "actualtemp", guid=fine).status_code == 200  # the others still answer


def test_rate_limit_answers_429_with_retry_after(clock: FakeClock) -> None:
    with ThinknxSimulator(clock=clock, rate_limit=3) as sim:
        url = f"{sim.cloud_url()}/api/V1/getvalue"
        params = {"guid": sim.guids(Kind.ANALOG)[0]}
        codes = [httpx.get(url, params=params, timeout=10).status_code for _ in range(3)]
        limited = httpx.get(url, params=params, timeout=10)
        clock.now += 0.4
        still = httpx.get(url, params=params, timeout=10)
        clock.now += 0.7
        again = httpx.get(url, params=params, timeout=10)
    assert codes == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert still.status_code == 429
    assert again.status_code == 200
    assert sim.rate_limited == 2


def test_faults_500_garbage_truncated_and_slow(sim: ThinknxSimulator) -> None:
    url = f"{sim.cloud_url()}/api/V1/getvalue"
    params = {"guid": sim.guids(Kind.ANALOG)[0]}
    sim.faults.fail_next(1, 500)
    assert httpx.get(url, params=params, timeout=10).status_code == 500
    sim.garbage_next()
    garbage = httpx.get(url, params=params, timeout=10)
    assert garbage.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        garbage.json()
    sim.faults.malformed_next()
    truncated = httpx.get(url, params=params, timeout=10)
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert httpx.get(url, params=params, timeout=10).json()["namespace"] == "getvalue"
    sim.faults.latency_s = 1.0
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(url, params=params, timeout=0.1)
    sim.faults.clear()


# ---- values that move -------------------------------------------------------------------------


def test_set_commands_answer_with_feedback(sim: ThinknxSimulator, http: httpx.Client) -> None:
    light, dimmer = sim.guids(Kind.LIGHT)[0], sim.guids(Kind.DIMMER)[0]
    hvac = sim.guids(Kind.HVAC)[0]
    blind = next(o.guid for o in sim.objects if o.name == "Frangisole Studio")  # slats
    assert get(http, "power", guid=light, cmd="1", fb="").json()["status"] == 1
    assert get(http, "power", guid=light, cmd="0").json() == {
        "namespace": "power", "guid": light, "comm_obj": sim.project.by_guid[light].comm_obj}
    assert status_of(http, "powerstatus", light) == 0
    assert get(http, "powerlevel", guid=dimmer, cmd="40", fb="").json()["status"] == 40
    assert status_of(http, "powerstatus", dimmer) == 1
    fan = get(http, "hvacfan", guid=hvac, cmd="2", fb="").json()
    assert (fan["namespace"], fan["status"]) == ("hvacfanset", 2)
    assert status_of(http, "hvacfanstatus", hvac) == 2
    assert get(http, "hvacmode", guid=hvac, cmd="1", fb="").json()["status"] == 1
    assert get(http, "blindangle", guid=blind, cmd="30", fb="").json()["status"] == 30
    assert get(http, "heightlevel", guid=blind, val="101").status_code == 400


def test_room_temperature_follows_the_setpoint(
    sim: ThinknxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    guid = sim.guids(Kind.THERMOSTAT)[2]  # chrono off: the setpoint stays where it is put
    assert status_of(http, "chronoenstatus", guid) == 0
    before = status_of(http, "actualtemp", guid)
    assert get(http, "setpoint", guid=guid, cmd="26.5", fb="").json()["status"] == 26.5
    temps = []
    for _ in range(12):
        clock.now += 900
        temps.append(status_of(http, "actualtemp", guid))
    assert status_of(http, "setpointstatus", guid) == 26.5
    assert temps[0] > before
    assert all(b >= a - 0.1 for a, b in itertools.pairwise(temps))  # noise <= 0.05
    assert temps[-1] == pytest.approx(26.5, abs=0.4)
    assert temps[-1] <= 26.6


def test_chrono_table_switches_mode_and_setpoint(
    sim: ThinknxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    guid = sim.guids(Kind.THERMOSTAT)[0]  # comfort 21.0, night 17.5
    assert (status_of(http, "tempmodestatus", guid), status_of(http, "setpointstatus", guid)) \
        == (1, 21.0)
    clock.now = NIGHT
    assert (status_of(http, "tempmodestatus", guid), status_of(http, "setpointstatus", guid)) \
        == (2, 17.5)
    get(http, "tempmode", guid=guid, cmd="3")  # a manual mode ends the chrono program
    assert status_of(http, "chronoenstatus", guid) == 0
    assert status_of(http, "setpointstatus", guid) == 7.0


def test_blinds_move_at_their_speed(
    sim: ThinknxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    guid = sim.guids(Kind.BLIND)[0]
    get(http, "heightlevel", guid=guid, val="100")
    clock.now += 60
    assert status_of(http, "heightlevelstatus", guid) == 100
    get(http, "updown", guid=guid, cmd="0")  # up
    clock.now += 10
    assert status_of(http, "heightlevelstatus", guid) == 80  # 2 % per second
    clock.now += 15
    assert status_of(http, "heightlevelstatus", guid) == 50
    get(http, "stop", guid=guid, cmd="1")
    clock.now += 20
    assert status_of(http, "heightlevelstatus", guid) == 50
    clock.now = NIGHT  # closed at night by the automation
    assert status_of(http, "heightlevelstatus", guid) == 100


def test_energy_grows_with_the_power_served(
    sim: ThinknxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    by_name = {o.name: o.guid for o in sim.objects}
    for power, energy in (("Consumo casa", "Energia casa"),
                          ("Produzione fotovoltaico", "Energia fotovoltaico")):
        first = status_of(http, "getvalue", by_name[energy])
        integral_kwh = 0.0
        for _ in range(360):  # one hour, one power reading per 10 s slot
            kw = status_of(http, "getvalue", by_name[power])
            assert kw >= 0
            integral_kwh += kw * 10 / 3600
            clock.now += 10
        last = status_of(http, "getvalue", by_name[energy])
        assert last - first == pytest.approx(integral_kwh, abs=0.002)
        assert integral_kwh > 0.1  # midday: both the house and the sun are at work
        clock.now = START


def test_daylight_quantities_follow_the_sun(
    sim: ThinknxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    by_name = {o.name: o.guid for o in sim.objects}
    noon = {n: status_of(http, "getvalue", by_name[n])
            for n in ("Produzione fotovoltaico", "Luminosità esterna")}
    clock.now = NIGHT
    night = {n: status_of(http, "getvalue", by_name[n]) for n in noon}
    assert noon["Produzione fotovoltaico"] > 2.0
    assert noon["Luminosità esterna"] > 20000
    assert night == {"Produzione fotovoltaico": 0.0, "Luminosità esterna": 0.0}


def test_a_large_project_for_benchmarks() -> None:
    sim = ThinknxSimulator(count=200)
    assert len(sim.objects) == 200
    assert len(set(sim.guids())) == 200
    assert len({o.name for o in sim.objects}) == 200
    meters = [o for o in sim.objects if o.meter_of is not None]
    assert meters
    assert all(m.meter_of in sim.project.by_guid for m in meters)


# ---- the printed configuration ----------------------------------------------------------------


def test_config_snippet_is_valid_toml_with_every_object(sim: ThinknxSimulator) -> None:
    snippet = sim.config_snippet(name="villa", auth="basic")
    parsed: dict[str, Any] = tomllib.loads(snippet)
    (section,) = parsed["thinknx"]
    assert section["url"] == sim.url
    assert (section["username"], section["password"], section["auth"]) == (
        sim.username, sim.password, "basic")
    assert section["objects"] == sim.config_objects()
    assert section["timezone"] == "Europe/Rome"  # the server's clock
    assert {o["kind"] for o in section["objects"]} == {str(k) for k in Kind}
    analog = [o for o in section["objects"] if o["kind"] == "analog"]
    assert all({"quantity", "unit"} <= set(o) for o in analog)
    assert "Luminosità esterna" in snippet  # written as it is, not escaped
    config = parse_config(snippet, Path("collector.toml"), env={})
    (tc,) = config.thinknx
    assert tc.auth == "basic" and tc.timezone == "Europe/Rome"
    assert [o.guid for o in tc.objects] == sim.guids()
    assert tc.password is not None
    assert tc.password.get_secret_value() == sim.password


# ---- properties -------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**9))
def test_uptime_text_reads_back_to_the_minute(seconds: int) -> None:
    for language, pattern in (("en", r"(\d+) days? (\d+) hours? (\d+) min"),
                              ("it", r"(\d+) giorn[oi] (\d+) or[ae] (\d+) min")):
        match = re.fullmatch(pattern, format_uptime(seconds, language))
        assert match is not None
        d, h, m = (int(g) for g in match.groups())
        assert h < 24 and m < 60
        assert d * 86400 + h * 3600 + m * 60 == seconds // 60 * 60


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_any_authorization_header_is_answered_never_raises(header: str) -> None:
    auth = LocalAuth("service", "demo pass:5051", random.Random(1))
    assert auth.digest(header, "GET", "/api/V1/getvalue") is not Verdict.OK
    assert auth.digest("Digest " + header, "GET", "/api/V1/getvalue") is not Verdict.OK
    assert auth.basic(header) is not Verdict.OK
    assert auth.basic("Basic " + header) is not Verdict.OK
