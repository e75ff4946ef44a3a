"""The simulated house behind the Overkiz simulator: places, devices and their states over time.

Every state is a pure function of (seed, device, state, time), so a fake clock gives repeatable
answers and the history of the last 60 days costs nothing to keep. Power is constant within
each hour; the cumulative energy states are the exact integral of that power (prefix sums per
hour), so a meter's energy history and its power history always agree. Live values change on
a one-minute grid (the event listener reports those changes); history is kept at the full hour.

State data types are those of the spec's device state objects: 1 int, 2 float, 3 string,
6 boolean (overkiz-enduser-rest-api.txt, "GET Device states" and the DeviceStateChangedEvent).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from collector.simulators.fritzbox_house import unit_noise
from collector.simulators.overkiz_model import (
    BOOL,
    CELCIUS,
    DAY_S,
    FLOAT,
    HISTORY_DAYS,
    HOUR_S,
    INT,
    KW,
    KWH,
    LUX,
    PERCENT,
    STRING,
    TARIFF_1,
    TARIFF_2,
    TICK_S,
    UNIT_ATTRIBUTE,
    WH,
    Device,
    Fn,
    Meter,
    Place,
    State,
    Value,
    state_unit_attribute,
)

__all__ = [
    "BOOL", "DAY_S", "HOUR_S", "TARIFF_1", "TARIFF_2", "TICK_S", "UNIT_ATTRIBUTE", "Device",
    "House", "Meter", "Place", "State", "state_unit_attribute",
]


class House:
    """A small house: two heaters with sub-devices, a main meter with two tariffs, a climate
    sensor, an RTS blind."""

    def __init__(self, seed: int, now: float, timezone: str = "Europe/Paris") -> None:
        self.seed = seed
        self.zone: tzinfo = ZoneInfo(timezone)
        self.gateway = f"{1000 + seed % 9000:04d}-4711-0815"
        self._ids = _Ids(seed)
        self.living, self.kitchen, self.bedroom = (self._ids.next() for _ in range(3))
        ground = Place(
            self._ids.next(),
            "Ground floor",
            1,
            (Place(self.living, "Living room", 5), Place(self.kitchen, "Kitchen", 5)),
        )
        first = Place(self._ids.next(), "First floor", 1, (Place(self.bedroom, "Bedroom", 5),))
        self.root = Place(self._ids.next(), "Home", 200, (ground, first))
        origin = now - (HISTORY_DAYS + 30) * DAY_S
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
            base = f"io://{gw}/{1000 + n}"
            comfort, eco = 19.0 + n * 1.0, 16.0 + n * 0.5
            meter = Meter(origin, 350_000.0 * n, heater)
            kwh = n == 2  # the second heater's meter counts in kWh

            def target(t: float, c: float = comfort, e: float = eco) -> float:
                return c if self.comfort_time(t) else e

            devices.append(
                Device(
                    f"{base}#1",
                    f"Heater {n}",
                    "io:AtlanticElectricalHeaterWithAdjustableTemperatureSetpointIOComponent",
                    "AtlanticElectricalHeaterWithAdjustableTemperatureSetpoint",
                    "HeatingSystem",
                    room,
                    1,
                    [
                        State("core:ComfortRoomTemperatureState", FLOAT, _const(comfort)),
                        State("core:EcoRoomTemperatureState", FLOAT, _const(eco)),
                        State("core:TargetTemperatureState", FLOAT, target, historised=True),
                        State(
                            "core:OperatingModeState",
                            STRING,
                            _const("internal" if n == 1 else "basic"),
                        ),
                        State(
                            "io:TargetHeatingLevelState",
                            STRING,
                            lambda t: "comfort" if self.comfort_time(t) else "eco",
                        ),
                        State("core:StatusState", STRING, _const("available")),
                    ],
                )
            )
            devices.append(
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
                )
            )
            devices.append(
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
                            _energy(meter, kwh),
                            historised=True,
                            growing=True,
                        )
                    ],
                    unit=KWH if kwh else WH,
                )
            )
        devices.append(
            Device(
                f"io://{gw}/2001#1",
                "Main meter",
                "io:TotalElectricalEnergyConsumptionIOSystemDeviceSensor",
                "TotalElectricalEnergyConsumptionSensor",
                "ElectricitySensor",
                self.kitchen,
                2,
                [
                    State(
                        "core:ElectricEnergyConsumptionState",
                        INT,
                        _energy(self.main, False),
                        historised=True,
                        growing=True,
                    ),
                    State(
                        "core:ElectricPowerConsumptionState",
                        FLOAT,
                        lambda t: round(self.main.power_w(t) / 1000, 3),
                        historised=True,
                        unit=KW,
                    ),
                    State(
                        TARIFF_1,
                        INT,
                        _energy(self.offpeak, False),
                        historised=True,
                        growing=True,
                    ),
                    State(TARIFF_2, INT, _energy(self.peak, False), historised=True, growing=True),
                ],
                unit=WH,
            )
        )
        climate = f"io://{gw}/3001"
        devices += [
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
                    State("core:BatteryLevelState", INT, _const(87)),
                ],
                unit=CELCIUS,
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
            ),
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
            ),
        ]
        return devices

    # ---- history ---------------------------------------------------------------------------

    def history_hours(self, now: float, start_ms: int, end_ms: int) -> list[int]:
        """Full hours (epoch s) inside [start, end] that are at most 60 days old."""
        first = max(start_ms / 1000, now - HISTORY_DAYS * DAY_S)
        last = min(end_ms / 1000, now)
        hour = math.ceil(first / HOUR_S) * HOUR_S
        return list(range(int(hour), int(last) + 1, HOUR_S)) if hour <= last else []

    def periods(
        self, now: float, start_ms: int, end_ms: int, monthly: bool
    ) -> list[tuple[int, int]]:
        """Local days (or months) overlapping [start, end] within the kept history."""
        oldest = now - HISTORY_DAYS * DAY_S
        day = datetime.fromtimestamp(max(start_ms / 1000, oldest), self.zone)
        day = day.replace(hour=0, minute=0, second=0, microsecond=0)
        if monthly:
            day = day.replace(day=1)
        out: list[tuple[int, int]] = []
        end = min(end_ms / 1000, now)
        while day.timestamp() <= end:
            after = _next_month(day) if monthly else (day + timedelta(days=1))
            out.append((int(day.timestamp()), int(after.timestamp())))
            day = after
        return out


def _next_month(day: datetime) -> datetime:
    return day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1)


def _const(value: Value) -> Fn:
    return lambda t: value


def _energy(meter: Meter, kwh: bool) -> Fn:
    if kwh:
        return lambda t: round(meter.energy_wh(t) / 1000, 3)
    return lambda t: int(meter.energy_wh(t))


class _Ids:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"places-{seed}")

    def next(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
