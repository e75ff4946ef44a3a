"""The one normaliser every source shares: numbers and units into the schema's units.

Vendor encodings (FRITZ! HKR codes, Thinknx mode numbers, Overkiz measured-value types)
stay with their vendor; each vendor turns its encoding into a plain number and a unit text
from the table below, and this module does the rest. A unit not in the table is logged once
and gives no point: a value is never written with a guessed unit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

log = logging.getLogger(__name__)

#: Texts that mean "no value" in any vendor's answer (compared after strip + casefold).
UNKNOWN_TEXTS: Final = frozenset(
    {"", "-", "--", "inval", "invalid", "unknown", "unavailable", "n/a", "na", "none", "null",
     "nan"}
)


class UnitError(ValueError):
    """A unit that is not in the table, or one that does not fit the quantity."""


@dataclass(frozen=True, slots=True)
class UnitRule:
    """``schema value = device value * factor + offset`` in the schema unit ``unit``."""

    unit: str
    factor: float = 1.0
    offset: float = 0.0


#: Device unit text (exact spelling, SI prefixes are case-sensitive: mW vs MW) -> rule.
UNITS: Final[dict[str, UnitRule]] = {
    # power -> W
    "W": UnitRule("W"),
    "mW": UnitRule("W", 0.001),
    "cW": UnitRule("W", 0.01),  # FRITZ! power statistics: 0.01 W steps
    "kW": UnitRule("W", 1000.0),
    "MW": UnitRule("W", 1_000_000.0),
    # energy -> Wh
    "Wh": UnitRule("Wh"),
    "kWh": UnitRule("Wh", 1000.0),
    "MWh": UnitRule("Wh", 1_000_000.0),
    # voltage -> V
    "V": UnitRule("V"),
    "mV": UnitRule("V", 0.001),
    "kV": UnitRule("V", 1000.0),
    # temperature -> °C
    "°C": UnitRule("°C"),
    "C": UnitRule("°C"),
    "degC": UnitRule("°C"),
    "K": UnitRule("°C", 1.0, -273.15),
    "°F": UnitRule("°C", 5.0 / 9.0, -160.0 / 9.0),
    "F": UnitRule("°C", 5.0 / 9.0, -160.0 / 9.0),
    # ratios -> %
    "%": UnitRule("%"),
    "pct": UnitRule("%"),
    # illuminance -> lx
    "lx": UnitRule("lx"),
    "lux": UnitRule("lx"),
    "klx": UnitRule("lx", 1000.0),
    # concentration -> ppm
    "ppm": UnitRule("ppm"),
    # durations -> s
    "s": UnitRule("s"),
    "ms": UnitRule("s", 0.001),
    "min": UnitRule("s", 60.0),
    "h": UnitRule("s", 3600.0),
    "d": UnitRule("s", 86400.0),
}

#: Quantity names (config ``quantity = ...``, vendor quantities) -> schema measurement.
QUANTITIES: Final[dict[str, str]] = {
    "power": "power_w",
    "energy": "energy_wh",
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "voltage": "voltage_v",
    "luminance": "luminance_lx",
    "illuminance": "luminance_lx",
    "co2": "co2_ppm",
    "battery": "battery_pct",
    "level": "level_pct",
}

_warned: set[tuple[str, str, str]] = set()


def warn_once(vendor: str, what: str, value: str) -> None:
    """Log an unexpected vendor value once per process, not once per poll."""
    key = (vendor, what, value)
    if key not in _warned and len(_warned) < 4096:
        _warned.add(key)
        log.warning("%s sent an undocumented %s: %s", vendor, what, value[:80])


def is_unknown(raw: object) -> bool:
    """True for None and the texts that mean "no value"."""
    return raw is None or (isinstance(raw, str) and raw.strip().casefold() in UNKNOWN_TEXTS)


def number(raw: object) -> float | None:
    """A JSON number or a numeric string ("21.5", " 21 ", "2,5" is NOT accepted) -> float.

    None, NaN and the unknown markers give None (no point). Booleans, other types, texts that
    are not numbers and non-finite values raise ``ValueError`` naming what was seen.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise ValueError(f"expected a number, got {str(raw).lower()}")
    if isinstance(raw, int | float):
        value = float(raw)
        if math.isnan(value):  # JSON NaN (Python's json reads it): no value, like "nan"
            return None
    elif isinstance(raw, str):
        text = raw.strip()
        if text.casefold() in UNKNOWN_TEXTS:
            return None
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"not a number: {text[:40]!r}") from None
        if text.casefold().lstrip("+-") in ("inf", "infinity"):
            raise ValueError(f"not a finite number: {text[:40]!r}")
    else:
        raise ValueError(f"expected a number, got {type(raw).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {raw!r}")
    return value


def measurement_for(quantity: str) -> str:
    """The schema measurement of a quantity name; ``UnitError`` for an unknown one."""
    try:
        return QUANTITIES[quantity.strip().casefold()]
    except KeyError:
        known = ", ".join(sorted(QUANTITIES))
        raise UnitError(f"unknown quantity {quantity!r} (known: {known})") from None


def rule(unit: str) -> UnitRule:
    """The rule of a device unit text; ``UnitError`` for one not in the table."""
    found = UNITS.get(unit.strip())
    if found is None:
        raise UnitError(f"unknown unit {unit!r}")
    return found


def convert(value: float, unit: str, *, to: str) -> float:
    """``value`` in device unit ``unit`` expressed in schema unit ``to``.

    ``UnitError`` when the unit is unknown or measures something else (kWh for a power).
    """
    r = rule(unit)
    if r.unit != to:
        raise UnitError(f"unit {unit!r} is not a unit of {to}")
    if r.factor == 1.0 and r.offset == 0.0:
        return value
    return value * r.factor + r.offset


def divisor(unit: str, *, to: str) -> int:
    """The integer a value in the decimal sub-unit ``unit`` is divided by to be in ``to``
    (mW -> W: 1000). Dividing an integer reading by it gives the float nearest to the
    decimal value (230120 mV -> 230.12 V), which multiplying by 0.001 does not always.
    ``UnitError`` for a unit of another quantity or one that is not a decimal sub-unit."""
    r = rule(unit)
    if r.unit != to:
        raise UnitError(f"unit {unit!r} is not a unit of {to}")
    inverse = round(1 / r.factor) if 0 < r.factor <= 1 else 0
    if r.offset != 0.0 or inverse < 1 or abs(inverse * r.factor - 1.0) > 1e-12:
        raise UnitError(f"unit {unit!r} is not a decimal part of {to}")
    return inverse


def convert_or_none(value: float, unit: str, *, to: str, vendor: str) -> float | None:
    """``convert``, but an unknown or unfitting unit is logged once and gives None."""
    try:
        return convert(value, unit, to=to)
    except UnitError as err:
        warn_once(vendor, "unit", str(err))
        return None
