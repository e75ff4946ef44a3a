from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.sources.fritzbox import normalise as nz

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("inval", None),
        ("INVAL", None),
        ("-", None),
        (" - ", None),
        ("0", 0),
        ("707", 707),
        ("-15", -15),
        ("+3", 3),
        (" 230252\n", 230252),
    ],
)
def test_raw_int(text: str | None, expected: int | None) -> None:
    assert nz.raw_int(text) == expected


@pytest.mark.parametrize(
    "text", ["12a", "1.5", "1e3", "0x10", "--1", "+", "1_000", "٣", "1 2", "9" * 20]
)
def test_raw_int_rejects_non_integers(text: str) -> None:
    with pytest.raises(ValueError, match="not an integer"):
        nz.raw_int(text)


@pytest.mark.parametrize(
    ("fn", "raw", "expected"),
    [
        (nz.celsius_from_tenths, 285, 28.5),
        (nz.celsius_from_tenths, -15, -1.5),
        (nz.celsius_from_tenths, 0, 0.0),
        (nz.celsius_from_tenths, 205, 20.5),
        (nz.watts_from_milliwatts, 0, 0.0),
        (nz.watts_from_milliwatts, 12345, 12.345),
        (nz.watts_from_milliwatts, 2_300_000, 2300.0),
        (nz.watts_from_centiwatts, 1067, 10.67),
        (nz.watts_from_centiwatts, 12, 0.12),
        (nz.volts_from_millivolts, 230252, 230.252),
        (nz.volts_from_millivolts, 236541, 236.541),
        (nz.watt_hours, 707, 707.0),
        (nz.percent, 0, 0.0),
        (nz.percent, 100, 100.0),
        (nz.percent_from_level, 255, 100.0),
        (nz.percent_from_level, 128, 50.2),
        (nz.percent_from_level, 0, 0.0),
    ],
)
def test_unit_conversions(fn: object, raw: int, expected: float) -> None:
    assert callable(fn)
    value = fn(raw)
    assert type(value) is float
    assert value == expected


@pytest.mark.parametrize(("fn", "raw"), [(nz.percent, 101), (nz.percent, -1),
                                         (nz.percent_from_level, 256)])  # fmt: skip
def test_percentages_out_of_range(fn: object, raw: int) -> None:
    assert callable(fn)
    with pytest.raises(ValueError, match="out of range"):
        fn(raw)


def test_flag() -> None:
    assert nz.flag(0) is False
    assert nz.flag(1) is True
    with pytest.raises(ValueError, match="expected 0 or 1"):
        nz.flag(2)


def test_epoch_time() -> None:
    assert nz.epoch_time(0) is None  # "0 oder leer bei unbekannt"
    assert nz.epoch_time(1704621600) == datetime(2024, 1, 7, 10, 0, tzinfo=UTC)
    for bad in (-1, nz.MAX_EPOCH + 1):
        with pytest.raises(ValueError, match="out of range"):
            nz.epoch_time(bad)


M = nz.ThermostatMode


@pytest.mark.parametrize(
    ("code", "mode", "celsius"),
    [
        (16, M.SETPOINT, 8.0),  # "16 <= 8 °C"
        (17, M.SETPOINT, 8.5),  # "17 = 8,5 °C"
        (36, M.SETPOINT, 18.0),
        (41, M.SETPOINT, 20.5),
        (56, M.SETPOINT, 28.0),  # "56 >= 28 °C"
        (253, M.OFF, None),
        (254, M.ON, None),
    ],
)
def test_hkr_codes(code: int, mode: nz.ThermostatMode, celsius: float | None) -> None:
    setting = nz.hkr_setting(code)
    assert setting == nz.HkrSetting(mode, celsius)


@pytest.mark.parametrize("code", [0, 15, 57, 100, 252])
def test_undocumented_setpoint_codes_give_no_setpoint(code: int) -> None:
    # never a clamped 8 or 28 °C the thermostat was not set to
    assert nz.hkr_setting(code) is None


def test_hkr_unknown_and_invalid() -> None:
    assert nz.hkr_setting(255) is None
    for bad in (-1, 256, 1000):
        with pytest.raises(ValueError, match="HKR code out of range"):
            nz.hkr_setting(bad)


