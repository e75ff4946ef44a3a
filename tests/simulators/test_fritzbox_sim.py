"""The FRITZ!Box simulator, driven by hand over HTTP the way the AVM documents describe."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.fritzbox_house import Kind

# 2024-06-10 14:13:20 UTC, on a 10 s and a 900 s boundary
START = 1718028800.0
AHA = "/webservices/homeautoswitch.lua"
SOAP_NS = "urn:dslforum-org:service:X_VoIP:1"


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[FritzboxSimulator]:
    with FritzboxSimulator(clock=clock) as running:
        yield running


@pytest.fixture
def http(sim: FritzboxSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


def session_info(response: httpx.Response) -> dict[str, str]:
    root = ET.fromstring(response.text)
    return {child.tag: (child.text or "") for child in root}


def pbkdf2_response(challenge: str, password: str) -> str:
    _, iter1, salt1, iter2, salt2 = challenge.split("$")
    hash1 = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt1), int(iter1))
    hash2 = hashlib.pbkdf2_hmac("sha256", hash1, bytes.fromhex(salt2), int(iter2))
    return f"{salt2}${hash2.hex()}"


def md5_response(challenge: str, password: str) -> str:
    digest = hashlib.md5(f"{challenge}-{password}".encode("utf-16le")).hexdigest()
    return f"{challenge}-{digest}"


def login(http: httpx.Client, password: str = "demo-password") -> dict[str, str]:
    challenge = session_info(http.get("/login_sid.lua", params={"version": "2"}))["Challenge"]
    response = (pbkdf2_response if challenge.startswith("2$") else md5_response)(
        challenge, password
    )
    return session_info(
        http.post(
            "/login_sid.lua",
            params={"version": "2"},
            data={"username": "collector", "response": response},
        )
    )


def aha(http: httpx.Client, sid: str, cmd: str, **params: str) -> httpx.Response:
    return http.get(AHA, params={"sid": sid, "switchcmd": cmd, **params})


# ---- login_sid.lua ------------------------------------------------------------------------


def test_pbkdf2_login_and_sid_reuse(sim: FritzboxSimulator, http: httpx.Client) -> None:
    first = session_info(http.get("/login_sid.lua", params={"version": "2"}))
    assert first["SID"] == "0000000000000000"
    assert first["Challenge"].startswith("2$")
    assert first["BlockTime"] == "0"

    info = login(http)
    sid = info["SID"]
    assert sid != "0000000000000000" and len(sid) == 16
    for _ in range(3):
        assert aha(http, sid, "getswitchlist").status_code == 200
    assert sim.login_count == 1
    assert sim.requests[AHA] == 3
    # a session check answers the same SID
    assert (
        session_info(http.get("/login_sid.lua", params={"version": "2", "sid": sid}))["SID"] == sid
    )


def test_rights_listed_after_login(http: httpx.Client) -> None:
    root = ET.fromstring(
        http.post(
            "/login_sid.lua",
            data={
                "username": "collector",
                "response": pbkdf2_response(
                    session_info(http.get("/login_sid.lua", params={"version": "2"}))["Challenge"],
                    "demo-password",
                ),
            },
        ).text
    )
    names = [el.text for el in root.iterfind("Rights/Name")]
    assert "HomeAuto" in names and "Phone" in names


def test_md5_only_firmware(clock: FakeClock) -> None:
    with (
        FritzboxSimulator(clock=clock, md5_only=True) as sim,
        httpx.Client(base_url=sim.url) as http,
    ):
        challenge = session_info(http.get("/login_sid.lua", params={"version": "2"}))["Challenge"]
        assert len(challenge) == 8 and int(challenge, 16) >= 0
        info = login(http)
        assert info["SID"] != "0000000000000000"
        assert sim.login_count == 1


def test_md5_login_without_version_2(http: httpx.Client) -> None:
    challenge = session_info(http.get("/login_sid.lua"))["Challenge"]
    assert "$" not in challenge
    info = session_info(
        http.get(
            "/login_sid.lua",
            params={"username": "collector", "response": md5_response(challenge, "demo-password")},
        )
    )
    assert info["SID"] != "0000000000000000"


def test_wrong_password_blocks_with_growing_blocktime(
    sim: FritzboxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    times = []
    for _ in range(3):
        info = login(http, "wrong")
        assert info["SID"] == "0000000000000000"
        times.append(int(info["BlockTime"]))
        clock.now += times[-1]  # wait the block out
    assert times == [1, 2, 4]

    info = login(http, "wrong")
    assert info["BlockTime"] == "8"
    clock.now += 3
    blocked = login(http)  # right password, but still blocked
    assert blocked["SID"] == "0000000000000000"
    assert blocked["BlockTime"] == "5"
    assert session_info(http.get("/login_sid.lua", params={"version": "2"}))["BlockTime"] == "5"

    clock.now += 5
    assert login(http)["SID"] != "0000000000000000"
    assert sim.logins_failed == 5
    assert login(http, "wrong")["BlockTime"] == "1"  # a success resets the count


def test_logout_ends_the_session(http: httpx.Client) -> None:
    sid = login(http)["SID"]
    out = session_info(
        http.get("/login_sid.lua", params={"version": "2", "logout": "1", "sid": sid})
    )
    assert out["SID"] == "0000000000000000"
    assert aha(http, sid, "getswitchlist").status_code == 403


# ---- sessions -----------------------------------------------------------------------------


def test_homeautoswitch_needs_a_sid(http: httpx.Client) -> None:
    assert http.get(AHA, params={"switchcmd": "getdevicelistinfos"}).status_code == 403


def test_invalid_sid_ends_all_sessions(sim: FritzboxSimulator, http: httpx.Client) -> None:
    first, second = login(http)["SID"], login(http)["SID"]
    assert aha(http, first, "getswitchlist").status_code == 200
    assert sim.active_sessions == 2
    assert aha(http, "0123456789abcdef", "getswitchlist").status_code == 403
    assert aha(http, first, "getswitchlist").status_code == 403
    assert aha(http, second, "getswitchlist").status_code == 403
    assert sim.invalid_sid_count >= 1


def test_sessions_expire_after_inactivity(
    sim: FritzboxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    sid = login(http)["SID"]
    clock.now += 1100
    assert aha(http, sid, "getswitchlist").status_code == 200  # use keeps it alive
    clock.now += 1100
    assert aha(http, sid, "getswitchlist").status_code == 200
    clock.now += 1200
    assert aha(http, sid, "getswitchlist").status_code == 403


def test_expire_sessions_fault(sim: FritzboxSimulator, http: httpx.Client) -> None:
    sid = login(http)["SID"]
    sim.faults.expire_sessions()
    assert aha(http, sid, "getswitchlist").status_code == 403


def test_unknown_command_and_device(http: httpx.Client) -> None:
    sid = login(http)["SID"]
    assert aha(http, sid, "makecoffee").status_code == 400
    assert aha(http, sid, "getswitchpower", ain="99999 9999999").status_code == 400


# ---- getdevicelistinfos -------------------------------------------------------------------


def test_devicelist_structure(sim: FritzboxSimulator, http: httpx.Client) -> None:
    sid = login(http)["SID"]
    response = aha(http, sid, "getdevicelistinfos")
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "devicelist" and root.get("version") == "1"
    entries = list(root)
    ids = {el.get("id") for el in entries}
    assert len(ids) == len(entries)
    for el in entries:
        assert el.tag in ("device", "group")
        for attr in (
            "identifier",
            "id",
            "functionbitmask",
            "fwversion",
            "manufacturer",
            "productname",
        ):
            assert el.get(attr) is not None
        assert el.findtext("present") in ("0", "1")
        assert el.findtext("name")

    products = [el.get("productname") for el in entries]
    assert products.count("FRITZ!DECT 200") + products.count("FRITZ!DECT 210") >= 3
    assert "FRITZ!DECT 440" in products and "FRITZ!DECT 350" in products

    group = root.find("group")
    assert group is not None
    members = (group.findtext("groupinfo/members") or "").split(",")
    assert len(members) == 2 and set(members) <= ids
    assert group.find("switch") is not None and group.find("powermeter") is not None
    member_power = sum(
        int(el.findtext("powermeter/power") or 0) for el in entries if el.get("id") in members
    )
    assert abs(int(group.findtext("powermeter/power") or 0) - member_power) <= 2

    absent = [el for el in entries if el.findtext("present") == "0"]
    assert absent
    assert absent[0].findtext("powermeter/power") == ""
    assert absent[0].findtext("temperature/celsius") == ""

    hkrs = [el for el in entries if el.find("hkr") is not None]
    assert len(hkrs) == 3
    for el in hkrs:
        celsius = int(el.findtext("temperature/celsius") or 0)
        assert int(el.findtext("hkr/tist") or 0) == round(celsius / 5)  # offset included once
        tsoll = int(el.findtext("hkr/tsoll") or 0)
        assert 16 <= tsoll <= 56 or tsoll in (253, 254)
        assert el.findtext("hkr/errorcode") == "0"
        assert el.findtext("hkr/battery") and el.findtext("hkr/batterylow") in ("0", "1")
    assert "253" in [el.findtext("hkr/tsoll") for el in hkrs]
    assert any(el.findtext("temperature/offset") != "0" for el in hkrs)

    climate = next(el for el in entries if el.get("productname") == "FRITZ!DECT 440")
    assert 0 < int(climate.findtext("humidity/rel_humidity") or 0) < 100
    assert len(climate.findall("button")) == 4

    units = [el for el in entries if el.find("etsiunitinfo") is not None]
    assert len(units) >= 2
    for el in units:
        assert el.findtext("alert/state") in ("0", "1")
        assert el.findtext("etsiunitinfo/etsideviceid") in ids


def test_thermostat_states_over_a_day(sim: FritzboxSimulator, clock: FakeClock) -> None:
    tz = ZoneInfo("Europe/Berlin")
    bath = sim.house.find(sim.ains(Kind.THERMOSTAT)[2])
    living = sim.house.find(sim.ains(Kind.THERMOSTAT)[0])
    assert bath is not None and living is not None
    at = datetime(2024, 6, 10, 5, 30, tzinfo=tz).timestamp()
    assert sim.house.hkr(bath, at).tsoll == 254
    assert sim.house.hkr(bath, at).endperiod == datetime(2024, 6, 10, 6, tzinfo=tz).timestamp()
    window = sim.house.hkr(living, datetime(2024, 6, 10, 8, 5, tzinfo=tz).timestamp())
    assert window.window_open and window.window_end > 0


def test_power_moves_and_energy_integrates(
    sim: FritzboxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    sid = login(http)["SID"]
    ain = sim.ains(Kind.PLUG)[0]
    powers = set()
    for _ in range(6):
        powers.add(aha(http, sid, "getswitchpower", ain=ain).text.strip())
        clock.now += 10
    assert len(powers) > 1

    clock.now = START - 3590
    energy_before = int(aha(http, sid, "getswitchenergy", ain=ain).text)
    clock.now = START
    sid = login(http)["SID"]  # an hour later: the session has expired
    energy_after = int(aha(http, sid, "getswitchenergy", ain=ain).text)
    stats = ET.fromstring(aha(http, sid, "getbasicdevicestats", ain=ain).content)
    block = stats.find("power/stats")
    assert block is not None
    values = [int(v) for v in (block.text or "").split(",")]
    # 359 complete slots of 10 s, in 0.01 W
    integral_wh = sum(values[1:]) / 100 * 10 / 3600
    assert energy_after > energy_before
    assert abs((energy_after - energy_before) - integral_wh) <= 1.01


def test_stats_aligned_newest_first_and_consistent(
    sim: FritzboxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    sid = login(http)["SID"]
    ain = sim.ains(Kind.PLUG)[0]
    clock.now = START + 7  # inside a slot
    root = ET.fromstring(aha(http, sid, "getbasicdevicestats", ain=ain).content)
    assert [el.tag for el in root] == ["temperature", "voltage", "power", "energy"]
    for block in root.iter("stats"):
        grid, count = int(block.get("grid") or 0), int(block.get("count") or 0)
        assert len((block.text or "").split(",")) == count
        if grid in (10, 900):
            assert int(block.get("datatime") or 0) % grid == 0
    power = root.find("power/stats")
    temp = root.find("temperature/stats")
    assert power is not None and temp is not None
    assert int(power.get("datatime") or 0) == START
    live_mw = int(aha(http, sid, "getswitchpower", ain=ain).text)
    assert abs(int((power.text or "").split(",")[0]) * 10 - live_mw) <= 5
    live_c = aha(http, sid, "gettemperature", ain=ain).text.strip()
    assert (temp.text or "").split(",")[0] == live_c

    months, days = root.findall("energy/stats")
    assert (months.get("grid"), months.get("count")) == ("2678400", "12")
    assert (days.get("grid"), days.get("count")) == ("86400", "31")
    tz = ZoneInfo("Europe/Berlin")
    today = datetime.fromtimestamp(START, tz).replace(hour=0, minute=0, second=0)
    assert int(days.get("datatime") or 0) == today.timestamp()
    assert int(months.get("datatime") or 0) == today.replace(day=1).timestamp()
    day_values = [int(v) for v in (days.text or "").split(",")]
    month_values = [int(v) for v in (months.text or "").split(",")]
    assert sum(day_values[: today.day]) == month_values[0]  # this month's days
    energy_now = int(aha(http, sid, "getswitchenergy", ain=ain).text)
    clock.now = today.timestamp()
    energy_midnight = int(aha(http, sid, "getswitchenergy", ain=ain).text)
    assert day_values[0] == energy_now - energy_midnight


def test_stats_of_sensor_and_absent_plug(sim: FritzboxSimulator, http: httpx.Client) -> None:
    sid = login(http)["SID"]
    climate = sim.ains(Kind.CLIMATE)[0]
    root = ET.fromstring(aha(http, sid, "getbasicdevicestats", ain=climate).content)
    assert [el.tag for el in root] == ["temperature", "humidity"]
    absent = next(d.ain for d in sim.house.devices if not d.present)
    root = ET.fromstring(aha(http, sid, "getbasicdevicestats", ain=absent).content)
    assert root.find("power") is not None and root.find("power/stats") is None
    assert aha(http, sid, "getswitchpower", ain=absent).text == "inval\n"
    assert aha(http, sid, "getswitchpresent", ain=absent).text == "0\n"


def test_switching_off_stops_power_and_energy(
    sim: FritzboxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    sid = login(http)["SID"]
    ain = sim.ains(Kind.PLUG)[0].replace(" ", "")  # the AIN works without its space too
    assert aha(http, sid, "setswitchoff", ain=ain).text == "0\n"
    energy = aha(http, sid, "getswitchenergy", ain=ain).text
    clock.now += 600
    assert aha(http, sid, "getswitchpower", ain=ain).text == "0\n"
    assert aha(http, sid, "getswitchstate", ain=ain).text == "0\n"
    assert aha(http, sid, "getswitchenergy", ain=ain).text == energy
    assert aha(http, sid, "setswitchtoggle", ain=ain).text == "1\n"
    clock.now += 600
    assert int(aha(http, sid, "getswitchenergy", ain=ain).text) > int(energy)


def test_text_commands(sim: FritzboxSimulator, http: httpx.Client) -> None:
    sid = login(http)["SID"]
    switches = aha(http, sid, "getswitchlist").text.strip().split(",")
    assert len(switches) == 4 and all(" " not in s for s in switches)
    hkr = sim.ains(Kind.THERMOSTAT)[1]
    assert aha(http, sid, "gethkrtsoll", ain=hkr).text == "253\n"
    assert aha(http, sid, "sethkrtsoll", ain=hkr, param="40").text == "40\n"
    assert aha(http, sid, "gethkrtsoll", ain=hkr).text == "40\n"
    assert aha(http, sid, "getswitchname", ain=switches[0]).text == "Kühlschrank\n"


def test_deterministic_for_seed_and_clock(clock: FakeClock) -> None:
    one = FritzboxSimulator(clock=clock, seed=3).devicelist_xml(START)
    two = FritzboxSimulator(clock=clock, seed=3).devicelist_xml(START)
    other = FritzboxSimulator(clock=clock, seed=4).devicelist_xml(START)
    assert one == two != other


def test_scaled_house() -> None:
    sim = FritzboxSimulator(devices=100)
    root = ET.fromstring(sim.devicelist_xml(START))
    assert 90 <= len(root) <= 110
    assert len({el.get("identifier") for el in root}) == len(root)


# ---- TR-064 -------------------------------------------------------------------------------


def soap(
    http: httpx.Client, action: str, auth: httpx.Auth | None = None, **args: str
) -> httpx.Response:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in args.items())
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:{action} xmlns:u="{SOAP_NS}">{inner}</u:{action}></s:Body></s:Envelope>'
    )
    return http.post(
        "/upnp/control/x_voip",
        content=body,
        headers={
            "Content-Type": 'text/xml; charset="utf-8"',
            "SOAPACTION": f'"{SOAP_NS}#{action}"',
        },
        auth=httpx.USE_CLIENT_DEFAULT if auth is None else auth,
    )


def soap_out(response: httpx.Response) -> dict[str, str]:
    body = ET.fromstring(response.content)[0]
    return {el.tag: el.text or "" for el in body[0]}


def upnp_error(response: httpx.Response) -> str:
    root = ET.fromstring(response.content)
    code = root.find(".//{urn:schemas-upnp-org:control-1-0}errorCode")
    assert code is not None
    return code.text or ""


@pytest.fixture
def tr064(sim: FritzboxSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.tr064_url, timeout=10) as client:
        yield client


DIGEST = httpx.DigestAuth("collector", "demo-password")


def test_tr064_description_lists_x_voip(tr064: httpx.Client) -> None:
    ns = {"d": "urn:dslforum-org:device-1-0"}
    root = ET.fromstring(tr064.get("/tr64desc.xml").content)
    services = {
        s.findtext("d:serviceType", namespaces=ns): s for s in root.iterfind(".//d:service", ns)
    }
    voip = services[SOAP_NS]
    assert voip.findtext("d:controlURL", namespaces=ns) == "/upnp/control/x_voip"
    assert voip.findtext("d:SCPDURL", namespaces=ns) == "/x_voipSCPD.xml"
    scpd = ET.fromstring(tr064.get("/x_voipSCPD.xml").content)
    names = {el.text for el in scpd.iter("{urn:dslforum-org:service-1-0}name")}
    assert {
        "X_AVM-DE_GetVoIPStatus",
        "X_AVM-DE_GetVoIPAccounts",
        "X_AVM-DE_GetNumberOfClients",
    } <= names


def test_tr064_requires_digest(tr064: httpx.Client) -> None:
    refused = soap(tr064, "X_AVM-DE_GetNumberOfClients")
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Digest ") and 'realm="F!Box SOAP-Auth"' in challenge
    assert 'qop="auth"' in challenge
    wrong = soap(tr064, "X_AVM-DE_GetNumberOfClients", auth=httpx.DigestAuth("collector", "nope"))
    assert wrong.status_code == 401
    ok = soap(tr064, "X_AVM-DE_GetNumberOfClients", auth=DIGEST)
    assert ok.status_code == 200
    assert soap_out(ok) == {"NewX_AVM-DE_NumberOfClients": "2"}


def test_tr064_voip_accounts_and_status(sim: FritzboxSimulator, tr064: httpx.Client) -> None:
    listing = soap_out(soap(tr064, "X_AVM-DE_GetVoIPAccounts", auth=DIGEST))
    accounts = ET.fromstring(listing["NewX_AVM-DE_VoIPAccountList"]).findall("AccountList/Account")
    assert [a.findtext("VoIPAccountIndex") for a in accounts] == ["0", "1", "2"]
    numbers = {a.findtext("VoIPNumber") for a in accounts}
    assert len(numbers) == 3
    statuses = [
        soap_out(soap(tr064, "X_AVM-DE_GetVoIPStatus", auth=DIGEST, NewVoIPAccountIndex=str(i)))[
            "NewX_AVM-DE_VoIPStatus"
        ]
        for i in range(3)
    ]
    assert len(set(statuses)) == 3
    assert statuses[1:] == ["not registered", "disabled"]
    assert statuses[0] in ("registered", "connected")
    assert statuses == [a.findtext("X_AVM-DE_VoIPStatus") for a in accounts]
    sim.tr064.set_status(0, "unknown")
    again = soap(tr064, "X_AVM-DE_GetVoIPStatus", auth=DIGEST, NewVoIPAccountIndex="0")
    assert soap_out(again)["NewX_AVM-DE_VoIPStatus"] == "unknown"
    beyond = soap(tr064, "X_AVM-DE_GetVoIPStatus", auth=DIGEST, NewVoIPAccountIndex="3")
    assert beyond.status_code == 500 and upnp_error(beyond) == "713"
    missing = soap(tr064, "X_AVM-DE_GetVoIPStatus", auth=DIGEST)
    assert missing.status_code == 500 and upnp_error(missing) == "402"
    numbers_out = soap_out(soap(tr064, "X_AVM-DE_GetNumbers", auth=DIGEST))
    assert len(ET.fromstring(numbers_out["NewNumberList"]).findall("Item")) == 3
    assert sim.tr064.soap_actions["X_AVM-DE_GetVoIPStatus"] == 6


def test_tr064_old_firmware_answers_invalid_action(clock: FakeClock) -> None:
    with (
        FritzboxSimulator(clock=clock, old_firmware=True) as sim,
        httpx.Client(base_url=sim.tr064_url) as tr064,
    ):
        for action in ("X_AVM-DE_GetVoIPStatus", "X_AVM-DE_GetVoIPAccounts"):
            response = soap(tr064, action, auth=DIGEST, NewVoIPAccountIndex="0")
            assert response.status_code == 500
            assert upnp_error(response) == "401"
        account = soap(tr064, "X_AVM-DE_GetVoIPAccount", auth=DIGEST, NewVoIPAccountIndex="0")
        assert account.status_code == 200
        assert "NewX_AVM-DE_VoIPStatus" not in soap_out(account)
        assert soap_out(account)["NewVoIPNumber"].startswith("+49")


# ---- faults -------------------------------------------------------------------------------


def test_fail_next(sim: FritzboxSimulator, http: httpx.Client) -> None:
    sid = login(http)["SID"]
    sim.faults.fail_next(2, status=503)
    assert aha(http, sid, "getswitchlist").status_code == 503
    assert aha(http, sid, "getswitchlist").status_code == 503
    assert aha(http, sid, "getswitchlist").status_code == 200


def test_fail_next_on_one_path(sim: FritzboxSimulator, http: httpx.Client) -> None:
    sim.faults.fail_next(1, status=500, path=AHA)
    sid = login(http)["SID"]  # the login path is unaffected
    assert aha(http, sid, "getswitchlist").status_code == 500
    assert aha(http, sid, "getswitchlist").status_code == 200


def test_malformed_next(sim: FritzboxSimulator, http: httpx.Client) -> None:
    sid = login(http)["SID"]
    sim.faults.malformed_next(1)
    broken = aha(http, sid, "getdevicelistinfos")
    assert broken.status_code == 200
    with pytest.raises(ET.ParseError):
        ET.fromstring(broken.content)
    ET.fromstring(aha(http, sid, "getdevicelistinfos").content)


def test_rate_limit_and_latency(
    sim: FritzboxSimulator, http: httpx.Client, clock: FakeClock
) -> None:
    sim.faults.latency_s = 0.001
    sim.faults.rate_limit = 3
    codes = [http.get("/login_sid.lua").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 503, 503]
    clock.now += 1.5
    assert http.get("/login_sid.lua").status_code == 200


# ---- the printed config ---------------------------------------------------------------------


def test_printed_config_works_as_printed() -> None:
    """What ``collector simulate fritzbox`` prints is loaded by the config loader and passes
    ``collector check`` against the running simulator, TR-064 included."""
    import asyncio
    from pathlib import Path

    from collector.config import parse_config
    from collector.simulators.fritzbox import banner
    from collector.sources.fritzbox.source import FritzboxSource

    simulator = FritzboxSimulator()
    simulator.start()
    try:
        printed = banner(simulator, name="home")
        config = parse_config(printed, Path("collector.toml"), env={})
        (box,) = config.fritzbox
        assert (box.name, box.url, box.tr064_url, box.username) == (
            "home", simulator.url, simulator.tr064_url, simulator.username
        )
        assert box.tr064_url != box.url.rsplit(":", 1)[0] + ":49000"
        assert box.password.get_secret_value() == simulator.password
        assert box.voip is True

        async def check() -> str:
            async with FritzboxSource(box) as source:
                return await source.check()

        text = asyncio.run(check())
    finally:
        simulator.stop()
    assert text.startswith("FRITZ!OS ")
    assert ", VoIP: " in text


# ---- the descriptions against what a real box serves (FRITZ!OS 8.02, read from shared/) ----

_D = "{urn:dslforum-org:device-1-0}"
_S = "{urn:dslforum-org:service-1-0}"


def _services(root: ET.Element) -> dict[str, tuple[str | None, ...]]:
    """serviceType -> (serviceId, controlURL, eventSubURL, SCPDURL, the device type above)."""
    out = {}
    for device in root.iter(f"{_D}device"):
        for s in device.findall(f"{_D}serviceList/{_D}service"):
            out[s.findtext(f"{_D}serviceType") or ""] = (
                s.findtext(f"{_D}serviceId"), s.findtext(f"{_D}controlURL"),
                s.findtext(f"{_D}eventSubURL"), s.findtext(f"{_D}SCPDURL"),
                device.findtext(f"{_D}deviceType"))
    return out


def _actions(root: ET.Element) -> dict[str, list[tuple[str | None, str | None, str | None]]]:
    """action -> its arguments (name, direction, state variable) in order."""
    return {a.findtext(f"{_S}name") or "": [
        (arg.findtext(f"{_S}name"), arg.findtext(f"{_S}direction"),
         arg.findtext(f"{_S}relatedStateVariable"))
        for arg in a.iter(f"{_S}argument")] for a in root.iter(f"{_S}action")}


def test_every_tr064_service_is_where_a_real_box_has_it(shared_dir: Path,
                                                        tr064: httpx.Client) -> None:
    real = _services(ET.parse(shared_dir / "fixtures/fritzbox/tr064-tr64desc-fritzos802.xml")
                     .getroot())
    ours = _services(ET.fromstring(tr064.get("/tr64desc.xml").content))
    assert set(ours) == {"urn:dslforum-org:service:DeviceInfo:1",
                         "urn:dslforum-org:service:X_VoIP:1",
                         "urn:dslforum-org:service:WANCommonInterfaceConfig:1"}
    for service_type, where in ours.items():
        # id, control and event URLs, SCPD and the device it belongs to (root, WANDevice)
        assert where == real[service_type], service_type


def test_the_x_voip_actions_take_the_arguments_of_a_real_box(shared_dir: Path,
                                                             tr064: httpx.Client) -> None:
    real = _actions(ET.parse(shared_dir / "fixtures/fritzbox/tr064-x_voipSCPD-fritzos802.xml")
                    .getroot())
    ours = _actions(ET.fromstring(tr064.get("/x_voipSCPD.xml").content))
    assert len(ours) == 13
    for action, arguments in ours.items():
        assert sorted(map(str, arguments)) == sorted(map(str, real[action])), action
