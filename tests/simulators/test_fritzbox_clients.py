"""The FRITZ!Box simulator read by the community's clients: pyfritzhome (Home Assistant's
AHA client) and fritzconnection (TR-064). They log in, list the devices, fetch statistics,
load both device descriptions and every SCPD, call the X_VoIP actions, and get the values
of the simulated house, at a fixed time: 2026-01-15 10:00 UTC, 11:00 in Berlin (winter)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from collector.simulators.fritzbox import FritzboxSimulator
from tests.needs import module

T = 1_768_471_200  # 2026-01-15T10:00:00Z, a Thursday
#: Berlin's midnights (UTC+1) before T: the day and the month the energy statistics start at
DAY_START = 1_768_431_600  # 2026-01-14T23:00:00Z
MONTH_START = 1_767_222_000  # 2025-12-31T23:00:00Z


@pytest.fixture(scope="module")
def box() -> Iterator[FritzboxSimulator]:
    with FritzboxSimulator(clock=lambda: float(T)) as sim:
        yield sim


@pytest.fixture(scope="module")
def home(box: FritzboxSimulator) -> Any:
    pyfritzhome = module("pyfritzhome")
    fritz = pyfritzhome.Fritzhome(box.url, box.username, box.password)
    fritz.login()
    fritz.update_devices()
    return fritz


def _dev(box: FritzboxSimulator, ain: str) -> Any:
    dev = box.house.find(ain)
    assert dev is not None
    return dev


def test_pyfritzhome_logs_in_once_and_lists_every_device(box: FritzboxSimulator,
                                                         home: Any) -> None:
    assert box.login_count == 1 and box.logins_failed == 0
    assert [(d.ain, d.name) for d in home.get_devices()] == [
        ("11657 0272633", "Kühlschrank"), ("11657 0272641", "Fernseher"),
        ("11630 0341877", "Waschmaschine"), ("11630 0341905", "Terrasse"),
        ("grp303E4F-3F7D9D5B3", "Erdgeschoss"), ("09995 0421775", "Wohnzimmer"),
        ("09995 0421790", "Schlafzimmer"), ("09995 0421803", "Bad"),
        ("13096 0007308", "Bad Klima"), ("08761 1048079", "Flur"),
        ("12701 0053142", "Haustür"), ("12701 0053142-1", "Haustür"),
        ("11934 0059978", "Küchenfenster"), ("11934 0059978-1", "Küchenfenster"),
    ]


def test_pyfritzhome_reads_the_plugs_of_the_house(box: FritzboxSimulator, home: Any) -> None:
    house = box.house
    for ain in ("11657 0272633", "11657 0272641", "11630 0341877"):
        plug, dev = home.get_device_by_ain(ain), _dev(box, ain)
        assert plug.present is True
        assert plug.power == round(house.power_w(dev, T) * 1000)  # mW
        assert plug.energy == int(house.energy_wh(dev, T))  # Wh
        assert plug.voltage == house.voltage_mv(dev, T)  # mV
        assert plug.temperature == house.celsius_dc(dev, T) / 10
        assert plug.switch_state is True
    assert home.get_device_by_ain("11657 0272641").offset == -0.5
    # the group: the sum of its two members
    members = [_dev(box, "11657 0272633"), _dev(box, "11657 0272641")]
    assert home.get_device_by_ain("grp303E4F-3F7D9D5B3").power == sum(
        round(house.power_w(m, T) * 1000) for m in members)
    # a plug that is not connected: present, and no values
    gone = home.get_device_by_ain("11630 0341905")
    assert gone.present is False and gone.power is None and gone.energy is None


def test_pyfritzhome_reads_the_thermostats_and_the_climate_sensor(box: FritzboxSimulator,
                                                                  home: Any) -> None:
    # 11:00 in Berlin: the comfort period (06:00-22:00) of the schedules
    living = home.get_device_by_ain("09995 0421775")
    assert (living.target_temperature, living.comfort_temperature, living.eco_temperature,
            living.offset, living.battery_level, living.window_open) == (
        21.0, 21.0, 17.0, -1.0, 80, False)
    assert living.temperature == box.house.celsius_dc(_dev(box, "09995 0421775"), T) / 10
    bath = home.get_device_by_ain("09995 0421803")
    assert (bath.target_temperature, bath.battery_level, bath.battery_low) == (23.0, 9, True)
    # switched off: the code 253, which pyfritzhome shows as 126.5
    bedroom = home.get_device_by_ain("09995 0421790")
    assert (bedroom.target_temperature, bedroom.comfort_temperature,
            bedroom.eco_temperature) == (126.5, 20.0, 16.0)
    climate = home.get_device_by_ain("13096 0007308")
    sensor = _dev(box, "13096 0007308")
    assert climate.rel_humidity == box.house.humidity_pct(sensor, T)
    assert climate.temperature == box.house.celsius_dc(sensor, T) / 10
    assert climate.battery_level == 90


def _blocks(xml: str, name: str) -> list[tuple[dict[str, str], list[int | None]]]:
    root = ET.fromstring(xml)
    element = root.find(name)
    assert element is not None, name
    return [(dict(s.attrib), [None if v == "-" else int(v) for v in (s.text or "").split(",")])
            for s in element.findall("stats")]


def test_pyfritzhome_fetches_the_statistics_of_the_house(box: FritzboxSimulator,
                                                         home: Any) -> None:
    house = box.house
    fridge = _dev(box, "11657 0272633")
    xml = home.get_device_statistics("11657 0272633")
    ((power_attrs, power),) = _blocks(xml, "power")
    assert power_attrs == {"count": "360", "grid": "10", "datatime": str(T)}
    # the newest 10 s slot starts at T; power is constant within a slot, in 0.01 W
    assert power[0] == round(house.power_w(fridge, T) * 100) and len(power) == 360
    ((volt_attrs, volts),) = _blocks(xml, "voltage")
    assert volt_attrs["grid"] == "10" and volts[0] == house.voltage_mv(fridge, T)
    months, days = _blocks(xml, "energy")
    assert months[0] == {"count": "12", "grid": "2678400", "datatime": str(MONTH_START)}
    assert days[0] == {"count": "31", "grid": "86400", "datatime": str(DAY_START)}
    assert days[1][0] == int(house.energy_wh(fridge, T)) - int(house.energy_wh(fridge,
                                                                                DAY_START))
    assert months[1][0] == int(house.energy_wh(fridge, T)) - int(
        house.energy_wh(fridge, MONTH_START))
    sensor = _dev(box, "13096 0007308")
    xml = home.get_device_statistics("13096 0007308")
    ((attrs, temperatures),) = _blocks(xml, "temperature")
    assert attrs == {"count": "96", "grid": "900", "datatime": str(T)}
    assert temperatures[0] == house.celsius_dc(sensor, T)  # 0.1 °C
    ((_, humidity),) = _blocks(xml, "humidity")
    assert humidity[0] == house.humidity_pct(sensor, T)
    assert box.login_count == 1  # the session was kept


def _connection(box: FritzboxSimulator, password: str | None = None) -> Any:
    fritzconnection = module("fritzconnection")
    url = urlsplit(box.tr064_url)
    return fritzconnection.FritzConnection(
        address=url.hostname, port=url.port, user=box.username,
        password=box.password if password is None else password, use_cache=False, timeout=10)


def test_fritzconnection_loads_both_descriptions_and_every_scpd(box: FritzboxSimulator) -> None:
    fc = _connection(box)
    assert fc.modelname == "FRITZ!Box 7590"
    assert fc.system_version == "7.57"  # minor and patch of 154.07.57
    assert sorted(fc.services) == ["DeviceInfo1", "WANCommonIFC1", "WANCommonInterfaceConfig1",
                                   "WANIPConn1", "X_VoIP1"]
    assert {"X_AVM-DE_GetNumberOfClients", "X_AVM-DE_GetClient2", "X_AVM-DE_GetVoIPAccount",
            "X_AVM-DE_GetVoIPAccounts", "X_AVM-DE_GetVoIPStatus", "X_AVM-DE_GetNumbers",
            "GetInfo"} <= set(fc.services["X_VoIP1"].actions)


def test_fritzconnection_calls_the_x_voip_actions(box: FritzboxSimulator) -> None:
    fc = _connection(box)
    # typed by the SCPD's state variables: ui2 is a number
    assert fc.call_action("X_VoIP1", "X_AVM-DE_GetNumberOfClients") == {
        "NewX_AVM-DE_NumberOfClients": 2}
    assert fc.call_action("X_VoIP1", "X_AVM-DE_GetClient2", **{"NewX_AVM-DE_ClientIndex": 0}) == {
        "NewX_AVM-DE_ClientUsername": "ipphone620", "NewX_AVM-DE_ClientRegistrar": "fritz.box",
        "NewX_AVM-DE_ClientRegistrarPort": 5060, "NewX_AVM-DE_PhoneName": "Büro IP-Telefon",
        "NewX_AVM-DE_ClientId": "", "NewX_AVM-DE_OutGoingNumber": "+49301234567",
        "NewX_AVM-DE_InternalNumber": "620"}
    account = fc.call_action("X_VoIP1", "X_AVM-DE_GetVoIPAccount", NewVoIPAccountIndex=2)
    assert (account["NewVoIPRegistrar"], account["NewVoIPNumber"], account["NewVoIPPassword"],
            account["NewX_AVM-DE_VoIPStatus"]) == (
        "voip.anbieter.example", "+498955501234", "****", "disabled")
    statuses = [fc.call_action("X_VoIP1", "X_AVM-DE_GetVoIPStatus", NewVoIPAccountIndex=i)
                ["NewX_AVM-DE_VoIPStatus"] for i in range(3)]
    # the first account is in a call at times: "connected" then
    assert statuses == [box.tr064.status(0), "not registered", "disabled"]
    assert statuses[0] in ("registered", "connected")
    assert fc.call_action("DeviceInfo1", "GetInfo")["NewSoftwareVersion"] == "154.07.57"


def test_fritzconnection_reads_the_wan_link_of_both_descriptions(
        box: FritzboxSimulator) -> None:  # fmt: skip
    fc = _connection(box)
    link = {"NewWANAccessType": "DSL", "NewLayer1UpstreamMaxBitRate": 46_720_000,
            "NewLayer1DownstreamMaxBitRate": 116_800_000, "NewPhysicalLinkStatus": "Up"}
    assert fc.call_action("WANCommonInterfaceConfig1", "GetCommonLinkProperties") == link
    assert fc.call_action("WANCommonIFC1", "GetCommonLinkProperties") == link
    assert fc.call_action("WANIPConn1", "GetExternalIPAddress") == {
        "NewExternalIPAddress": "192.0.2.10"}
    # up since Monday 00:00 UTC: 3 days and 10 hours
    assert fc.call_action("WANIPConn1", "GetStatusInfo") == {
        "NewConnectionStatus": "Connected", "NewLastConnectionError": "ERROR_NONE",
        "NewUptime": 3 * 86400 + 10 * 3600}


def test_fritzconnection_is_refused_with_a_wrong_password(box: FritzboxSimulator) -> None:
    exceptions = module("fritzconnection.core.exceptions")
    fc = _connection(box, password="wrong")  # the descriptions need no login
    with pytest.raises(exceptions.FritzAuthorizationError):
        fc.call_action("X_VoIP1", "X_AVM-DE_GetNumberOfClients")
    # the IGD needs none
    assert fc.call_action("WANIPConn1", "GetExternalIPAddress")["NewExternalIPAddress"] == \
        "192.0.2.10"


def test_fritzconnection_sees_an_older_firmware_without_the_2021_actions() -> None:
    with FritzboxSimulator(clock=lambda: float(T), old_firmware=True) as old:
        fc = _connection(old)
        assert fc.system_version == "7.12"
        actions = set(fc.services["X_VoIP1"].actions)
        assert "X_AVM-DE_GetNumberOfClients" in actions
        assert not actions & {"X_AVM-DE_GetVoIPStatus", "X_AVM-DE_GetVoIPAccounts"}
        account = fc.call_action("X_VoIP1", "X_AVM-DE_GetVoIPAccount", NewVoIPAccountIndex=1)
        assert "NewX_AVM-DE_VoIPStatus" not in account
        assert account["NewVoIPNumber"] == "+49301234568"
