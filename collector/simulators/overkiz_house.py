"""The simulated house behind the Overkiz simulator: places, devices and their states over time.

Every state is a pure function of (seed, device, state, time), so a fake clock gives repeatable
answers and the history of the last 60 days costs nothing to keep. Power is constant within
each hour; the cumulative energy states are the exact integral of that power (prefix sums per
hour), so a meter's energy history and its power history always agree. Live values change on
a one-minute grid (the event listener reports those changes); history is kept at the full hour.

A state's last update is the last change of its value (the installation for one that never
changes). A dead sensor is unavailable and silent for three days, its states frozen. The data
types are overkiz_model.py's, 4, 5 and 9 included (the blob and password states' names are
guesses: no recorded setup shows either type).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from collector.simulators.noise import unit_noise
from collector.simulators.overkiz_model import (
    BLOB,
    CELCIUS,
    DATE,
    DAY_S,
    FLOAT,
    HISTORY_DAYS,
    HOUR_S,
    INT,
    KWH,
    LUX,
    PASSWORD,
    PERCENT,
    STRING,
    TARIFF_1,
    TARIFF_2,
    TICK_S,
    WH,
    Device,
    Fn,
    Meter,
    Place,
    PlaceIds,
    Site,
    State,
    Value,
    W,
)

__all__ = ["HOUR_S", "TARIFF_1", "TARIFF_2", "TICK_S", "Device", "House"]

CREATED_S = 1672531200  # 2023-01-01: when the simulated account and its devices were made


class House(Site):
    """A small house: two heaters with sub-devices, a main meter with two tariffs, climate
    sensors (one of them dead), a window contact, an RTS blind."""

    def __init__(self, seed: int, now: float, timezone: str = "Europe/Paris") -> None:
        self.seed = seed
        self.zone: tzinfo = ZoneInfo(timezone)
        self.timezone = timezone
        self.gateway = f"{1000 + seed % 9000:04d}-4711-0815"
        self._ids = PlaceIds(seed)
        self.living, self.kitchen, self.bedroom = (self._ids.next() for _ in range(3))
        ground = Place(
            self._ids.next(),
            "Ground floor",
            1,
            (Place(self.living, "Living room", 5), Place(self.kitchen, "Kitchen", 5)),
        )
        first = Place(self._ids.next(), "First floor", 1, (Place(self.bedroom, "Bedroom", 5),))
        self.root = Place(self._ids.next(), "Home", 200, (ground, first))
        self.setup_oid = self._ids.next()
        origin = now - (HISTORY_DAYS + 30) * DAY_S
        self.installed = float(min(CREATED_S, int(origin // DAY_S) * DAY_S))
        # the dead sensor's last report: three days before the simulator started
        self.silent_since = float(int((now - 3 * DAY_S) // TICK_S) * TICK_S)
        self.heaters = [self._heater(1, 1500.0), self._heater(2, 1000.0)]
        self.base_load = Meter(origin, 0.0, lambda h: round(120 + 280 * self._noise(90, h)))
        self.main = Meter(origin, 4_812_000.0 + 1000 * (seed % 97), self._main_power)
        # the main meter's two tariffs: off-peak (22:00-06:00 local) and peak; their
        # indexes always add up to the total
        offpeak_start = 1_700_000.0 + 1000 * (seed % 89)
        self.offpeak = Meter(origin, offpeak_start, lambda h: self._tariff_power(h, True))
        self.peak = Meter(
            origin, self.main.start_wh - offpeak_start, lambda h: self._tariff_power(h, False)
        )
        self.devices = self._build(origin)
        self.by_url = {d.url: d for d in self.devices}

    # ---- values ----------------------------------------------------------------------------

    def _noise(self, *parts: int) -> float:
        return unit_noise(self.seed, *parts)

    def _local_hour(self, t: float) -> float:
        local = datetime.fromtimestamp(t, self.zone)
        return local.hour + local.minute / 60

    def comfort_time(self, t: float) -> bool:
        return 6.0 <= self._local_hour(t) < 22.0

    def _heater(self, n: int, rated_w: float) -> Callable[[int], float]:
        def power(hour: int) -> float:
            t = hour * HOUR_S
            duty = (0.45 if self.comfort_time(t) else 0.15) + 0.4 * self._noise(n, hour)
            return float(round(rated_w * min(duty, 1.0)))

        return power

    def _main_power(self, hour: int) -> float:
        return self.base_load.power_at_hour(hour) + sum(h(hour) for h in self.heaters)

    def offpeak_time(self, t: float) -> bool:
        return not 6.0 <= self._local_hour(t) < 22.0

    def _tariff_power(self, hour: int, offpeak: bool) -> float:
        counts = self.offpeak_time(hour * HOUR_S) == offpeak
        return self._main_power(hour) if counts else 0.0

    def room_temperature(self, n: int, t: float) -> float:
        tick = int(t // TICK_S) * TICK_S
        phase = 2 * math.pi * (self._local_hour(tick) - 9.0) / 24
        wobble = 0.3 * self._noise(10 + n, tick // (15 * 60)) - 0.15
        return round(19.5 + n * 0.5 + 1.2 * math.sin(phase) + wobble, 1)

    def _temperature(self, n: int) -> Fn:
        return lambda t: self.room_temperature(n, t)

    def humidity(self, t: float) -> float:
        tick = int(t // TICK_S) * TICK_S
        return round(48 + 8 * math.sin(2 * math.pi * self._local_hour(tick) / 24), 1)

    def luminance(self, t: float) -> int:
        hour = self._local_hour(int(t // TICK_S) * TICK_S)
        return 0 if not 7 <= hour < 20 else int(700 * math.sin(math.pi * (hour - 7) / 13))

    def co2(self, t: float) -> int:
        hour = self._local_hour(int(t // TICK_S) * TICK_S)
        return int(420 + (480 if 18 <= hour < 23 else 120) * self._noise(20, int(t // 900)))

    # ---- devices ---------------------------------------------------------------------------

    def _build(self, origin: float) -> list[Device]:
        gw, devices = self.gateway, []
        for n, (heater, room) in enumerate(
            zip(self.heaters, (self.living, self.bedroom), strict=True), 1
        ):
            base, kwh = f"io://{gw}/{1000 + n}", n == 2
            meter = Meter(origin, 100_000.0 * n + 1000 * (self.seed % 53), heater)
            comfort, eco = (20.0, 16.5) if n == 1 else (19.0, 16.0)

            def target(t: float, c: float = comfort, e: float = eco) -> float:
                return c if self.comfort_time(t) else e

            states = [
                self._steady("core:ComfortRoomTemperatureState", FLOAT, comfort),
                self._steady("core:EcoRoomTemperatureState", FLOAT, eco),
                State("core:TargetTemperatureState", FLOAT, target, historised=True),
                self._steady("core:OperatingModeState", STRING, "internal" if n == 1 else "basic"),
                State(
                    "io:TargetHeatingLevelState",
                    STRING,
                    lambda t: "comfort" if self.comfort_time(t) else "eco",
                ),
                self._steady("core:StatusState", STRING, "available"),
            ]
            if n == 1:  # a derogation of last week (dates: epoch ms), and a blob and a password
                week = int(origin // DAY_S) * DAY_S + (HISTORY_DAYS + 23) * DAY_S
                states += [
                    self._steady("core:DerogationStartDateTimeState", DATE, week * 1000),
                    self._steady("core:DerogationEndDateTimeState", DATE, (week + DAY_S) * 1000),
                    self._steady("io:DiagnosticDataState", BLOB, "AAECAwQFBgcICQ=="),
                    self._steady("io:ServiceAccessCodeState", PASSWORD, "********"),
                ]
            devices += [
                Device(
                    f"{base}#1",
                    f"Heater {n}",
                    "io:AtlanticElectricalHeaterWithAdjustableTemperatureSetpointIOComponent",
                    "AtlanticElectricalHeaterWithAdjustableTemperatureSetpoint",
                    "HeatingSystem",
                    room,
                    1,
                    states,
                    manufacturer="Atlantic Group",
                    power_source="mainSupply",
                ),
                Device(
                    f"{base}#2",
                    f"Heater {n} temperature",
                    "io:TemperatureInCelciusIOSystemDeviceSensor",
                    "TemperatureSensor",
                    "TemperatureSensor",
                    room,
                    2,
                    [State("core:TemperatureState", FLOAT, self._temperature(n), historised=True)],
                    unit=CELCIUS,
                    manufacturer="Atlantic Group",
                    power_source="mainSupply",
                ),
                Device(
                    f"{base}#{3 + n}",
                    f"Heater {n} energy",
                    "io:CumulatedElectricalEnergyConsumptionIOSystemDeviceSensor",
                    "CumulativeElectricPowerConsumptionSensor",
                    "ElectricitySensor",
                    room,
                    2,
                    [
                        State(
                            "core:ElectricEnergyConsumptionState",
                            FLOAT if kwh else INT,
                            meter.index(kwh),
                            historised=True,
                            growing=True,
                        )
                    ],
                    unit=KWH if kwh else WH,
                    manufacturer="Atlantic Group",
                    power_source="mainSupply",
                ),
            ]
        # the main meter: the device says Wh (its tariff indexes count Wh), its energy state
        # has its own unit attribute in kWh and its power state one in W
        devices.append(
            Device(
                f"io://{gw}/2001#1",
                "Main meter",
                "io:TotalElectricalEnergyConsumptionIOSystemDeviceSensor",
                "CumulativeElectricPowerConsumptionSensor",
                "ElectricitySensor",
                self.kitchen,
                2,
                [
                    State(
                        "core:ElectricEnergyConsumptionState",
                        FLOAT,
                        self.main.index(True),
                        historised=True,
                        growing=True,
                        unit=KWH,
                    ),
                    State(
                        "core:ElectricPowerConsumptionState",
                        FLOAT,
                        lambda t: round(self.main.power_w(t), 1),
                        historised=True,
                        unit=W,
                    ),
                    State(
                        TARIFF_1,
                        INT,
                        self.offpeak.index(False),
                        historised=True,
                        growing=True,
                    ),
                    State(TARIFF_2, INT, self.peak.index(False), historised=True, growing=True),
                ],
                unit=WH,
                power_source="mainSupply",
            )
        )
        climate = f"io://{gw}/3001"
        devices += [
            # the most common Somfy thermometer, here (as often) without a unit attribute
            Device(
                f"{climate}#1",
                "Living room air",
                "io:TemperatureIOSystemSensor",
                "TemperatureSensor",
                "TemperatureSensor",
                self.living,
                2,
                [
                    State(
                        "core:TemperatureState",
                        FLOAT,
                        lambda t: self.room_temperature(3, t),
                        historised=True,
                    ),
                    self._steady("core:BatteryLevelState", INT, 87),
                ],
            ),
            Device(
                f"{climate}#2",
                "Living room humidity",
                "io:RelativeHumidityIOSystemSensor",
                "RelativeHumiditySensor",
                "HumiditySensor",
                self.living,
                2,
                [State("core:RelativeHumidityState", FLOAT, self.humidity, historised=True)],
                unit=PERCENT,
            ),
            Device(
                f"{climate}#3",
                "Living room light",
                "io:LightIOSystemSensor",
                "LuminanceSensor",
                "LightSensor",
                self.living,
                2,
                [State("core:LuminanceState", INT, self.luminance, historised=True)],
                unit=LUX,
            ),
            Device(
                f"{climate}#4",
                "Living room CO2",
                "io:CO2IOSystemDeviceSensor",
                "CO2Sensor",
                "AirSensor",
                self.living,
                2,
                [State("core:CO2ConcentrationState", INT, self.co2, historised=True)],
                power_source="mainSupply",
            ),
            self._dead_sensor(f"io://{gw}/3002#1"),
            Device(
                f"io://{gw}/4001#1",
                "Kitchen window",
                "io:ContactIOSystemSensor",
                "ContactSensor",
                "ContactSensor",
                self.kitchen,
                2,
                [
                    State(
                        "core:ContactState",
                        STRING,
                        lambda t: "open" if 7.0 <= self._local_hour(t) < 7.25 else "closed",
                    )
                ],
            ),
            Device(
                f"rts://{gw}/16712345",
                "Bedroom blind",
                "rts:RollerShutterRTSComponent",
                "UpDownRollerShutter",
                "RollerShutter",
                self.bedroom,
                1,
                power_source="mainSupply",
            ),
        ]
        return devices

    def _steady(self, name: str, type_: int, value: Value) -> State:
        return State(name, type_, lambda t: value, steady=True)

    def _dead_sensor(self, url: str) -> Device:
        """A thermometer whose battery died three days ago: its last report stays, the server
        marked it unavailable an hour later (core:StatusState, core:SensorDefectState)."""
        died = self.silent_since
        noticed = died + HOUR_S

        def after(t: float) -> float:
            return noticed if t >= noticed else self.installed

        return Device(
            url,
            "Bedroom air",
            "io:TemperatureIOSystemSensor",
            "TemperatureSensor",
            "TemperatureSensor",
            self.bedroom,
            2,
            [
                State(
                    "core:TemperatureState",
                    FLOAT,
                    lambda t: self.room_temperature(4, min(t, died)),
                    historised=True,
                ),
                State("core:BatteryLevelState", INT, lambda t: 3),
                State(
                    "core:StatusState",
                    STRING,
                    lambda t: "unavailable" if t >= noticed else "available",
                    changed=after,
                ),
                State(
                    "core:SensorDefectState",
                    STRING,
                    lambda t: "dead" if t >= noticed else "lowBattery",
                    changed=after,
                ),
            ],
            unit=CELCIUS,
            available=False,
            silent_since=died,
        )
