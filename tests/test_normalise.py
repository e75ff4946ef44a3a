"""The shared normaliser: numbers, unit table, quantities."""

from __future__ import annotations

import logging
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector import normalise
from collector.normalise import UnitError, convert, convert_or_none, measurement_for, number
from collector.schema import BY_NAME


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (21, 21.0),
        (21.5, 21.5),
        ("21.5", 21.5),
        (" 21 ", 21.0),
        ("-3", -3.0),
        ("0", 0.0),
        (0, 0.0),
        ("1e3", 1000.0),
    ],
)
def test_number_accepts_json_numbers_and_numeric_strings(raw: object, expected: float) -> None:
    value = number(raw)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize("raw", [None, "", "  ", "-", "inval", "unknown", "N/A", "null", "NaN",
                                 float("nan")])
def test_number_unknown_markers_give_no_value(raw: object) -> None:
    assert number(raw) is None


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (True, "got true"),
        ("2,5", "not a number: '2,5'"),
        ("abc", "not a number: 'abc'"),
        ("inf", "not a finite number"),
        (float("inf"), "not a finite number"),
        ([1], "got list"),
        ({"v": 1}, "got dict"),
    ],
)
def test_number_refuses_what_is_not_a_number(raw: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        number(raw)


def test_zero_is_a_value_not_unknown() -> None:
    assert number("0.0") == 0.0
    assert convert(0.0, "kW", to="W") == 0.0


@pytest.mark.parametrize(
    ("value", "unit", "to", "expected"),
    [
        (1.5, "kW", "W", 1500.0),
        (250.0, "W", "W", 250.0),
        (30509.0, "mW", "W", 30.509),
        (2.0, "MW", "W", 2_000_000.0),
        (12.345, "kWh", "Wh", 12345.0),
        (999_075.0, "Wh", "Wh", 999_075.0),
        (232158.0, "mV", "V", 232.158),
        (21.5, "°C", "°C", 21.5),
        (294.65, "K", "°C", 21.5),
        (212.0, "°F", "°C", 100.0),
        (55.0, "%", "%", 55.0),
        (1.2, "klx", "lx", 1200.0),
        (2.0, "h", "s", 7200.0),
    ],
)
def test_conversion_table(value: float, unit: str, to: str, expected: float) -> None:
    assert convert(value, unit, to=to) == pytest.approx(expected, rel=1e-12, abs=1e-9)


def test_prefix_case_matters() -> None:
    assert convert(1.0, "mW", to="W") == 0.001
    assert convert(1.0, "MW", to="W") == 1_000_000.0
    with pytest.raises(UnitError, match="unknown unit 'kw'"):
        convert(1.0, "kw", to="W")


def test_unit_of_another_quantity_is_refused() -> None:
    with pytest.raises(UnitError, match="'kWh' is not a unit of W"):
        convert(1.0, "kWh", to="W")


def test_unknown_unit_is_logged_once_and_gives_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="collector.normalise")
    assert convert_or_none(1.0, "BTU/h", to="W", vendor="Testvendor") is None
    assert convert_or_none(2.0, "BTU/h", to="W", vendor="Testvendor") is None
    lines = [r.getMessage() for r in caplog.records if "BTU/h" in r.getMessage()]
    assert lines == ["Testvendor sent an undocumented unit: unknown unit 'BTU/h'"]


def test_every_target_unit_is_a_schema_unit() -> None:
    schema_units = {m.unit for m in BY_NAME.values()}
    for text, rule in normalise.UNITS.items():
        assert rule.unit in schema_units, text


def test_quantities_name_schema_measurements_whose_unit_the_table_reaches() -> None:
    reachable = {rule.unit for rule in normalise.UNITS.values()}
    for quantity, measurement in normalise.QUANTITIES.items():
        assert measurement in BY_NAME, quantity
        assert BY_NAME[measurement].unit in reachable, quantity


def test_measurement_for() -> None:
    assert measurement_for("power") == "power_w"
    assert measurement_for(" Energy ") == "energy_wh"
    with pytest.raises(UnitError, match=r"unknown quantity 'speed' \(known: battery, co2"):
        measurement_for("speed")


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_kilo_round_trip(value: float) -> None:
    assert convert(value, "kW", to="W") == value * 1000.0
    assert math.isclose(convert(value, "kWh", to="Wh") / 1000.0, value, rel_tol=1e-12,
                        abs_tol=1e-12)


@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.none(), st.booleans()))
def test_number_only_raises_value_error(raw: object) -> None:
    try:
        value = number(raw)
    except ValueError:
        return
    assert value is None or (type(value) is float and math.isfinite(value))
