"""Writers of small flux files in the layouts real downloads have (synthetic values, realistic headers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TableWriter = Callable[..., Path]


def record_starts(start: str = "2020-06-01", n_days: int = 2, step_minutes: int = 30) -> pd.DatetimeIndex:
    """Start of every record of ``n_days`` whole days."""
    return pd.date_range(start, periods=n_days * 1440 // step_minutes, freq=f"{step_minutes}min")


@pytest.fixture()
def starts() -> Callable[..., pd.DatetimeIndex]:
    """:func:`record_starts`, for tests."""
    return record_starts


@pytest.fixture()
def write_table(tmp_path: Path) -> TableWriter:
    """Write a frame as a text flux table: optional comment lines, units row, separator and line ending."""

    def write(
        name: str,
        frame: pd.DataFrame,
        *,
        sep: str = ",",
        units: Sequence[str] | None = None,
        comments: Sequence[str] = (),
        line_end: str = "\n",
    ) -> Path:
        lines = [*comments, sep.join(frame.columns)]
        if units is not None:
            assert len(units) == len(frame.columns)
            lines.append(sep.join(units))
        body = frame.to_csv(sep=sep, index=False, header=False, lineterminator="\n", na_rep="-9999")
        text = "\n".join(lines) + "\n" + body
        path = tmp_path / name
        path.write_text(text.replace("\n", line_end))
        return path

    return write


def oneflux_hh(starts: pd.DatetimeIndex, *, gpp_nt: float | np.ndarray = 5.0, gpp_dt: float | np.ndarray = 7.0,
               qc: int | np.ndarray = 0) -> pd.DataFrame:
    """An ONEFlux FULLSET-like half-hourly frame (TIMESTAMP_START/END as YYYYMMDDHHMM)."""
    return pd.DataFrame({
        "TIMESTAMP_START": starts.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (starts + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"),
        "TA_F": 15.0, "SW_IN_F": 200.0, "VPD_F": 8.0, "P_F": 0.1,
        "NEE_VUT_REF": -3.0, "NEE_VUT_REF_QC": qc,
        "GPP_NT_VUT_REF": gpp_nt, "GPP_DT_VUT_REF": gpp_dt,
    }, index=range(len(starts)))


@pytest.fixture()
def oneflux_frame() -> Callable[..., pd.DataFrame]:
    """:func:`oneflux_hh`, for tests."""
    return oneflux_hh
