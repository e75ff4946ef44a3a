"""A FRITZ!Box on loopback: login_sid.lua, homeautoswitch.lua and TR-064 X_VoIP.

Follows the AVM documents in ``avm-aha-http-interface.txt`` and the Session-ID technical note:
PBKDF2 (version=2) and MD5 challenge-response logins, BlockTime doubling after each wrong
password, sessions ending after ``sid_ttl_s`` of inactivity, and an invalid SID ending every
session, as real boxes do. The house and its readings live in ``fritzbox_house``; TR-064 in
``fritzbox_tr064``.
"""

from __future__ import annotations

import json
import random
import ssl
import time
from collections import Counter
from collections.abc import Callable
from datetime import tzinfo
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.simulators._http import BaseSimulator, Clock, Request, Response, SimServer
from collector.simulators.fritzbox_house import Device, House, Kind, Stats, build_devices
from collector.simulators.fritzbox_login import NO_SID, RIGHTS, Login
from collector.simulators.fritzbox_tr064 import Tr064Service

_BITMASK = {
    Kind.PLUG: 35712,
    Kind.GROUP: 6784,
    Kind.THERMOSTAT: 320,
    Kind.CLIMATE: 1048864,
    Kind.REPEATER: 1280,
    Kind.HANFUN: 1,
    Kind.UNIT: 8208,
}
_BUTTONS = ((1, "Oben rechts"), (3, "Unten rechts"), (5, "Unten links"), (7, "Oben links"))


