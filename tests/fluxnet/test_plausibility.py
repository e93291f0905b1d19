"""Plausibility findings: range, unit slips with their probable cause, sign; reported, never applied; strict raises."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxnet import FluxDataError, check_plausibility, read_flux

TableWriter = Callable[..., Path]


def seasonal_gpp(n_days: int = 365, peak: float = 12.0) -> np.ndarray:
    """A plausible daily GPP season (gC m-2 d-1): ~0 in winter, ``peak`` in summer."""
    day = np.arange(n_days)
    return np.clip(peak * np.sin(np.pi * day / n_days), 0, None) + 0.2


def table_of(gpp: np.ndarray, site: str = "ZZ-Pla", **drivers: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"site_id": site, "date": pd.date_range("2020-01-01", periods=len(gpp)), "GPP": gpp, **drivers})


def test_plausible_season_has_no_finding() -> None:
    assert check_plausibility(table_of(seasonal_gpp(), TA=np.full(365, 9.0), VPD=np.linspace(1, 25, 365))) == []


@pytest.mark.parametrize(
    ("factor", "cause"),
    [
        (12.011, "probably x12.011: the molar mass of carbon applied twice"),
        (48 / 1.0377504, "probably x46: half-hourly umol m-2 s-1 values summed over the day"),
        (1000.0, "probably x1000: mgC m-2 d-1 taken for gC m-2 d-1"),
        (1 / 12.011, "molC m-2 d-1 taken for gC m-2 d-1"),
    ],
)
def test_unit_slips_name_their_probable_cause(factor: float, cause: str) -> None:
    findings = check_plausibility(table_of(seasonal_gpp() * factor))
    assert any(cause in finding for finding in findings), findings
    assert all(finding.startswith("ZZ-Pla: ") for finding in findings)


def test_range_finding_counts_days() -> None:
    gpp = seasonal_gpp()
    gpp[100:103] = [45.0, -7.0, 60.0]
    assert check_plausibility(table_of(gpp)) == [
        "ZZ-Pla: 3 of 365 days have GPP outside [-5, 40] gC m-2 d-1 (min -7, max 60)"
    ]


def test_sign_flip_is_reported_and_the_option_flips(write_table: TableWriter) -> None:
    gpp = -seasonal_gpp(60, peak=10.0)
    dates = pd.date_range("2020-05-01", periods=60)
    path = write_table("ZZ-Neg_DD.csv", pd.DataFrame({"TIMESTAMP": dates.strftime("%Y%m%d"), "GPP_NT_VUT_REF": gpp,
                                                       "NEE_VUT_REF_QC": 1.0}))
    table = read_flux(path)
    np.testing.assert_allclose(table["GPP"], gpp)  # reporting is not changing
    assert any("the file's sign convention is probably uptake-negative; read it with flip_gpp_sign=True" in f
               for f in table.attrs["plausibility"])
    flipped = read_flux(path, flip_gpp_sign=True)
    np.testing.assert_allclose(flipped["GPP"], -gpp)
    assert flipped.attrs["plausibility"] == []
    assert flipped.attrs["gpp_sign"] == "flipped (flip_gpp_sign=True): the file's GPP is uptake-negative"


def test_strict_raises_one_line_naming_the_file(write_table: TableWriter) -> None:
    dates = pd.date_range("2020-01-01", periods=365)
    path = write_table("ZZ-Mgc_DD.csv", pd.DataFrame({"TIMESTAMP": dates.strftime("%Y-%m-%d"), "GPP_NT_VUT_REF": seasonal_gpp() * 1000,
                                                       "NEE_VUT_REF_QC": 1.0}))
    assert read_flux(path)["GPP"].max() > 1000  # read as is, findings in attrs
    with pytest.raises(FluxDataError, match=r"ZZ-Mgc_DD\.csv: implausible values: ZZ-Mgc: ") as error:
        read_flux(path, strict=True)
    assert "x1000: mgC m-2 d-1" in str(error.value) and "\n" not in str(error.value)


def test_driver_unit_slips() -> None:
    findings = check_plausibility(table_of(seasonal_gpp(), TA=np.full(365, 285.0), VPD=np.linspace(0.1, 1.2, 365)))
    assert "ZZ-Pla: TA median 285 degC: probably kelvin read as degC; give units={<column>: 'K'}" in findings
    assert any(f.startswith("ZZ-Pla: VPD 99th percentile 1.19 hPa: probably kPa read as hPa") for f in findings)


def test_several_sites_are_reported_each() -> None:
    table = pd.concat([table_of(seasonal_gpp(), "ZZ-Aaa"), table_of(seasonal_gpp() * 12.011, "ZZ-Bbb")])
    findings = check_plausibility(table)
    assert findings and all(f.startswith("ZZ-Bbb: ") for f in findings)
