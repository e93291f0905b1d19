"""read_flux on the real flux files in ../shared/data (skipped when absent): FLUXNET2015, Warm Winter, icos_towers."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxnet import FluxDataError, qc_pass, read_flux
from fluxnet.aggregate import UMOL_S_TO_GC_DAY

pytestmark = pytest.mark.realdata

US_AR1_DD = "fluxnet/FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"
CH_CHA_HH = "fluxnet/FLX_CH-Cha_FLUXNET2015_FULLSET_HH_2005-2020_beta-3.csv"


def test_us_ar1_daily(shared_data: Path) -> None:
    table = read_flux(shared_data / US_AR1_DD)
    assert len(table) == 1461
    assert table["date"].iloc[0] == pd.Timestamp("2009-01-01")
    assert table["date"].iloc[-1] == pd.Timestamp("2012-12-31")
    assert (table["site_id"] == "US-AR1").all()
    assert table["GPP"].notna().all()
    # grassland: small negative night-time artefacts allowed, peak below ~20
    assert table["GPP"].between(-3, 20).all() and table["GPP"].max() > 5
    assert table["GPP_qc"].between(0, 1).all()
    # first row, by hand from the file: NT 0.0122488, DT 2.26843, TA_F 2.803
    first = table.iloc[0]
    assert first["GPP"] == pytest.approx((0.0122488 + 2.26843) / 2)
    assert first["GPP_unc"] == pytest.approx(abs(0.0122488 - 2.26843) / 2)
    assert first["TA"] == pytest.approx(2.803)
    assert np.isnan(first["PPFD_IN"])  # -9999 in the file
    assert table.attrs["resolution_in"] == "DD"


def test_ch_cha_half_hourly(shared_data: Path) -> None:
    path = shared_data / CH_CHA_HH
    table = read_flux(path)
    # 99 records: 48 on 1 Jan, 48 on 2 Jan, 3 on 3 Jan (a partial day -> NaN GPP)
    assert list(table["date"]) == list(pd.to_datetime(["2005-01-01", "2005-01-02", "2005-01-03"]))
    assert table["GPP"].iloc[:2].notna().all() and np.isnan(table["GPP"].iloc[2])
    assert np.isnan(table["P"].iloc[2])
    # all 99 records have NEE_VUT_REF_QC = 3 (poor gap-fill): no good records
    assert (table["GPP_qc"] == 0).all()
    raw = pd.read_csv(path, usecols=["TIMESTAMP_START", "GPP_NT_VUT_REF", "GPP_DT_VUT_REF", "P_F"])
    day1 = raw[raw["TIMESTAMP_START"] // 10_000 == 20050101]
    # day boundary: the record starting 2005-01-01 23:30 belongs to 1 Jan, the one
    # starting 2005-01-02 00:00 to 2 Jan
    assert len(day1) == 48 and day1["TIMESTAMP_START"].iloc[-1] == 200501012330
    assert table["GPP_NT"].iloc[0] == pytest.approx(day1["GPP_NT_VUT_REF"].mean() * UMOL_S_TO_GC_DAY)
    assert table["GPP_DT"].iloc[0] == pytest.approx(day1["GPP_DT_VUT_REF"].mean() * UMOL_S_TO_GC_DAY)
    assert table["P"].iloc[0] == pytest.approx(day1["P_F"].sum())
    # with a 3/48 coverage threshold the partial day is kept
    relaxed = read_flux(path, min_coverage=3 / 48)
    assert np.isfinite(relaxed["GPP"].iloc[2])


ICOS_DAILY = "icos_towers/gpp_daily"
WARM_WINTER_DD = "icos_towers/warmwinter/FLX_FR-LGt_FLUXNET2015_FULLSET_DD_2017-2020_beta-3.csv"


def independent_icos_table(path: Path) -> pd.DataFrame:
    """The icos_towers file computed with plain pandas: GPP = mean of NT and DT where both exist, else the one there."""
    raw = pd.read_csv(path)
    nt, dt = raw["GPP_NT_VUT_REF"], raw["GPP_DT_VUT_REF"]
    return pd.DataFrame({
        "date": pd.to_datetime(raw["TIMESTAMP"], format="%Y-%m-%d"),
        "GPP": pd.concat([nt, dt], axis=1).mean(axis=1, skipna=True),
        "GPP_qc": raw["NEE_VUT_MEAN_QC"],
        "release": raw["database"],
    })


def test_every_icos_towers_daily_file(shared_data: Path) -> None:
    files = sorted((shared_data / ICOS_DAILY).glob("*_ICOS_GPP_DD_*.csv"))
    assert len(files) == 54
    days = []
    for path in files:
        table = read_flux(path)
        expected = independent_icos_table(path)
        site = path.name.split("_")[0]
        assert (table["site_id"] == site).all(), path.name
        assert list(table["date"]) == list(expected["date"]), path.name  # every row is a day; absent days stay absent
        np.testing.assert_allclose(table["GPP"], expected["GPP"], rtol=1e-12, err_msg=path.name)
        np.testing.assert_array_equal(table["GPP_qc"], expected["GPP_qc"].to_numpy(dtype=float), err_msg=path.name)
        assert list(table["release"]) == list(expected["release"]), path.name
        assert table.attrs["family"] == "FLUXNET" and table.attrs["resolution_in"] == "DD"
        assert table.attrs["gpp_columns"] == {"GPP_NT": "GPP_NT_VUT_REF", "GPP_DT": "GPP_DT_VUT_REF"}
        assert table.attrs["qc_source"] == "NEE_VUT_MEAN_QC"
        assert table.attrs["days_absent"] == (table["date"].iloc[-1] - table["date"].iloc[0]).days + 1 - len(table)
        assert table.attrs["plausibility"] == [], path.name
        days.append(len(table))
    assert (min(days), int(np.median(days)), max(days)) == (144, 1598, 2315)


def test_icos_towers_values_by_hand(shared_data: Path) -> None:
    # AT-Neu, first rows of the file: 2017-01-05 NT 0.0771776 DT 0.322852 QC 1.0; 2017-01-06 NT empty, DT 0.530971 QC 0.854167
    table = read_flux(shared_data / ICOS_DAILY / "AT-Neu_ICOS_GPP_DD_2017-2020.csv")
    first, second = table.iloc[0], table.iloc[1]
    assert first["date"] == pd.Timestamp("2017-01-05")
    assert first["GPP"] == pytest.approx((0.0771776 + 0.322852) / 2)
    assert first["GPP_unc"] == pytest.approx(abs(0.0771776 - 0.322852) / 2)
    assert first["GPP_qc"] == 1.0 and first["release"] == "fluxnet_archive"
    assert second["GPP"] == pytest.approx(0.530971) and np.isnan(second["GPP_NT"]) and second["GPP_qc"] == pytest.approx(0.854167)
    nt_only = read_flux(shared_data / ICOS_DAILY / "AT-Neu_ICOS_GPP_DD_2017-2020.csv", gpp_method="NT")
    assert np.isnan(nt_only["GPP"].iloc[1])
    # a site with two releases keeps both, day by day
    assert set(read_flux(shared_data / ICOS_DAILY / "BE-Bra_ICOS_GPP_DD_2017-2023.csv")["release"]) == {"fluxnet_archive", "ICOS_ETC_L2"}


def test_icos_towers_pre_filtered_days_pass_with_qc_missing(shared_data: Path) -> None:
    path = shared_data / ICOS_DAILY / "SE-St1_ICOS_GPP_DD_2017-2019.csv"
    table = read_flux(path)
    expected = independent_icos_table(path)
    has_gpp = expected["GPP"].notna()
    assert table.attrs["qc_missing_days"] == int(expected["GPP_qc"].isna().sum()) == 220
    assert list(qc_pass(table)) == list(has_gpp & (expected["GPP_qc"] >= 0.8))  # a day without QC fails by default
    assert list(qc_pass(read_flux(path, qc_missing="pass"))) == list(has_gpp & (expected["GPP_qc"].fillna(1.0) >= 0.8))


def test_warm_winter_daily_fullset(shared_data: Path) -> None:
    path = shared_data / WARM_WINTER_DD
    table = read_flux(path)
    raw = pd.read_csv(path, na_values=[-9999])
    assert len(table) == 1461 and table.attrs["days_absent"] == 0
    assert (table["site_id"] == "FR-LGt").all()
    np.testing.assert_allclose(table["GPP"], raw[["GPP_NT_VUT_REF", "GPP_DT_VUT_REF"]].mean(axis=1), rtol=1e-12)
    for tidy, column in (("GPP_qc", "NEE_VUT_REF_QC"), ("TA", "TA_F"), ("SW_IN", "SW_IN_F"), ("VPD", "VPD_F"), ("P", "P_F"),
                         ("PPFD_IN", "PPFD_IN")):
        np.testing.assert_array_equal(table[tidy].to_numpy(), raw[column].to_numpy(dtype=float), err_msg=tidy)
    assert table.attrs["qc_source"] == "NEE_VUT_REF_QC" and table.attrs["plausibility"] == []
    assert table.attrs["units_in"]["VPD"] == "VPD_F: hPa (FLUXNET convention)"
    # the same site in icos_towers comes from another processing of the archive: close, not identical
    icos = read_flux(shared_data / ICOS_DAILY / "FR-LGt_ICOS_GPP_DD_2017-2022.csv")
    both = icos.merge(table, on="date", suffixes=("_icos", "_ww"))
    assert len(both) == 955
    assert np.corrcoef(both["GPP_icos"], both["GPP_ww"])[0, 1] > 0.95


@pytest.mark.parametrize("relative", [WARM_WINTER_DD, f"{ICOS_DAILY}/CH-Cha_ICOS_GPP_DD_2017-2023.csv", CH_CHA_HH])
def test_compressed_copies_of_real_files_give_the_same_table(shared_data: Path, tmp_path: Path, relative: str) -> None:
    original = shared_data / relative
    expected = read_flux(original)
    gz = tmp_path / (original.name + ".gz")
    gz.write_bytes(gzip.compress(original.read_bytes()))
    archive = tmp_path / (original.stem + ".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(original, f"{original.stem}/{original.name}")
        z.writestr(f"{original.stem}/LICENSE.txt", "CC-BY-4.0\n")
    for copy in (gz, archive):
        pd.testing.assert_frame_equal(read_flux(copy), expected)


def test_tables_of_no_flux_family_get_the_unknown_layout_message(shared_data: Path) -> None:
    for relative, columns in (("pmodel/FR-Pue_gpp_daily_2007-2012.csv", "sitename, date, gpp, gpp_unc"),
                              ("pmodel/BE-Vie_halfhourly_2014.csv", "time, ppfd, vpd, tc, co2")):
        with pytest.raises(FluxDataError, match=rf"unknown layout, no flux-file family matches its columns \({columns}"):
            read_flux(shared_data / relative)
