"""Rows of one measurement as a tidy pandas DataFrame: what ``collector.outputs.analysis.load`` and
the export's ``to_dataframe`` return. pandas is imported here and by those two only, never
by the daemon."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from collector.outputs.analysis_read import Columns, columns_from_rows
from collector.schema import BY_NAME, Kind
from collector.stores.read import Row


def frame(measurement: str, rows: Iterable[Row]) -> pd.DataFrame:
    """Rows of one measurement as a tidy DataFrame (index ``time`` in UTC)."""
    return columns_frame(measurement, columns_from_rows(rows))


def columns_frame(measurement: str, cols: Columns) -> pd.DataFrame:
    columns: dict[str, Any] = {}
    for key in sorted({k for tags in cols.series for k in tags}):
        per_series = np.array([tags.get(key) for tags in cols.series], dtype=object)
        columns[key] = per_series[cols.codes] if len(cols.codes) else per_series[:0]
    columns["value"] = cols.values
    columns["unit"] = BY_NAME[measurement].unit
    if BY_NAME[measurement].kind is Kind.STATE:
        columns["label"] = cols.labels if cols.labels is not None else [None] * len(cols.times)
    index = pd.DatetimeIndex(pd.to_datetime(cols.times, unit="ns", utc=True), name="time")
    return pd.DataFrame(columns, index=index)
