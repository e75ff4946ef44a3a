"""The notebook API: the collected history as pandas DataFrames, from either store.

    from collector.outputs import analysis
    daily = analysis.energy_per_day("30d", tz="Europe/Berlin")   # Wh per local day and device
    climate = analysis.temperature_vs_setpoint("7d", room="Living room")

``load`` reads one measurement from the store the config names (the embedded SQLite file or
InfluxDB) into a tidy DataFrame: one row per point, a tz-aware ``DatetimeIndex`` named
``time``, one column per tag, ``value`` (float) and ``unit``. The helpers compute what the
Energy dashboard shows, the same way its InfluxQL does:

- ``energy_per_day`` / ``energy_per_month`` from the meter (``energy_wh``): per device, the
  difference between the last readings of consecutive calendar days (months) in ``tz``, so a
  23- or 25-hour day counts its real length; a negative difference (a meter reset) gives no
  value for that day, as InfluxQL's ``non_negative_difference`` does. Per-tariff indexes and
  FRITZ! device groups (``scope = group``) are left out, as on the dashboard.
- the same from the devices' own totals (``source="statistics"``: ``energy_period_wh``).

pandas is imported by this module and by the export only, never by the daemon.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal

import pandas as pd

from collector.config import Config, load_config
from collector.errors import ConfigError
from collector.outputs.analysis_read import read_columns
from collector.outputs.export import measurement_names, parse_time
from collector.outputs.export_shape import step_seconds, zone
from collector.outputs.frames import columns_frame, frame
from collector.stores.read import Selection

__all__ = ["cost", "energy_per_day", "energy_per_month", "frame", "load",
           "temperature_vs_setpoint"]

When = str | datetime | None
ConfigLike = Config | str | os.PathLike[str] | None
Source = Literal["meter", "statistics"]


def _config(config: ConfigLike) -> Config:
    if isinstance(config, Config):
        return config
    return load_config(config)


def _tz(tz: str | tzinfo | None) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if tz is None:
        import tzlocal

        return zone(tzlocal.get_localzone_name())
    return zone(tz)


def load(measurement: str, start: When = None, end: When = None, *, site: str | None = None,
         room: str | None = None, device: str | None = None, config: ConfigLike = None,
         tz: str | tzinfo | None = "UTC", resample: str | None = None) -> pd.DataFrame:
    """One measurement between ``start`` (inclusive) and ``end`` (exclusive).

    ``start``/``end``: "7d" (ago), ISO strings, datetimes, or None (open). ``config``: a path
    to a collector.toml, a loaded Config, or None for the CLI's lookup ($COLLECTOR_CONFIG,
    else ./collector.toml). ``device`` matches the display name or the device_id. The index is
    converted to ``tz`` (default UTC). ``resample`` ("15m", "1h", "1d"): one row per series
    and interval of ``tz`` with the aggregate of the measurement's kind, as ``collector
    export --resample``; 1h or coarser reads the store's hourly rollups where they exist.
    """
    (name,) = measurement_names([measurement])
    sel = Selection(parse_time(start), parse_time(end), device, site, room)
    if resample is not None:
        from collector.outputs.export_rollup import resampled

        zone_ = UTC if tz is None else _tz(tz)
        df = frame(name, resampled(_config(config), name, sel, step_seconds(resample), zone_))
    else:
        df = columns_frame(name, read_columns(_config(config), name, sel))
    if tz is not None:
        df.index = df.index.tz_convert(_tz(tz))
    return df


# --- energy -----------------------------------------------------------------------------------


def _day_floor(ns: int | None, tz: tzinfo, months: bool) -> int | None:
    if ns is None:
        return None
    local = datetime.fromtimestamp(ns // 1_000_000_000, tz)
    first = local.replace(day=1 if months else local.day, hour=0, minute=0, second=0,
                          microsecond=0, fold=0)
    return int(first.timestamp()) * 1_000_000_000


def _per_period(freq: str, start: When, end: When, tz: str | tzinfo | None, source: Source,
                site: str | None, room: str | None, device: str | None,
                config: ConfigLike) -> pd.DataFrame:
    zone_ = _tz(tz)
    months = freq == "MS"
    first = _day_floor(parse_time(start), zone_, months)
    if source == "meter":
        # like InfluxQL's difference over GROUP BY time, the period before the first is read
        before = None if first is None else _day_floor(first - 1, zone_, months)
        df = load("energy_wh", _dt(before), end, site=site, room=room, device=device,
                  config=config, tz=zone_)
    elif source == "statistics":
        df = load("energy_period_wh", _dt(first), end, site=site, room=room, device=device,
                  config=config, tz=zone_)
    else:
        raise ConfigError(f"source: {source!r} is neither 'meter' nor 'statistics'")
    return energy_table(df, freq, zone_, source, first)


def _dt(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, UTC)


def _without(df: pd.DataFrame, column: str, keep: str | None = None) -> pd.DataFrame:
    """Rows whose ``column`` tag is absent (or equal to ``keep``)."""
    if column not in df.columns:
        return df
    tag = df[column]
    return df[tag.isna() | (tag == keep) if keep is not None else tag.isna()]


def energy_table(df: pd.DataFrame, freq: str, tz: tzinfo, source: Source,
                 first: int | None = None) -> pd.DataFrame:
    """Wh per calendar period (``"1D"`` or ``"MS"``) in ``tz``, one column per device, from a
    frame ``load`` returned (``energy_wh`` for the meter, ``energy_period_wh`` for the
    statistics). Periods without a value are left out, as ``fill(none)`` does."""
    df = _without(df, "scope")
    if source == "meter":
        df = _without(df, "tariff")
    elif "period" in df.columns:
        df = df[df["period"] == ("month" if freq == "MS" else "day")]
    if df.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz=tz, name="time"), dtype="float64")
    local = df["value"].tz_convert(tz) if df.index.tz is not None else df["value"]
    out: dict[str, pd.Series] = {}
    for name, series in local.groupby(df["device"].to_numpy()):
        buckets = series.sort_index().resample(freq)
        if source == "meter":
            last = buckets.last().dropna()
            diff = last.diff().iloc[1:]
            out[str(name)] = diff[diff >= 0]
        else:
            out[str(name)] = buckets.sum(min_count=1).dropna()
    table = pd.DataFrame(out).sort_index()
    table.index.name = "time"
    if first is not None:
        table = table[table.index >= pd.Timestamp(first, unit="ns", tz=UTC)]
    return table.dropna(how="all")


def energy_per_day(start: When = None, end: When = None, *, tz: str | tzinfo | None = None,
                   source: Source = "meter", site: str | None = None, room: str | None = None,
                   device: str | None = None, config: ConfigLike = None) -> pd.DataFrame:
    """Wh per calendar day in ``tz`` (default: this machine's zone), one column per device.

    ``source="meter"``: from the cumulative counter ``energy_wh``; ``"statistics"``: the
    devices' own daily totals (``energy_period_wh``, period = day).
    """
    return _per_period("1D", start, end, tz, source, site, room, device, config)


def energy_per_month(start: When = None, end: When = None, *, tz: str | tzinfo | None = None,
                     source: Source = "meter", site: str | None = None,
                     room: str | None = None, device: str | None = None,
                     config: ConfigLike = None) -> pd.DataFrame:
    """Wh per calendar month in ``tz``, one column per device (see ``energy_per_day``)."""
    return _per_period("MS", start, end, tz, source, site, room, device, config)


def cost(price_per_kwh: float, energy: pd.DataFrame | pd.Series | None = None,
         **energy_args: Any) -> pd.DataFrame | pd.Series:
    """``energy`` (Wh, e.g. from ``energy_per_day``) times ``price_per_kwh``; without
    ``energy``, ``energy_per_day(**energy_args)`` is used. Same shape as the energy."""
    if energy is None:
        energy = energy_per_day(**energy_args)
    return energy / 1000.0 * price_per_kwh


# --- climate ----------------------------------------------------------------------------------


def temperature_vs_setpoint(start: When = None, end: When = None, *, room: str | None = None,
                            freq: str = "1h", tz: str | tzinfo | None = "UTC",
                            site: str | None = None, config: ConfigLike = None) -> pd.DataFrame:
    """Measured temperature beside the target setpoint, per room and interval (means).

    Columns: ``room``, ``temperature_c``, ``setpoint_c`` (kind = target) and ``delta_c``
    (temperature minus setpoint); the index is the start of each ``freq`` interval in ``tz``.
    Readings without a ``room`` tag cannot be joined and are left out.
    """
    cfg, zone_ = _config(config), _tz(tz)
    temp = load("temperature_c", start, end, room=room, site=site, config=cfg, tz=zone_)
    setp = load("setpoint_c", start, end, room=room, site=site, config=cfg, tz=zone_)
    if "kind" in setp.columns:
        setp = setp[setp["kind"] == "target"]
    parts = []
    for name, got in (("temperature_c", temp), ("setpoint_c", setp)):
        if got.empty or "room" not in got.columns:
            continue
        roomed = got[got["room"].notna()]
        means = roomed.groupby("room")["value"].resample(freq).mean().dropna()
        parts.append(means.rename(name))
    if not parts:
        return pd.DataFrame(columns=["room", "temperature_c", "setpoint_c", "delta_c"],
                            index=pd.DatetimeIndex([], tz=zone_, name="time"))
    joined = pd.concat(parts, axis=1).reset_index(level="room").sort_index()
    for column in ("temperature_c", "setpoint_c"):
        if column not in joined.columns:
            joined[column] = float("nan")
    joined["delta_c"] = joined["temperature_c"] - joined["setpoint_c"]
    return joined[["room", "temperature_c", "setpoint_c", "delta_c"]]