class FritzboxSimulator(BaseSimulator):
    """A FRITZ!Box with a simulated smart home and telephony, served on 127.0.0.1."""

    def __init__(
        self,
        port: int = 0,
        *,
        username: str = "collector",
        password: str = "demo-password",  # noqa: S107
        devices: int | None = None,
        seed: int = 0,
        clock: Clock = time.time,
        md5_only: bool = False,
        sid_ttl_s: float = 1200,
        tr064_port: int = 0,
        old_firmware: bool = False,
        timezone: str = "Europe/Berlin",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.clock = clock
        self.house = House(build_devices(devices, seed), _zone(timezone))
        self._login = Login(
            username, password, random.Random(seed), md5_only=md5_only, ttl_s=sid_ttl_s
        )
        self.tr064 = Tr064Service(
            username, password, clock=clock, old_firmware=old_firmware, seed=seed
        )
        self.commands: Counter[str] = Counter()
        self._tsoll: dict[int, tuple[int, int]] = {}  # device id -> (code, until)
        self.faults.on_expire(self._login.end_all)
        self._servers = [
            SimServer(self._app, port=port, faults=self.faults, clock=clock, tls=tls),
            SimServer(self.tr064.handle, port=tr064_port, faults=self.faults, clock=clock),
        ]
        self._commands: dict[str, Callable[[dict[str, str], float], Response]] = {
            "getdevicelistinfos": lambda form, now: Response.xml(self.devicelist_xml(now)),
            "getswitchlist": self._switchlist,
            "gettemplatelistinfos": lambda form, now: Response.xml('<templatelist version="1"/>'),
        }
        device_commands = (
            "getbasicdevicestats getdeviceinfos setswitchon setswitchoff setswitchtoggle "
            "getswitchstate getswitchpresent getswitchpower getswitchenergy getswitchname "
            "gettemperature gethkrtsoll gethkrkomfort gethkrabsenk sethkrtsoll"
        )
        for name in device_commands.split():
            self._commands[name] = self._with_device(name)

    @property
    def tr064_url(self) -> str:
        return self._servers[1].url

    @property
    def login_count(self) -> int:
        return self._login.login_count

    @property
    def logins_failed(self) -> int:
        return self._login.logins_failed

    @property
    def invalid_sid_count(self) -> int:
        return self._login.invalid_sids

    @property
    def active_sessions(self) -> int:
        return self._login.active(self.clock())

    def ains(self, kind: Kind | None = None) -> list[str]:
        """AINs as the box writes them (with the space), optionally of one kind."""
        return [d.ain for d in self.house.devices if kind is None or d.kind is kind]

    # ---- dispatch -------------------------------------------------------------------------

    def _app(self, request: Request) -> Response:
        if request.path == "/login_sid.lua":
            return self._login_sid(request)
        if request.path == "/webservices/homeautoswitch.lua":
            return self._homeautoswitch(request)
        return Response.text("404 Not Found\n", 404)

    def _login_sid(self, request: Request) -> Response:
        form, now = request.form(), self.clock()
        version2 = form.get("version") == "2"
        sid, rights = NO_SID, False
        if form.get("logout", "") not in ("", "0"):
            if self._login.touch(form.get("sid", ""), now):
                self._login.logout(form.get("sid", ""))
        elif "response" in form:
            new_sid = self._login.login(form.get("username", ""), form["response"], now)
            if new_sid is not None:
                sid, rights = new_sid, True
        elif form.get("sid") and self._login.touch(form["sid"], now):
            sid, rights = form["sid"], True
        return Response.xml(
            '<?xml version="1.0" encoding="utf-8"?><SessionInfo>'
            f"<SID>{sid}</SID><Challenge>{self._login.challenge(version2)}</Challenge>"
            f"<BlockTime>{self._login.block_left(now)}</BlockTime>"
            f"<Rights>{RIGHTS if rights else ''}</Rights>"
            f'<Users><User last="1">{escape(self.username)}</User></Users></SessionInfo>'
        )

    def _homeautoswitch(self, request: Request) -> Response:
        form, now = request.form(), self.clock()
        sid = form.get("sid", "")
        if not sid or not self._login.touch(sid, now):
            return Response.text("403 Forbidden\n", 403)
        command = form.get("switchcmd", "")
        with self._login.lock:
            self.commands[command] += 1
        handler = self._commands.get(command)
        if handler is None:
            return Response.text("400 Bad Request\n", 400)
        return handler(form, now)

    def _switchlist(self, form: dict[str, str], now: float) -> Response:
        switches = [d.ain_compact for d in self.house.devices if d.kind is Kind.PLUG]
        return Response.text(",".join(switches) + "\n")

    def _with_device(self, command: str) -> Callable[[dict[str, str], float], Response]:
        def handle(form: dict[str, str], now: float) -> Response:
            dev = self.house.find(form.get("ain", ""))
            if dev is None:
                return Response.text("400 Bad Request\n", 400)
            if command == "getbasicdevicestats":
                return Response.xml(_stats_xml(self.house.stats(dev, now)))
            if command == "getdeviceinfos":
                return Response.xml(self._device_xml(dev, now))
            answer = self._device_command(command, dev, form.get("param", ""), now)
            return Response.text(("inval" if answer is None else answer) + "\n")

        return handle

    def _device_command(self, command: str, dev: Device, param: str, now: float) -> str | None:
        house = self.house
        switchable = dev.kind in (Kind.PLUG, Kind.GROUP) and dev.present
        if command == "getswitchname":
            return dev.name
        if command == "getswitchpresent":
            return "1" if dev.present else "0"
        if command.startswith("setswitch") and switchable:
            on = {"setswitchon": True, "setswitchoff": False}.get(command)
            house.set_switch(dev, now, not house.switch_on(dev, now) if on is None else on)
            return "1" if house.switch_on(dev, now) else "0"
        if command == "getswitchstate" and switchable:
            return "1" if house.switch_on(dev, now) else "0"
        if command == "getswitchpower" and switchable:
            return str(round(house.power_w(dev, now) * 1000))
        if command == "getswitchenergy" and switchable:
            return str(int(house.energy_wh(dev, now)))
        if command == "gettemperature" and dev.present and dev.kind in _HAS_TEMPERATURE:
            return str(house.celsius_dc(dev, now))
        if dev.kind is not Kind.THERMOSTAT or not dev.present:
            return None
        if command == "sethkrtsoll":
            code = int(param) if param.isdigit() else -1
            if not (16 <= code <= 56 or code in (253, 254)):
                return None
            self._tsoll[dev.id] = (code, house.hkr(dev, now).endperiod or 2**31)
            return str(code)
        codes = {
            "gethkrtsoll": self._hkr_tsoll(dev, now),
            "gethkrkomfort": dev.komfort,
            "gethkrabsenk": dev.absenk,
        }
        return str(codes[command]) if command in codes else None

    def _hkr_tsoll(self, dev: Device, now: float) -> int:
        override = self._tsoll.get(dev.id)
        if override is not None and now < override[1]:
            return override[0]
        return self.house.hkr(dev, now).tsoll

    # ---- XML ------------------------------------------------------------------------------

    def devicelist_xml(self, now: float) -> str:
        body = "".join(self._device_xml(d, now) for d in self.house.devices)
        return f'<devicelist version="1" fwversion="7.57">{body}</devicelist>'

    def _device_xml(self, dev: Device, now: float) -> str:
        house, tag = self.house, "group" if dev.kind is Kind.GROUP else "device"
        present = dev.present

        def val(value: object) -> str:  # unknown values are empty elements
            return str(value) if present else ""

        parts = [
            f"<present>{int(present)}</present><txbusy>0</txbusy><name>{escape(dev.name)}</name>"
        ]
        if dev.battery is not None:
            parts.append(
                f"<battery>{dev.battery}</battery><batterylow>{int(dev.battery < 15)}</batterylow>"
            )
        if dev.kind in (Kind.PLUG, Kind.GROUP):
            state = int(present and house.switch_on(dev, now))
            mode = "auto" if dev.key % 2 else "manuell"
            members = [m for m in house.members(dev) if m.present] or [dev]
            voltage = sum(house.voltage_mv(m, now) for m in members) // len(members)
            parts.append(
                f"<switch><state>{val(state)}</state><mode>{val(mode)}</mode>"
                f"<lock>{val(0)}</lock><devicelock>{val(0)}</devicelock></switch>"
                f"<simpleonoff><state>{val(state)}</state></simpleonoff>"
                f"<powermeter><voltage>{val(voltage)}</voltage>"
                f"<power>{val(round(house.power_w(dev, now) * 1000))}</power>"
                f"<energy>{val(int(house.energy_wh(dev, now)))}</energy></powermeter>"
            )
        if dev.kind in _HAS_TEMPERATURE:
            parts.append(
                f"<temperature><celsius>{val(house.celsius_dc(dev, now))}</celsius>"
                f"<offset>{dev.offset_dc}</offset></temperature>"
            )
        if dev.kind is Kind.THERMOSTAT:
            parts.append(self._hkr_xml(dev, now))
        if dev.kind is Kind.CLIMATE:
            parts.append(
                f"<humidity><rel_humidity>{val(house.humidity_pct(dev, now))}"
                "</rel_humidity></humidity>"
            )
            for n, label in _BUTTONS:
                parts.append(
                    f'<button identifier="{dev.ain}-{n}" id="{5000 + 4 * dev.id + n // 2}">'
                    f"<name>{escape(dev.name)}: {label}</name><lastpressedtimestamp>"
                    f"{house.button_pressed(dev, n, now)}</lastpressedtimestamp></button>"
                )
        if dev.kind is Kind.UNIT:
            is_open, changed = house.alert(dev, now)
            parts.append(
                f"<etsiunitinfo><etsideviceid>{dev.parent_id}</etsideviceid>"
                f"<unittype>{dev.unit_type}</unittype><interfaces>256</interfaces></etsiunitinfo>"
                f"<alert><state>{int(is_open)}</state>"
                f"<lastalertchgtimestamp>{changed}</lastalertchgtimestamp></alert>"
            )
        if dev.kind is Kind.GROUP:
            members_csv = ",".join(str(i) for i in dev.members)
            parts.append(
                f"<groupinfo><masterdeviceid>{dev.parent_id}</masterdeviceid>"
                f"<members>{members_csv}</members></groupinfo>"
            )
        return (
            f'<{tag} identifier={quoteattr(dev.ain)} id="{dev.id}" '
            f'functionbitmask="{_BITMASK[dev.kind]}" fwversion={quoteattr(dev.fw)} '
            f"manufacturer={quoteattr(dev.manufacturer)} productname={quoteattr(dev.product)}>"
            f"{''.join(parts)}</{tag}>"
        )

    def _hkr_xml(self, dev: Device, now: float) -> str:
        hkr = self.house.hkr(dev, now)
        tsoll = self._hkr_tsoll(dev, now)
        battery = dev.battery or 0
        running = int(16 <= tsoll <= 56 and tsoll > hkr.tist)
        return (
            f"<hkr><tist>{hkr.tist}</tist><tsoll>{tsoll}</tsoll><absenk>{dev.absenk}</absenk>"
            f"<komfort>{dev.komfort}</komfort><lock>0</lock><devicelock>0</devicelock>"
            f"<errorcode>0</errorcode><windowopenactiv>{int(hkr.window_open)}</windowopenactiv>"
            f"<windowopenactiveendtime>{hkr.window_end}</windowopenactiveendtime>"
            "<boostactive>0</boostactive><boostactiveendtime>0</boostactiveendtime>"
            f"<batterylow>{int(battery < 15)}</batterylow><battery>{battery}</battery>"
            f"<nextchange><endperiod>{hkr.endperiod}</endperiod><tchange>{hkr.tchange}</tchange>"
            "</nextchange><summeractive>0</summeractive><holidayactive>0</holidayactive>"
            "<adaptiveHeatingActive>1</adaptiveHeatingActive>"
            f"<adaptiveHeatingRunning>{running}</adaptiveHeatingRunning></hkr>"
        )


_HAS_TEMPERATURE = (Kind.PLUG, Kind.THERMOSTAT, Kind.CLIMATE, Kind.REPEATER)


def _stats_xml(stats: dict[str, list[Stats]]) -> str:
    parts = ["<devicestats>"]
    for name, blocks in stats.items():
        inner = "".join(
            f'<stats count="{len(b.values)}" grid="{b.grid}" datatime="{b.datatime}">'
            + ",".join("-" if v is None else str(v) for v in b.values)
            + "</stats>"
            for b in blocks
        )
        parts.append(f"<{name}>{inner}</{name}>")
    parts.append("</devicestats>")
    return "".join(parts)


def banner(sim: FritzboxSimulator, name: str = "sim") -> str:
    """What ``collector simulate fritzbox`` prints: valid TOML as a whole, a ``[[fritzbox]]``
    section that works as printed. The TR-064 port is not the box's 49000, so
    ``tr064_url`` is part of it."""
    return "\n".join([
        f"# FRITZ!Box simulator: {sim.url}  (TR-064: {sim.tr064_url})",
        "# a config that works against it:",
        "[[fritzbox]]",
        f"name = {json.dumps(name)}",
        f"url = {json.dumps(sim.url)}",
        f"tr064_url = {json.dumps(sim.tr064_url)}",
        f"username = {json.dumps(sim.username)}",
        f"password = {json.dumps(sim.password)}",
        "",
    ])  # fmt: skip


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def serve_forever(port: int, tr064_port: int | None = None) -> None:
    """Run the simulator in the foreground until Ctrl-C (``collector simulate fritzbox``)."""
    wanted = (port + 1 if port else 0) if tr064_port is None else tr064_port
    try:
        sim = FritzboxSimulator(port=port, tr064_port=wanted)
        sim.start()
    except OSError:
        sim = FritzboxSimulator(port=port, tr064_port=0)
        sim.start()
    print(banner(sim), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