@pytest.mark.parametrize(
    ("code", "celsius"),
    [
        (16, 8.0),  # "16 <= 8 °C"
        (44, 22.0),
        (56, 28.0),  # "56 >= 28 °C"
        (14, 7.0),  # undocumented but a room temperature: what the device sent
        (0, 0.0),
        (57, 28.5),
        (80, 40.0),
        (81, None),  # 40.5 °C is no room temperature: no point, never 28.0
        (100, None),
        (252, None),
        (253, None),  # OFF and ON are not temperatures
        (254, None),
        (255, None),  # unknown
    ],
)
def test_tist_codes_are_never_clamped(code: int, celsius: float | None) -> None:
    assert nz.tist_celsius(code) == celsius


@given(st.integers(min_value=0, max_value=255))
def test_tist_is_the_code_or_nothing(code: int) -> None:
    celsius = nz.tist_celsius(code)
    assert celsius is None or (celsius == code / 2 and type(celsius) is float)
    assert (celsius is None) == (code > nz.TIST_MAX_PLAUSIBLE_CODE)


def test_tist_outside_a_byte_is_an_error() -> None:
    for bad in (-1, 256):
        with pytest.raises(ValueError, match="HKR code out of range"):
            nz.tist_celsius(bad)


def test_thermostat_mode_labels() -> None:
    assert [(m.value, m.label) for m in M] == [(0, "off"), (1, "on"), (2, "setpoint")]


def test_undocumented_hkr_code_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    nz._warned.discard(("HKR setpoint code (no point)", "7"))
    with caplog.at_level("WARNING"):
        nz.hkr_setting(7)
        nz.hkr_setting(7)
    assert [r.getMessage() for r in caplog.records] == [
        "FRITZ!Box sent an undocumented HKR setpoint code (no point): 7"
    ]


def test_hkr_error_codes() -> None:
    assert nz.HkrError.from_code(0) is nz.HkrError.NONE
    assert nz.HkrError.from_code(0).label == "ok"
    assert nz.HkrError.from_code(3) is nz.HkrError.NO_VALVE_MOVEMENT
    assert nz.HkrError.from_code(6).label == "adapting to the valve stroke"
    assert nz.HkrError.from_code(42) is nz.HkrError.UNKNOWN
    assert nz.HkrError.from_code(-1) is nz.HkrError.UNKNOWN
    assert all(e.label for e in nz.HkrError)


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("auto", nz.SwitchMode.AUTO),
        ("manuell", nz.SwitchMode.MANUAL),
        (" Manual ", nz.SwitchMode.MANUAL),
        ("party", nz.SwitchMode.UNKNOWN),
    ],
)
def test_switch_mode(text: str, mode: nz.SwitchMode) -> None:
    assert nz.SwitchMode.from_text(text) is mode


def test_hanfun_codes() -> None:
    assert nz.HanFunUnitType.from_code(514) is nz.HanFunUnitType.WINDOW_OPEN_CLOSE_DETECTOR
    assert nz.HanFunUnitType.from_code(514).is_contact
    assert nz.HanFunUnitType.from_code(513).is_contact
    assert not nz.HanFunUnitType.from_code(515).is_contact
    assert nz.HanFunUnitType.from_code(1) is nz.HanFunUnitType.UNKNOWN
    assert nz.HanFunInterface.from_code(772) is nz.HanFunInterface.SIMPLE_BUTTON
    assert nz.HanFunInterface.from_code(5) is nz.HanFunInterface.UNKNOWN


@pytest.mark.parametrize(
    ("grid", "period"),
    [
        (86400, nz.EnergyPeriod.DAY),
        (2678400, nz.EnergyPeriod.MONTH),
        (2419200, nz.EnergyPeriod.MONTH),
        (3600, None),
        (900, None),
        (31 * 86400 + 1, None),
    ],
)
def test_energy_period(grid: int, period: nz.EnergyPeriod | None) -> None:
    assert nz.energy_period(grid) is period


