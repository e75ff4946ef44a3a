"""The Overkiz simulator, driven by hand over HTTP the way the end-user API spec describes."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest

from collector.config import parse_config
from collector.simulators.overkiz import (
    CLOUD,
    LOCAL,
    MovableClock,
    OverkizSimulator,
    config_snippet,
)
from collector.simulators.overkiz_house import TARIFF_1, TARIFF_2
from collector.simulators.overkiz_limits import LIMITS, Limit, find_limit

# 2024-06-10 14:13:20 UTC (16:13:20 in Paris), on the one-minute grid of live changes
START = 1718028800.0
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
ENERGY, POWER = "core:ElectricEnergyConsumptionState", "core:ElectricPowerConsumptionState"


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def sim(clock: MovableClock) -> Iterator[OverkizSimulator]:
    with OverkizSimulator(clock=clock, seed=3) as running:
        yield running


@contextmanager
def login(sim: OverkizSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url + CLOUD, timeout=10) as client:
        r = client.post("/login", data={"userId": sim.username, "userPassword": sim.password})
        assert r.status_code == 200
        assert r.json() == {"success": True, "roles": [{"name": "ENDUSER"}]}
        yield client


@pytest.fixture
def http(sim: OverkizSimulator) -> Iterator[httpx.Client]:
    with login(sim) as client:
        yield client


def seg(device_url: str) -> str:
    return quote(device_url, safe="")


def now_ms(clock: MovableClock) -> int:
    return int(clock() * 1000)


def meter(sim: OverkizSimulator) -> str:
    return f"io://{sim.house.gateway}/2001#1"


def attributes(device: dict[str, Any]) -> dict[str, object]:
    return {a["name"]: a["value"] for a in device["attributes"]}


def err(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()
    return r.status_code, body["errorCode"], body["error"]


# ---- login and sessions ----------------------------------------------------------------------


def test_login_sets_a_session_cookie_that_opens_the_api(sim: OverkizSimulator) -> None:
    with login(sim) as client:
        assert re.fullmatch(r"[0-9A-F]{32}", client.cookies["JSESSIONID"])
        assert client.get("/setup/gateways").status_code == 200
    with httpx.Client(base_url=sim.url + CLOUD, timeout=10) as anonymous:
        r = anonymous.get("/setup/gateways")
        assert err(r) == (401, "RESOURCE_ACCESS_DENIED", "Not authenticated")
    assert sim.logins == 1


def test_bad_credentials_and_then_too_many_attempts(sim: OverkizSimulator) -> None:
    with httpx.Client(base_url=sim.url + CLOUD, timeout=10) as client:
        for _ in range(3):
            r = client.post("/login", data={"userId": sim.username, "userPassword": "wrong"})
            assert err(r) == (401, "AUTHENTICATION_ERROR", "Bad credentials")
            assert "JSESSIONID" not in client.cookies
        r = client.post("/login", data={"userId": sim.username, "userPassword": sim.password})
    assert err(r) == (429, "AUTHENTICATION_ERROR",
                      f"Too many requests, try again later : login with {sim.username}")
    assert sim.logins_failed == 3
    assert sim.violations["login"] == 1


def test_a_session_expires_when_idle_and_a_new_login_works(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    assert http.get("/setup/gateways").status_code == 200
    clock.advance(sim.session_ttl_s + 1)
    assert err(http.get("/setup/places")) == (401, "RESOURCE_ACCESS_DENIED", "Not authenticated")
    r = http.post("/login", data={"userId": sim.username, "userPassword": sim.password})
    assert r.status_code == 200
    assert http.get("/setup/places").status_code == 200


def test_expired_sessions_fault(sim: OverkizSimulator, http: httpx.Client) -> None:
    sim.faults.expire_sessions()
    assert err(http.get("/setup")) == (401, "RESOURCE_ACCESS_DENIED", "Not authenticated")
    assert sim.violation_count == 0  # a refused call does not use up the limit


# ---- setup -----------------------------------------------------------------------------------


def test_setup_has_heaters_with_sub_devices_meters_sensors_rts_and_places(
    sim: OverkizSimulator, http: httpx.Client
) -> None:
    setup = http.get("/setup").json()
    devices = {d["deviceURL"]: d for d in setup["devices"]}
    gw = sim.house.gateway
    heater = devices[f"io://{gw}/1001#1"]
    assert heater["label"] == "Heater 1"
    assert heater["controllableName"].startswith("io:AtlanticElectricalHeater")
    states = {s["name"]: (s["type"], s["value"]) for s in heater["states"]}
    assert states["core:ComfortRoomTemperatureState"] == (2, 20.0)
    assert states["core:EcoRoomTemperatureState"] == (2, 16.5)
    assert states["core:TargetTemperatureState"] == (2, 20.0)  # 16:13 local: comfort time
    assert states["core:OperatingModeState"] == (3, "internal")
    # sub-devices #2 (temperature) and #4 (energy) of the same base URL and room
    probe, energy = devices[f"io://{gw}/1001#2"], devices[f"io://{gw}/1001#4"]
    assert probe["placeOID"] == energy["placeOID"] == heater["placeOID"]
    assert probe["attributes"] == [
        {"name": "core:Manufacturer", "type": 3, "value": "Atlantic Group"},
        {"name": "core:PowerSourceType", "type": 3, "value": "mainSupply"},
        {"name": "core:MeasuredValueType", "type": 3, "value": "core:TemperatureInCelcius"}]
    assert attributes(energy)["core:MeasuredValueType"] == "core:ElectricalEnergyInWh"
    kwh = devices[f"io://{gw}/1002#5"]
    assert attributes(kwh)["core:MeasuredValueType"] == "core:ElectricalEnergyInKWh"
    assert isinstance(kwh["states"][0]["value"], float)
    # the main meter: the device says Wh (its tariffs), energy and power have their own units
    main = devices[meter(sim)]
    assert attributes(main) == {
        "core:Manufacturer": "Somfy",
        "core:PowerSourceType": "mainSupply",
        "core:MeasuredValueType": "core:ElectricalEnergyInWh",
        "core:ElectricEnergyConsumptionStateMeasuredValueType": "core:ElectricalEnergyInKWh",
        "core:ElectricPowerConsumptionStateMeasuredValueType": "core:ElectricalPowerInW",
    }
    # the most common Somfy thermometer has no unit attribute
    air = devices[f"io://{gw}/3001#1"]
    assert air["controllableName"] == "io:TemperatureIOSystemSensor"
    assert attributes(air) == {"core:Manufacturer": "Somfy", "core:PowerSourceType": "battery"}
    rts = devices[f"rts://{gw}/16712345"]
    assert rts["states"] == []
    kinds = {d["definition"]["widgetName"] for d in setup["devices"]}
    assert {"TemperatureSensor", "RelativeHumiditySensor", "LuminanceSensor", "CO2Sensor"} <= kinds
    # places: house > floors > rooms; every device is in a known place
    root = setup["rootPlace"]
    assert root["label"] == "Home"
    rooms = {r["oid"]: r["label"] for floor in root["subPlaces"] for r in floor["subPlaces"]}
    assert set(rooms.values()) == {"Living room", "Kitchen", "Bedroom"}
    assert rooms[heater["placeOID"]] == "Living room"
    assert all(d["placeOID"] in rooms for d in setup["devices"])
    assert sim.calls("GET /setup") == 1


def test_power_and_energy_agree_over_time(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    url = seg(meter(sim))
    sim.session_ttl_s = 86400.0

    def read() -> dict[str, float]:
        return {s["name"]: s["value"] for s in http.get(f"/setup/devices/{url}/states").json()}

    clock.advance(3600 - START % 3600)  # the start of an hour: power is constant within it
    first = read()
    clock.advance(30 * 60)
    second = read()
    assert second[POWER] == first[POWER]  # W
    # kWh to the Wh
    assert second[ENERGY] - first[ENERGY] == pytest.approx(first[POWER] / 1000 / 2, abs=0.002)


def test_the_device_url_is_one_percent_encoded_path_segment(
    sim: OverkizSimulator, http: httpx.Client
) -> None:
    url = meter(sim)
    r = http.get(f"/setup/devices/{seg(url)}/states")
    assert r.status_code == 200
    assert {s["name"] for s in r.json()} == {ENERGY, POWER, TARIFF_1, TARIFF_2}
    r = http.get(f"/setup/devices/{quote(url, safe=':/')}/states")  # slashes not encoded
    assert err(r) == (404, "INVALID_API_CALL", "No such resource")
    r = http.get(f"/setup/devices/{seg('io://0000-0000-0000/1')}/states")
    assert err(r) == (400, "NO_SUCH_DEVICE", 'No such device : "io://0000-0000-0000/1"')


def test_the_house_is_deterministic_for_a_seed(clock: MovableClock) -> None:
    def answers(seed: int) -> tuple[str, str]:
        with OverkizSimulator(clock=clock, seed=seed) as other, login(other) as client:
            end = now_ms(clock)
            history = client.get(f"/setup/devices/{seg(meter(other))}/states/{ENERGY}/history/"
                                 f"{end - 2 * DAY_MS}/{end}").text
            return client.get("/setup/devices").text, history

    assert answers(5) == answers(5)
    assert answers(5) != answers(6)


# ---- events ----------------------------------------------------------------------------------


def test_events_carry_string_values_and_their_own_time(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    listener = http.post("/events/register").json()["id"]
    clock.advance(300)
    events = http.post(f"/events/{listener}/fetch").json()
    assert events
    assert {e["name"] for e in events} == {"DeviceStateChangedEvent"}
    for event in events:
        assert event["timestamp"] % 60_000 == 0
        assert START * 1000 < event["timestamp"] <= now_ms(clock)
        assert all(isinstance(s["value"], str) for s in event["deviceStates"])
    # the newest change of the meter equals its typed state at that minute
    newest = max((e for e in events if e["deviceURL"] == meter(sim)),
                 key=lambda e: e["timestamp"])
    energy = next(s for s in newest["deviceStates"] if s["name"] == ENERGY)
    assert energy["type"] == 2  # kWh, a float
    state = sim.house.by_url[meter(sim)].state(ENERGY)
    assert state is not None
    assert energy["value"] == str(state.value(newest["timestamp"] / 1000))
    clock.advance(1)
    assert http.post(f"/events/{listener}/fetch").json() == []  # nothing new in that second


def test_fetching_faster_than_once_a_second_is_refused_and_counted(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    listener = http.post("/events/register").json()["id"]
    assert http.post(f"/events/{listener}/fetch").status_code == 200
    clock.advance(0.5)
    r = http.post(f"/events/{listener}/fetch")
    assert err(r) == (429, "RESOURCE_ACCESS_DENIED", "Too many requests, try again later : polling")
    assert sim.violations == {"POST /events/{listenerId}/fetch": 1}
    clock.advance(0.5)
    assert http.post(f"/events/{listener}/fetch").status_code == 200
    assert sim.violation_count == 1
    assert sim.calls("POST /events/{listenerId}/fetch") == 3


def test_a_lost_listener_says_so_and_an_unknown_id_is_invalid(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    listener = http.post("/events/register").json()["id"]
    sim.drop_listeners()
    r = http.post(f"/events/{listener}/fetch")
    assert err(r) == (400, "UNSPECIFIED_ERROR", '"No registered event listener."')
    clock.advance(1)
    r = http.post("/events/abc-123-def/fetch")
    assert err(r) == (400, "UNSPECIFIED_ERROR", "Invalid event listener id : abc-123-def")
    # a listener not fetched for too long expires; registering again works
    clock.advance(1)
    again = http.post("/events/register").json()["id"]
    assert again != listener
    clock.advance(sim.listener_ttl_s - 1)
    assert http.post(f"/events/{again}/fetch").status_code == 200  # keeps the session alive
    clock.advance(sim.listener_ttl_s + 1)
    r = http.post(f"/events/{again}/fetch")
    assert err(r) == (401, "RESOURCE_ACCESS_DENIED", "Not authenticated")  # session ended too


# ---- history ---------------------------------------------------------------------------------


def history(http: httpx.Client, url: str, name: str, start: int, end: int,
            kind: str = "") -> httpx.Response:
    path = f"/setup/devices/{seg(url)}/states/{name}/history/{kind + '/' if kind else ''}"
    return http.get(f"{path}{start}/{end}")


def test_history_is_hourly_with_units_and_consistent_energy(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    end = now_ms(clock)
    start = end - 3 * DAY_MS
    energy = history(http, meter(sim), ENERGY, start, end).json()
    power = history(http, meter(sim), POWER, start, end).json()
    # the device's unit, whatever the state: the energy is in kWh and the power in W
    assert energy["deviceUnit"] == "core:ElectricalEnergyInWh"
    assert power["deviceUnit"] == "core:ElectricalEnergyInWh"
    whens = [v["when"] for v in energy["historyValues"]]
    assert whens[0] == (start // HOUR_MS + 1) * HOUR_MS
    assert whens == list(range(whens[0], end + 1, HOUR_MS))
    assert [v["when"] for v in power["historyValues"]] == whens
    kwh = [float(v["value"]) for v in energy["historyValues"]]
    watts = [float(v["value"]) for v in power["historyValues"]]
    for i in range(len(kwh) - 1):  # the energy of each hour is that hour's power
        assert (kwh[i + 1] - kwh[i]) * 1000 == pytest.approx(watts[i], abs=1)
    temperature = history(http, f"io://{sim.house.gateway}/1001#2", "core:TemperatureState",
                          start, end).json()
    assert temperature["deviceUnit"] == "core:TemperatureInCelcius"
    assert all(10 < float(v["value"]) < 30 for v in temperature["historyValues"])


def test_all_states_history_lists_each_historised_state_in_order(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    end = now_ms(clock)
    start = end - DAY_MS
    both = http.get(f"/setup/devices/{seg(meter(sim))}/states/history/{start}/{end}").json()
    assert both == [history(http, meter(sim), name, start, end).json()
                    for name in (ENERGY, POWER, TARIFF_1, TARIFF_2)]
    r = http.get(f"/setup/devices/{seg(meter(sim))}/states/history/{end - 4 * DAY_MS}/{end}")
    assert r.status_code == 400
    assert sim.violations == {"history-span": 1}


def test_history_windows_over_three_days_are_refused_unless_limited(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    end = now_ms(clock)
    r = history(http, meter(sim), ENERGY, end - 3 * DAY_MS - 1, end)
    assert err(r) == (400, "INVALID_PARAMETER",
                      'Bad parameters. ("Max history query span is limited to 3 days")')
    assert sim.violations["history-span"] == 1
    path = f"/setup/devices/{seg(meter(sim))}/states/{ENERGY}/history/{end - 10 * DAY_MS}/{end}"
    limited = http.get(path, params={"limit": 5}).json()["historyValues"]
    assert len(limited) == 5
    # only the last 60 days are kept
    old = history(http, meter(sim), ENERGY, end - 63 * DAY_MS, end - 61 * DAY_MS).json()
    assert old["historyValues"] == []
    edge = history(http, meter(sim), ENERGY, end - 61 * DAY_MS, end - 58 * DAY_MS).json()
    assert edge["historyValues"][0]["when"] >= end - 60 * DAY_MS


def test_daily_and_monthly_history_and_growing_indexes_agree(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    end = now_ms(clock)
    days = history(http, meter(sim), ENERGY, end - 5 * DAY_MS, end, "daily").json()
    paris = ZoneInfo("Europe/Paris")
    values = days["historyValues"]
    assert len(values) == 6  # five whole days back and today so far
    for value in values:
        local = datetime.fromtimestamp(value["when"] / 1000, paris)
        assert (local.hour, local.minute) == (0, 0)
        assert float(value["value"]) == pytest.approx(value["max"] - value["min"], abs=1e-6)
    first = values[0]
    asked = [{"deviceUrl": meter(sim), "stateName": ENERGY,
              "from": first["when"], "to": first["when"] + DAY_MS}]
    delta = http.post("/setup/devices/states/growingIndexes", json=asked).json()
    assert delta == [{"deviceUrl": meter(sim), "stateName": ENERGY,
                      "delta": float(first["value"])}]  # kWh, as the state
    months = history(http, meter(sim), ENERGY, end - 40 * DAY_MS, end, "monthly").json()
    whens = [datetime.fromtimestamp(v["when"] / 1000, paris) for v in months["historyValues"]]
    assert [(w.month, w.day, w.hour) for w in whens] == [(5, 1, 0), (6, 1, 0)]


def test_daily_value_is_the_sum_of_the_hour_deltas_of_the_local_day(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    end = now_ms(clock)
    day = history(http, meter(sim), ENERGY, end - 3 * DAY_MS, end, "daily").json()
    first = day["historyValues"][0]  # a whole local day (2024-06-07 in Paris)
    assert datetime.fromtimestamp(first["when"] / 1000, ZoneInfo("Europe/Paris")).day == 7
    hours = history(http, meter(sim), ENERGY, first["when"], first["when"] + DAY_MS).json()
    index = [float(v["value"]) for v in hours["historyValues"]]
    assert len(index) == 25  # 00:00 .. 24:00, both ends
    assert float(first["value"]) == pytest.approx(
        sum(b - a for a, b in itertools.pairwise(index)), abs=1e-6)


def test_the_main_meter_counts_two_tariffs_that_add_up_to_its_total(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    url = seg(meter(sim))
    sim.session_ttl_s = 3 * 86400.0
    paris = ZoneInfo("Europe/Paris")
    before: dict[str, float] | None = None
    for _ in range(24):
        states = {s["name"]: s["value"] for s in http.get(f"/setup/devices/{url}/states").json()}
        # the tariffs count Wh, the total kWh (to the Wh)
        assert abs(states[TARIFF_1] + states[TARIFF_2] - states[ENERGY] * 1000) <= 2
        if before is not None:  # off-peak (22:00-06:00) counts only at night, peak by day
            hour = datetime.fromtimestamp(clock() - 3600, paris).hour
            night = hour >= 22 or hour < 6
            assert (states[TARIFF_1] > before[TARIFF_1]) == night
            assert (states[TARIFF_2] > before[TARIFF_2]) == (not night)
        before = states
        clock.advance(3600 - clock() % 3600 if clock() % 3600 else 3600)
    setup = json.loads(http.get("/setup").content)
    main = next(d for d in setup["devices"] if d["deviceURL"] == meter(sim))
    assert {s["name"] for s in main["states"]} >= {TARIFF_1, TARIFF_2}


def test_state_history_and_growing_indexes_document_no_rate_limit() -> None:
    # "bulk-history" is the /history/... family (executions, device events), not the
    # history of a state; the spec gives the aggregated forms and growingIndexes no limit
    for kind in ("", "daily/", "monthly/"):
        assert find_limit("GET", f"/setup/devices/x/states/y/history/{kind}1/2") is None
    assert find_limit("POST", "/setup/devices/states/growingIndexes") is None
    found = find_limit("GET", "/history/devicesEvent")
    assert found is not None and (found.category, found.period_s) == ("bulk-history", 1728.0)


# ---- every documented rate limit -------------------------------------------------------------


def _concrete(limit: Limit) -> str:
    return re.sub(r"\{[^}]+\}", "x1", limit.template)


@pytest.mark.parametrize("limit", LIMITS, ids=lambda lim: f"{lim.method} {lim.template}")
def test_every_documented_rate_limit_is_enforced_and_counted(
    clock: MovableClock, limit: Limit
) -> None:
    with OverkizSimulator(clock=clock, session_ttl_s=3 * 86400) as sim, login(sim) as http:
        _limit_twice(sim, http, clock, limit)


def _limit_twice(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock, limit: Limit
) -> None:
    path = _concrete(limit)
    first = http.request(limit.method, path)
    assert first.status_code != 429
    clock.advance(limit.period_s * 0.9)
    second = http.request(limit.method, path)
    assert second.status_code == 429
    assert second.json() == {"errorCode": "RESOURCE_ACCESS_DENIED",
                             "error": f"Too many requests, try again later : {limit.category}"}
    assert sim.violations == {limit.key: 1}
    clock.advance(limit.period_s * 0.1 + 0.01)
    assert http.request(limit.method, path).status_code != 429
    assert sim.violation_count == 1


def test_exec_operations_share_one_budget_and_limits_are_per_session(
    sim: OverkizSimulator, http: httpx.Client
) -> None:
    assert http.post("/exec/apply").status_code != 429
    assert http.post("/exec/some-action-group").status_code == 429
    assert sim.violations == {"exec": 1}
    assert http.get("/setup").status_code == 200
    with login(sim) as other:  # a new session has its own budget ("Per-session rate-limit")
        assert other.get("/setup").status_code == 200
    assert sim.calls("GET /setup") == 2
    assert sim.violation_count == 1


# ---- local API -------------------------------------------------------------------------------


def test_local_api_uses_a_bearer_token_and_typed_event_values(
    sim: OverkizSimulator, clock: MovableClock
) -> None:
    with httpx.Client(base_url=sim.url + LOCAL, timeout=10) as client:
        r = client.get("/setup/devices")
        assert err(r) == (401, "RESOURCE_ACCESS_DENIED", "Missing authorization token.")
        r = client.get("/setup/devices", headers={"Authorization": "Bearer nope"})
        assert err(r) == (401, "RESOURCE_ACCESS_DENIED", "Not authenticated.")
        client.headers["Authorization"] = f"Bearer {sim.token}"
        assert len(client.get("/setup/devices").json()) == len(sim.devices())
        listener = client.post("/events/register").json()["id"]
        clock.advance(120)
        events = client.post(f"/events/{listener}/fetch").json()
        assert events
        assert all("timestamp" not in e for e in events)
        values = [s["value"] for e in events for s in e["deviceStates"]]
        assert any(isinstance(v, int | float) for v in values)
        end = now_ms(clock)
        r = history(client, meter(sim), ENERGY, end - DAY_MS, end)
        assert err(r) == (400, "UNSPECIFIED_ERROR", "Unknown object.")  # no history locally
        client.cookies.set("JSESSIONID", "ABC")
        r = client.get("/setup/devices")
        assert err(r) == (400, "UNSPECIFIED_ERROR",
                          "Cannot use JSESSIONID and bearer token in same request")


# ---- faults ----------------------------------------------------------------------------------


def test_faults_maintenance_page_server_error_and_garbage(
    sim: OverkizSimulator, http: httpx.Client
) -> None:
    sim.maintenance_next(1)
    r = http.get("/setup/gateways")
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("text/html")
    assert "maintenance" in r.text
    sim.faults.fail_next(1, status=500)
    assert http.get("/setup/gateways").status_code == 500
    sim.faults.malformed_next(1)
    r = http.get(f"/setup/devices/{seg(meter(sim))}/states")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)
    assert http.get(f"/setup/devices/{seg(meter(sim))}/states").status_code == 200


# ---- the real service's bodies and the printed config ----------------------------------------


def test_error_bodies_are_those_of_the_real_service(
    sim: OverkizSimulator, clock: MovableClock, shared_dir: Path
) -> None:
    real = shared_dir / "fixtures" / "overkiz" / "errors"

    def body(name: str) -> object:
        return json.loads((real / name).read_text())

    with httpx.Client(base_url=sim.url + CLOUD, timeout=10) as client:
        r = client.get("/setup")
        assert r.json() == body("cloud/401-not-authenticated.json")
        r = client.post("/login", data={"userId": sim.username, "userPassword": "x"})
        assert r.json() == body("cloud/bad-credentials.json")
    with login(sim) as client:
        listener = client.post("/events/register").json()["id"]
        sim.drop_listeners()
        r = client.post(f"/events/{listener}/fetch")
        assert r.json() == body("cloud/no-registered-event-listener.json")
        clock.advance(1)
        assert client.post("/events/abc-123-def/fetch").json() == body(
            "cloud/invalid-event-listener-id.json")
        assert client.get("/no/such/thing").json() == body("cloud/no-such-resource.json")
    with httpx.Client(base_url=sim.url + LOCAL, timeout=10) as client:
        assert client.get("/setup").json() == body("local/401-missing-authorization-token.json")
        r = client.get("/setup", headers={"Authorization": "Bearer bad"})
        assert r.json() == body("local/401-not-authenticated.json")
        client.cookies.set("JSESSIONID", "A")
        r = client.get("/setup", headers={"Authorization": "Bearer bad"})
        assert r.json() == body("cloud/session-and-bearer.json")


def test_the_printed_config_snippet_is_valid_and_logs_in(sim: OverkizSimulator) -> None:
    snippet = config_snippet(sim)
    config = parse_config(snippet, Path("collector.toml"), env={})
    section = config.overkiz[0]
    assert section.url == sim.url
    assert section.username == sim.username
    assert section.password is not None
    with httpx.Client(base_url=section.url + CLOUD, timeout=10) as client:
        r = client.post("/login", data={"userId": section.username,
                                        "userPassword": section.password.get_secret_value()})
        assert r.status_code == 200


# ---- history limit, operations taken away, failures before the service -----------------------


def test_a_limit_allows_any_span_and_gives_the_oldest_values_first(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    end = now_ms(clock)  # 2024-06-10 14:13:20 UTC
    path = f"/setup/devices/{seg(meter(sim))}/states/{ENERGY}/history/{end - 10 * DAY_MS}/{end}"
    five = http.get(path, params={"limit": 5}).json()["historyValues"]
    first_hour = 1717167600000  # 2024-05-31 15:00 UTC, the first full hour of the window
    assert [v["when"] for v in five] == [first_hour + i * HOUR_MS for i in range(5)]
    every = http.get(path, params={"limit": 1000}).json()["historyValues"]
    assert len(every) == 240  # ten days of full hours
    assert every[:5] == five
    assert sim.violations == {}
    r = http.get(path, params={"limit": 0})
    assert r.status_code == 400


def test_a_disabled_operation_is_an_unknown_resource_on_both_apis(
    sim: OverkizSimulator, http: httpx.Client
) -> None:
    operation = "POST /setup/devices/states/growingIndexes"
    sim.disable(operation)
    r = http.post("/setup/devices/states/growingIndexes", json=[])
    assert err(r) == (404, "INVALID_API_CALL", "No such resource")
    with httpx.Client(base_url=sim.url + LOCAL, timeout=10,
                      headers={"Authorization": f"Bearer {sim.token}"}) as local:
        r = local.post("/setup/devices/states/growingIndexes", json=[])
        assert err(r) == (400, "UNSPECIFIED_ERROR", "Unknown object.")
    assert sim.calls(operation) == 2
    sim.enable(operation)
    assert http.post("/setup/devices/states/growingIndexes", json=[]).json() == []
    sim.disable("GET /setup")
    assert http.get("/setup").status_code == 404
    assert sim.violation_count == 0


@pytest.mark.parametrize(("kind", "status"), [
    ("maintenance", 503), ("unavailable", 503), ("bad-gateway", 502)])
def test_a_failed_call_is_not_counted_against_the_day_limit(
    sim: OverkizSimulator, http: httpx.Client, kind: str, status: int
) -> None:
    sim.fail_next("GET /setup", 2, kind)
    assert http.get("/setup/gateways").status_code == 200  # other operations answer
    for _ in range(2):
        r = http.get("/setup")
        assert r.status_code == status
        assert r.headers["content-type"].startswith("text/html")
    assert http.get("/setup").status_code == 200  # the day's one call
    assert http.get("/setup").status_code == 429  # and only one
    assert sim.violations == {"GET /setup": 1}
    assert sim.calls("GET /setup") == 4


def test_a_call_left_unanswered_is_not_counted(sim: OverkizSimulator) -> None:
    sim.fail_next("GET /setup", 1, "hang")
    with login(sim) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.get("/setup", timeout=0.2)
        assert client.get("/setup").status_code == 200
    assert sim.violation_count == 0
    with pytest.raises(ValueError, match="kind must be one of"):
        sim.fail_next("GET /setup", 1, "explode")


# ---- the shapes of the answers ---------------------------------------------------------------


def test_states_carry_the_time_of_their_last_change(
    sim: OverkizSimulator, http: httpx.Client
) -> None:
    url = f"io://{sim.house.gateway}/1001#1"
    states = {s["name"]: s for s in http.get(f"/setup/devices/{seg(url)}/states").json()}
    assert states["core:EcoRoomTemperatureState"]["lastUpdateTime"] == 1672531200000  # never
    # comfort since 06:00 in Paris (04:00 UTC)
    assert states["core:TargetTemperatureState"]["lastUpdateTime"] == 1717992000000
    assert states["core:DerogationStartDateTimeState"]["type"] == 5
    assert states["io:DiagnosticDataState"]["type"] == 4
    assert states["io:ServiceAccessCodeState"]["type"] == 9
    one = http.get(f"/setup/devices/{seg(url)}/states/core:TargetTemperatureState").json()
    assert one == {"name": "core:TargetTemperatureState", "type": 2, "value": 20.0,
                   "lastUpdateTime": 1717992000000}


def test_a_state_read_gives_the_value_of_its_last_update(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    """A growing meter read between two updates: the value the box holds is the one its last
    update (and that update's event) carried, not the value the model would have now."""
    url = f"io://{sim.house.gateway}/2001#1"
    clock.advance(29.5)  # between two of the meter's updates
    state = http.get(
        f"/setup/devices/{seg(url)}/states/core:ElectricEnergyConsumptionState").json()
    meter = sim.house.by_url[url].state("core:ElectricEnergyConsumptionState")
    assert meter is not None
    at = state["lastUpdateTime"] / 1000
    assert state["value"] == meter.value(at)
    assert at <= clock() and state["value"] != meter.value(clock())


def test_the_dead_sensor_is_unavailable_silent_and_its_history_stops(
    sim: OverkizSimulator, http: httpx.Client, clock: MovableClock
) -> None:
    url = f"io://{sim.house.gateway}/3002#1"
    device = http.get(f"/setup/devices/{seg(url)}").json()
    assert device["available"] is False
    before = http.get(f"/setup/devices/{seg(url)}/states").json()
    listener = http.post("/events/register").json()["id"]
    clock.advance(300)
    events = http.post(f"/events/{listener}/fetch").json()
    assert events and url not in {e["deviceURL"] for e in events}
    assert http.get(f"/setup/devices/{seg(url)}/states").json() == before
    end = now_ms(clock)
    temperatures = history(http, url, "core:TemperatureState", end - 4 * DAY_MS,
                           end, "daily").json()["historyValues"]
    raw = http.get(f"/setup/devices/{seg(url)}/states/core:TemperatureState/history/"
                   f"{end - 5 * DAY_MS}/{end}", params={"limit": 500}).json()
    assert raw["deviceUnit"] == "core:TemperatureInCelcius"
    assert raw["historyValues"][-1]["when"] == 1717768800000  # 2024-06-07 14:00 UTC
    assert temperatures[-1]["when"] < 1717797600000  # no day after 2024-06-08 00:00 Paris


def test_the_local_setup_has_the_local_shape_and_no_unit_attribute(sim: OverkizSimulator) -> None:
    with httpx.Client(base_url=sim.url + LOCAL, timeout=10,
                      headers={"Authorization": f"Bearer {sim.token}"}) as client:
        setup = client.get("/setup").json()
        states = client.get(f"/setup/devices/{seg(meter(sim))}/states").json()
        assert err(client.get("/setup/places")) == (400, "UNSPECIFIED_ERROR", "Unknown object.")
    # the keys of a recorded local API /setup (setup_local_with_climate.json)
    assert set(setup) == {"gateways", "devices"}
    assert set(setup["gateways"][0]) == {"connectivity", "gatewayId"}
    for device in setup["devices"]:
        assert set(device) == {"deviceURL", "available", "synced", "type", "states", "label",
                               "subsystemId", "attributes", "enabled", "controllableName",
                               "definition"}
        assert all("MeasuredValueType" not in a["name"] for a in device["attributes"])
    assert {s["name"]: set(s) for s in states}[ENERGY] == {"name", "type", "value"}


# ---- recorded setups -------------------------------------------------------------------------


def test_a_recorded_cloud_setup_is_served_as_recorded(
    shared_dir: Path, clock: MovableClock
) -> None:
    path = shared_dir / "fixtures" / "overkiz" / "setup" / "setup_tahoma_be.json"
    recorded = json.loads(path.read_text())
    url = "io://1234-1234-4892/6699846#1"  # a heating valve with a date state
    with OverkizSimulator(clock=clock, setup_file=path) as sim, login(sim) as client:
        assert client.get("/setup").json() == recorded
        states = {s["name"]: s for s in client.get(f"/setup/devices/{seg(url)}/states").json()}
        start = now_ms(clock)
        assert states["core:DerogationStartDateTimeState"] == {
            "name": "core:DerogationStartDateTimeState", "type": 5, "value": 1641862917000,
            "lastUpdateTime": 1718025180000}  # an hour before the start, on the minute
        assert client.get("/setup/places").json() == recorded["rootPlace"]
        assert client.get("/setup/location").json() == recorded["location"]
        listener = client.post("/events/register").json()["id"]
        clock.advance(60)
        assert client.post(f"/events/{listener}/fetch").json() == []
        probe = "io://1234-1234-4892/6699846#2"
        flat = history(client, probe, "core:TemperatureState", start - DAY_MS, start).json()
        assert {v["value"] for v in flat["historyValues"]} == {"19.4"}
        assert flat["deviceUnit"] == "core:TemperatureInCelcius"


def test_a_recorded_local_setup_is_served_on_the_local_api_only(
    shared_dir: Path, clock: MovableClock
) -> None:
    path = shared_dir / "fixtures" / "overkiz" / "setup" / "setup_local_with_climate.json"
    recorded = json.loads(path.read_text())
    url = "io://****-****-9373/1292684#2"
    with OverkizSimulator(clock=clock, setup_file=path) as sim:
        with httpx.Client(base_url=sim.url + LOCAL, timeout=10,
                          headers={"Authorization": f"Bearer {sim.token}"}) as client:
            assert client.get("/setup").json() == recorded
            states = client.get(f"/setup/devices/{seg(url)}/states").json()
            assert {"type": 2, "name": "core:TemperatureState", "value": 24.1} in states
            assert "lastUpdateTime" not in states[0]
        with httpx.Client(base_url=sim.url + CLOUD, timeout=10) as cloud:
            r = cloud.post("/login", data={"userId": sim.username, "userPassword": sim.password})
            assert err(r) == (404, "INVALID_API_CALL", "No such resource")
        assert config_snippet(sim).endswith(f'token = "{sim.token}"\n')


def test_a_recorded_growing_index_varies_by_nothing(shared_dir: Path, clock: MovableClock) -> None:
    path = shared_dir / "fixtures" / "overkiz" / "setup" / "setup_cozytouch_4.json"
    with OverkizSimulator(clock=clock, setup_file=path) as sim, login(sim) as client:
        meters = [d["deviceURL"] for d in client.get("/setup/devices").json()
                  if d["controllableName"].startswith("io:CumulatedElectricalEnergy")]
        assert len(meters) == 4
        end = now_ms(clock)
        asked = [{"deviceUrl": u, "stateName": ENERGY, "from": end - DAY_MS, "to": end}
                 for u in meters]
        deltas = client.post("/setup/devices/states/growingIndexes", json=asked).json()
        assert deltas == [{"deviceUrl": u, "stateName": ENERGY, "delta": 0} for u in meters]
