"""Every unit and code conversion of FRITZ! AHA values, in one place.

Section numbers cite the AVM "AHA-HTTP-Interface" document (version 1.23, 22.01.19):
"Tabelle 2" is the command table of section 1.2, 1.2.1 describes ``getdevicelistinfos``,
1.2.2 ``getbasicdevicestats`` and 1.3 the error codes. Elements newer than that document
(humidity, levelcontrol, blind, boost, ...) follow the same conventions and are noted as
such below.

The functions take the raw integer of an element (see :func:`raw_int`) and return the value
in the unit of the schema table (``collector/schema.py``). Anything outside the documented
range raises ``ValueError``; the parsers turn that into a ``ParseError`` naming the element.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from collector import normalise as shared
from collector.sources.fritzbox import stats_time

log = logging.getLogger(__name__)

# The statistics' times (stats_time.py), offered here with every other conversion.
MAX_EPOCH = stats_time.MAX_EPOCH
EnergyPeriod = stats_time.EnergyPeriod
energy_period = stats_time.energy_period
floor_epoch = stats_time.floor_epoch
period_start = stats_time.period_start
sample_epoch = stats_time.sample_epoch

#: Texts that mean "no value", the shared normaliser's; the AHA ones among them: "inval"
#: (Tabelle 2 and 1.3: "inval" when no value could be determined), an empty element (1.2.1,
#: "Hinweis: bei Fehlern oder unbekannten Werten sind die betreffenden Elemente leer") and
#: "-" (1.2.2: "Werte mit '-' sind unbekannt").
UNKNOWN_TEXTS = shared.UNKNOWN_TEXTS

#: Longest integer we accept (a 64-bit value has at most 19 digits).
MAX_DIGITS = 19

_warned: set[tuple[str, str]] = set()


def warn_once(what: str, value: str) -> None:
    """Log an unexpected vendor value once per process, not once per poll."""
    key = (what, value)
    if key not in _warned and len(_warned) < 1024:
        _warned.add(key)
        log.warning("FRITZ!Box sent an undocumented %s: %s", what, value)


# --------------------------------------------------------------------------- raw values


def is_unknown(text: str | None) -> bool:
    """True for a missing element and for the documented "no value" markers."""
    return shared.is_unknown(text)


def raw_int(text: str | None) -> int | None:
    """The integer of an element's text; None for a missing element or an unknown marker.

    Every AHA value is a decimal integer in a fixed unit (1.2.1); a sign is allowed
    ("negative und positive Werte möglich" for temperatures).
    """
    if text is None:
        return None
    if text.isdigit() and text.isascii() and len(text) <= MAX_DIGITS:
        return int(text)  # the common case, checked first
    s = text.strip()
    if s.casefold() in UNKNOWN_TEXTS:
        return None
    digits = s[1:] if s[0] in "+-" else s
    if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_DIGITS:
        raise ValueError(f"not an integer: {s[:40]!r}")
    return int(s)


def flag(raw: int) -> bool:
    """A 0/1 element (1.2.1: present, state, lock, devicelock, batterylow, ...)."""
    if raw not in (0, 1):
        raise ValueError(f"expected 0 or 1, got {raw}")
    return raw == 1


def epoch_time(raw: int) -> datetime | None:
    """Seconds since 1970 (1.2.1 lastpressedtimestamp, nextchange endperiod): 0 is unknown."""
    if raw == 0:
        return None
    if not 0 < raw <= MAX_EPOCH:
        raise ValueError(f"timestamp out of range: {raw}")
    return datetime.fromtimestamp(raw, UTC)


# --------------------------------------------------------------------------- units

# The AHA sub-units, from the shared unit table (resolved once: these run for every value).
_MW_PER_W = shared.divisor("mW", to="W")
_CW_PER_W = shared.divisor("cW", to="W")
_MV_PER_V = shared.divisor("mV", to="V")


def celsius_from_tenths(raw: int) -> float:
    """1.2.1 <temperature><celsius>, Tabelle 2 gettemperature, 1.2.2 temperature statistics:
    "Wert in 0,1 °C, negative und positive Werte möglich".

    <celsius> already has <offset> applied by the box; the offset is informational and
    must never be added again.
    """
    return raw / 10


def watts_from_milliwatts(raw: int) -> float:
    """1.2.1 <powermeter><power>: "Wert in 0,001 W"; Tabelle 2 getswitchpower: "in mW"."""
    return raw / _MW_PER_W


def watts_from_centiwatts(raw: int) -> float:
    """1.2.2 power statistics: "Die Genauigkeit/Einheit der <power>-Werte ist 0,01W"."""
    return raw / _CW_PER_W


def volts_from_millivolts(raw: int) -> float:
    """1.2.1 <powermeter><voltage>: "Wert in 0,001 V"; 1.2.2 voltage statistics:
    "Die Genauigkeit/Einheit der <voltage>-Werte ist 0,001V" (the same unit)."""
    return raw / _MV_PER_V


def watt_hours(raw: int) -> float:
    """1.2.1 <powermeter><energy>: "Wert in 1.0 Wh"; statistics energy is in Wh as well."""
    return float(raw)


def percent(raw: int) -> float:
    """1.2.1 <battery> "Batterieladezustand in Prozent"; the newer <rel_humidity>,
    <levelpercentage> and humidity statistics are percentages too."""
    if not 0 <= raw <= 100:
        raise ValueError(f"percentage out of range: {raw}")
    return float(raw)  # "%" is the schema unit (shared.UNITS)


def percent_from_level(raw: int) -> float:
    """Newer <levelcontrol><level>: 0..255 for 0..100 % (used when <levelpercentage> is
    missing), rounded to 0.1 %."""
    if not 0 <= raw <= 255:
        raise ValueError(f"level out of range: {raw}")
    return round(raw * 100 / 255, 1)


# --------------------------------------------------------------------------- HKR codes


class ThermostatMode(enum.IntEnum):
    """What an HKR setpoint code means (1.2.1 <hkr>, Tabelle 2 gethkrtsoll)."""

    OFF = 0  # code 253 ("253 = OFF")
    ON = 1  # code 254 ("254 = ON"): valve fully open
    SETPOINT = 2  # codes 16..56: regulating to a temperature

    @property
    def label(self) -> str:
        return self.name.lower()


#: 1.2.1 <hkr>: "Wertebereich: 0x10 - 0x38, 16 - 56 (8 bis 28 °C), 16 <= 8 °C, 17 = 8,5 °C
#: ... 56 >= 28 °C, 254 = ON, 253 = OFF"; <nextchange><tchange>: "255/0xff ist unbekannt".
HKR_MIN_CODE = 16
HKR_MAX_CODE = 56
HKR_OFF = 253
HKR_ON = 254
HKR_UNKNOWN = 255


@dataclass(frozen=True, slots=True)
class HkrSetting:
    """A decoded HKR code: a mode, and the temperature when the mode is SETPOINT."""

    mode: ThermostatMode
    celsius: float | None = None


_HKR_OFF = HkrSetting(ThermostatMode.OFF)
_HKR_ON = HkrSetting(ThermostatMode.ON)


def hkr_setting(raw: int) -> HkrSetting | None:
    """Decode an HKR 0.5 °C code (tist, tsoll, komfort, absenk, tchange).

    * 16..56 -> 8.0..28.0 °C in 0.5 °C steps. The ends are saturated: 16 means
      "8 °C or less" and 56 "28 °C or more" (1.2.1), so they read as 8.0 and 28.0.
    * 0..15 and 57..252 are undocumented: None, no point (logged once per code). Clamping
      them to 8.0 or 28.0 would write a setpoint the device never had.
    * 253 and 254 are the thermostat states OFF and ON, never temperatures.
    * 255 is unknown: None, no point.
    * Anything outside a byte is not an HKR code: ValueError.
    """
    if raw == HKR_OFF:
        return _HKR_OFF
    if raw == HKR_ON:
        return _HKR_ON
    if raw == HKR_UNKNOWN:
        return None
    if not 0 <= raw <= 255:
        raise ValueError(f"HKR code out of range: {raw}")
    if raw < HKR_MIN_CODE or raw > HKR_MAX_CODE:
        warn_once("HKR setpoint code (no point)", str(raw))
        return None
    return HkrSetting(ThermostatMode.SETPOINT, raw / 2)


#: Undocumented <tist> codes are written as code / 2 up to this code (40 °C): a room can be
#: that cold or warm; a code beyond it is not a room temperature and gives no point.
TIST_MAX_PLAUSIBLE_CODE = 80


def tist_celsius(raw: int) -> float | None:
    """The measured temperature of an HKR <tist> code (1.2.1: "Isttemperatur in 0,5 °C,
    Wertebereich 16 - 56 (8 bis 28 °C)"), read only when <celsius> gives no value.

    * 16..56 -> 8.0..28.0 °C as documented (16 is "8 °C or less", 56 "28 °C or more").
    * 0..15 and 57..80 are undocumented: what the device sent, code / 2 (0.0..7.5 and
      28.5..40.0 °C), with a warning once per code. Never clamped: a clamped value would
      be a temperature the device did not measure.
    * 81..252, OFF (253), ON (254) and unknown (255): no point (None); the undocumented
      ones warn once.
    * Anything outside a byte is not an HKR code: ValueError.
    """
    if not 0 <= raw <= 255:
        raise ValueError(f"HKR code out of range: {raw}")
    if HKR_MIN_CODE <= raw <= HKR_MAX_CODE:
        return raw / 2
    if raw == HKR_UNKNOWN:
        return None
    if raw <= TIST_MAX_PLAUSIBLE_CODE:
        warn_once("HKR tist code (written as code / 2)", str(raw))
        return raw / 2
    warn_once("HKR tist code (no temperature point)", str(raw))
    return None


class HkrError(enum.IntEnum):
    """1.2.1 <hkr><errorcode>; codes the document does not list map to UNKNOWN."""

    UNKNOWN = -1
    NONE = 0  # "kein Fehler"
    NO_ADAPTATION = 1  # "Keine Adaptierung möglich. Gerät korrekt am Heizkörper montiert?"
    VALVE_STROKE_TOO_SHORT = 2  # "Ventilhub zu kurz oder Batterieleistung zu schwach"
    NO_VALVE_MOVEMENT = 3  # "Keine Ventilbewegung möglich. Ventilstößel frei?"
    INSTALLATION_PREPARING = 4  # "Die Installation wird gerade vorbereitet."
    INSTALLATION_MODE = 5  # "... im Installationsmodus und kann ... montiert werden."
    ADAPTING = 6  # "... passt sich nun an den Hub des Heizungsventils an."

    @classmethod
    def from_code(cls, raw: int) -> HkrError:
        try:
            return cls(raw)
        except ValueError:
            warn_once("HKR error code", str(raw))
            return cls.UNKNOWN

    @property
    def label(self) -> str:
        return _HKR_ERROR_LABELS[self]


_HKR_ERROR_LABELS = {
    HkrError.UNKNOWN: "unknown error",
    HkrError.NONE: "ok",
    HkrError.NO_ADAPTATION: "no adaptation possible, check mounting",
    HkrError.VALVE_STROKE_TOO_SHORT: "valve stroke too short or battery weak",
    HkrError.NO_VALVE_MOVEMENT: "no valve movement possible",
    HkrError.INSTALLATION_PREPARING: "installation being prepared",
    HkrError.INSTALLATION_MODE: "installation mode, ready to mount",
    HkrError.ADAPTING: "adapting to the valve stroke",
}


# --------------------------------------------------------------------------- text codes


class SwitchMode(enum.IntEnum):
    """1.2.1 <switch><mode>: "auto" (time switching) or "manuell"; newer <blind><mode> too."""

    UNKNOWN = -1
    MANUAL = 0
    AUTO = 1

    @classmethod
    def from_text(cls, text: str) -> SwitchMode:
        value = _SWITCH_MODES.get(text.strip().lower())
        if value is None:
            warn_once("switch mode", repr(text[:40]))
            return cls.UNKNOWN
        return value

    @property
    def label(self) -> str:
        return self.name.lower()


_SWITCH_MODES = {"auto": SwitchMode.AUTO, "manuell": SwitchMode.MANUAL, "manual": SwitchMode.MANUAL}


class HanFunUnitType(enum.IntEnum):
    """1.2.1 <etsiunitinfo><unittype>."""

    UNKNOWN = -1
    SIMPLE_BUTTON = 273
    SIMPLE_DETECTOR = 512
    DOOR_OPEN_CLOSE_DETECTOR = 513
    WINDOW_OPEN_CLOSE_DETECTOR = 514
    MOTION_DETECTOR = 515
    FLOOD_DETECTOR = 518
    GLASS_BREAK_DETECTOR = 519
    VIBRATION_DETECTOR = 520

    @classmethod
    def from_code(cls, raw: int) -> HanFunUnitType:
        try:
            return cls(raw)
        except ValueError:
            warn_once("HAN-FUN unit type", str(raw))
            return cls.UNKNOWN

    @property
    def is_contact(self) -> bool:
        """Door and window contacts: their alert state means open/closed."""
        return self in (
            HanFunUnitType.DOOR_OPEN_CLOSE_DETECTOR,
            HanFunUnitType.WINDOW_OPEN_CLOSE_DETECTOR,
        )


class HanFunInterface(enum.IntEnum):
    """1.2.1 <etsiunitinfo><interfaces>."""

    UNKNOWN = -1
    ALERT = 256
    KEEP_ALIVE = 277
    SIMPLE_BUTTON = 772

    @classmethod
    def from_code(cls, raw: int) -> HanFunInterface:
        try:
            return cls(raw)
        except ValueError:
            warn_once("HAN-FUN interface", str(raw))
            return cls.UNKNOWN