def test_sample_epoch() -> None:
    assert nz.sample_epoch(1677506356, 900, 0) == 1677506356
    assert nz.sample_epoch(1677506356, 900, 95) == 1677506356 - 95 * 900
    with pytest.raises(ValueError, match="before 1970"):
        nz.sample_epoch(100, 10, 11)


def test_floor_epoch() -> None:
    t = datetime(2024, 1, 7, 12, 5, 7, 999, tzinfo=UTC)
    assert nz.floor_epoch(t, 900) == int(datetime(2024, 1, 7, 12, 0, tzinfo=UTC).timestamp())
    assert nz.floor_epoch(t, 10) == int(datetime(2024, 1, 7, 12, 5, tzinfo=UTC).timestamp())


D = nz.EnergyPeriod.DAY
MO = nz.EnergyPeriod.MONTH
APR_1_10H_CEST = 1711958400  # 2024-04-01T08:00:00Z


@pytest.mark.parametrize(
    ("period", "index", "start"),
    [
        (D, 0, "2024-03-31T22:00:00+00:00"),  # 1 April, CEST
        (D, 1, "2024-03-30T23:00:00+00:00"),  # 31 March starts in CET (the switch day)
        (D, 2, "2024-03-29T23:00:00+00:00"),
        (MO, 0, "2024-03-31T22:00:00+00:00"),  # April
        (MO, 1, "2024-02-29T23:00:00+00:00"),  # March
        (MO, 3, "2023-12-31T23:00:00+00:00"),  # January
        (MO, 4, "2023-11-30T23:00:00+00:00"),  # December of the year before
        (MO, 15, "2022-12-31T23:00:00+00:00"),
    ],
)
def test_period_start(period: nz.EnergyPeriod, index: int, start: str) -> None:
    assert nz.period_start(APR_1_10H_CEST, period, index, BERLIN).isoformat() == start


def test_period_start_other_zone() -> None:
    # 2024-04-01T06:00Z is still 31 March in Los Angeles (23:00 PDT)
    la = ZoneInfo("America/Los_Angeles")
    t = APR_1_10H_CEST - 7200
    assert nz.period_start(t, D, 0, la).isoformat() == "2024-03-31T07:00:00+00:00"
    assert nz.period_start(t, MO, 0, la).isoformat() == "2024-03-01T08:00:00+00:00"  # PST
    assert nz.period_start(t, D, 0, BERLIN).isoformat() == "2024-03-31T22:00:00+00:00"


def test_period_start_before_1970() -> None:
    with pytest.raises(ValueError, match="before 1970"):
        nz.period_start(86400 * 3, D, 5, UTC)
    with pytest.raises(ValueError, match="before 1970"):
        nz.period_start(86400 * 40, MO, 2, UTC)
    with pytest.raises(ValueError, match="before 1970"):
        nz.period_start(APR_1_10H_CEST, D, 10**9, UTC)


def test_schema_notes_say_how_tist_codes_are_written() -> None:
    from collector.schema import render_markdown

    notes = " ".join(render_markdown().split())
    assert f"an undocumented code up to {nz.TIST_MAX_PLAUSIBLE_CODE} is written as" in notes
    assert f"(code / 2, 0..{nz.TIST_MAX_PLAUSIBLE_CODE / 2:.0f} °C)" in notes
    assert "never clamped" in notes


def test_sub_units_and_unknown_texts_come_from_the_shared_normaliser() -> None:
    from collector import normalise as shared

    assert [shared.divisor(u, to=t) for u, t in (("mW", "W"), ("cW", "W"), ("mV", "V"))] == [
        1000, 100, 1000
    ]
    for unit, to in (("K", "°C"), ("kW", "W"), ("mW", "V")):
        with pytest.raises(shared.UnitError, match=repr(unit)):
            shared.divisor(unit, to=to)
    assert nz.UNKNOWN_TEXTS is shared.UNKNOWN_TEXTS
    assert [nz.raw_int(t) for t in ("inval", "-", "", " N/A ", "unknown")] == [None] * 5


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_sub_unit_conversions_are_exact_decimal_divisions(raw: int) -> None:
    assert nz.watts_from_milliwatts(raw) == raw / 1000
    assert nz.watts_from_centiwatts(raw) == raw / 100
    assert nz.volts_from_millivolts(raw) == raw / 1000
