"""The family registry: ONEFlux variants, REddyProc, AmeriFlux BASE, European Fluxes Database; detection and refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxnet import FAMILIES, FluxDataError, detect_format, read_flux
from fluxnet.aggregate import UMOL_S_TO_GC_DAY
from fluxnet.read import _column_plan

Starts = Callable[..., pd.DatetimeIndex]
TableWriter = Callable[..., Path]
DD_NAME = "FLX_ZZ-Fam_FLUXNET2015_FULLSET_DD_2020-2020_synthetic.csv"


def oneflux_daily(**columns: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"TIMESTAMP": [20200601, 20200602], **columns})


def test_oneflux_prefers_vut_ref_and_falls_back_to_other_variants(write_table: TableWriter) -> None:
    frame = oneflux_daily(GPP_NT_VUT_MEAN=[1.0, 2.0], GPP_NT_CUT_REF=[9.0, 9.0], GPP_DT_VUT_REF=[3.0, 4.0], GPP_DT_VUT_05=[8.0, 8.0],
                          NEE_VUT_MEAN_QC=[1.0, 0.5], NEE_CUT_REF_QC=[0.0, 0.0])
    table = read_flux(write_table(DD_NAME, frame))
    assert table.attrs["gpp_columns"] == {"GPP_NT": "GPP_NT_VUT_MEAN", "GPP_DT": "GPP_DT_VUT_REF"}
    np.testing.assert_allclose(table["GPP"], [2.0, 3.0])
    # QC follows the night-time variant (VUT_MEAN)
    assert table.attrs["qc_source"] == "NEE_VUT_MEAN_QC"
    np.testing.assert_allclose(table["GPP_qc"], [1.0, 0.5])
    cut = read_flux(write_table(DD_NAME, frame), gpp_variant="CUT_REF")
    assert cut.attrs["gpp_columns"] == {"GPP_NT": "GPP_NT_CUT_REF"}
    assert cut.attrs["qc_source"] == "NEE_CUT_REF_QC"
    np.testing.assert_allclose(cut["GPP"], [9.0, 9.0])
    assert cut.attrs["gpp_rule"] == "GPP = GPP_NT (GPP_NT_CUT_REF): the file(s) have no day-time GPP"
    with pytest.raises(FluxDataError, match=r"gpp_variant='VUT_95' is not in it; its GPP variants are CUT_REF, VUT_05, VUT_MEAN, VUT_REF"):
        read_flux(write_table(DD_NAME, frame), gpp_variant="VUT_95")


def test_gpp_method_needs_its_partitioning(write_table: TableWriter) -> None:
    path = write_table(DD_NAME, oneflux_daily(GPP_DT_VUT_REF=[3.0, 4.0], NEE_VUT_REF_QC=[1.0, 1.0]))
    with pytest.raises(FluxDataError, match=r"has no night-time GPP column \(e\.g\. GPP_NT_VUT_REF\), needed for gpp_method='NT'"):
        read_flux(path, gpp_method="NT")
    assert read_flux(path, gpp_method="DT").attrs["gpp_rule"] == "GPP = GPP_DT (GPP_DT_VUT_REF) (gpp_method='DT')"


def reddyproc_output(starts: pd.DatetimeIndex) -> pd.DataFrame:
    """Columns of sExportResults() after sMDSGapFillUStarScens(), sMRFluxPartitionUStarScens(), sGLFluxPartitionUStarScens()."""
    ends = starts + pd.Timedelta(minutes=30)
    n = len(ends)
    fqc = np.zeros(n)
    fqc[:10] = 3  # ten poorly gap-filled records on day 1
    return pd.DataFrame({
        "DateTime": ends.strftime("%Y-%m-%d %H:%M:%S"),
        "NEE": -4.0, "Ustar": 0.4, "Rg": 300.0, "Tair": 12.0, "VPD": 6.0,
        "Ustar_uStar_Thres": 0.2, "Ustar_U05_Thres": 0.15, "Ustar_U50_Thres": 0.2,
        "NEE_uStar_orig": -4.0, "NEE_uStar_f": -4.0, "NEE_uStar_fqc": fqc,
        "NEE_U05_f": -4.1, "NEE_U05_fqc": 0, "NEE_U50_f": -4.0, "NEE_U50_fqc": 1,
        "Tair_f": 12.5, "Tair_fqc": 0, "VPD_f": 6.5, "VPD_fqc": 0, "Rg_f": 310.0, "Rg_fqc": 0,
        "Reco_uStar": 2.0, "GPP_uStar_f": 6.0, "GPP_uStar_fqc": fqc,
        "Reco_U05": 2.1, "GPP_U05_f": 6.1, "Reco_U50": 2.0, "GPP_U50_f": 5.5,
        "Reco_DT_uStar": 2.2, "GPP_DT_uStar": 8.0, "Reco_DT_uStar_SD": 0.3, "GPP_DT_uStar_SD": 0.4,
        "GPP_DT_U50": 7.5, "GPP_DT_U50_SD": 0.4,
    }, index=range(n))


def test_reddyproc_output_with_units_row_and_ustar_scenarios(write_table: TableWriter, starts: Starts) -> None:
    frame = reddyproc_output(starts())
    units = ["-" if c == "DateTime" or c.endswith("qc") else {"Tair": "degC", "Tair_f": "degC", "VPD": "hPa", "VPD_f": "hPa",
             "Rg": "Wm-2", "Rg_f": "Wm-2", "Ustar": "ms-1"}.get(c, "umolm-2s-1") for c in frame.columns]
    path = write_table("DE-Tha_REddyProc_results.txt", frame, sep="\t", units=units, line_end="\r\n")
    table = read_flux(path)
    assert table.attrs["family"] == "REDDYPROC"
    assert table.attrs["gpp_columns"] == {"GPP_NT": "GPP_uStar_f", "GPP_DT": "GPP_DT_uStar"}
    np.testing.assert_allclose(table["GPP_NT"], 6.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(table["GPP_DT"], 8.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(table["GPP_qc"], [38 / 48, 1.0])  # 10 records of day 1 flagged 3 (poor gap-fill)
    np.testing.assert_allclose(table["TA"], 12.5)  # the gap-filled Tair_f, not Tair
    np.testing.assert_allclose(table["SW_IN"], 310.0)
    assert table.attrs["qc_source"] == "NEE_uStar_fqc" and "<= 1" in table.attrs["qc_rule"]
    assert table.attrs["units_in"]["GPP_NT"] == "GPP_uStar_f: umolm-2s-1 (units row)"
    assert table.attrs["site_id"] == "DE-Tha"
    u50 = read_flux(path, gpp_variant="U50")
    assert u50.attrs["gpp_columns"] == {"GPP_NT": "GPP_U50_f", "GPP_DT": "GPP_DT_U50"}
    assert u50.attrs["qc_source"] == "NEE_U50_fqc"
    np.testing.assert_allclose(u50["GPP_qc"], 1.0)  # flag 1 = good gap-fill


def test_reddyproc_without_scenarios_and_without_units_row(write_table: TableWriter, starts: Starts) -> None:
    times = starts()
    ends = times + pd.Timedelta(minutes=30)
    frame = pd.DataFrame({"Year": ends.year, "DoY": ends.day_of_year, "Hour": ends.hour + ends.minute / 60,
                          "NEE_f": -2.0, "NEE_fqc": 0, "GPP_f": 4.0, "Reco": 2.0, "Tair_f": 20.0, "VPD_f": 10.0})
    table = read_flux(write_table("ZZ-Rpn_output.txt", frame, sep="\t"))
    assert table.attrs["gpp_columns"] == {"GPP_NT": "GPP_f"}
    assert table.attrs["units_in"]["GPP_NT"] == "GPP_f: umol m-2 s-1 (REDDYPROC convention)"
    assert table.attrs["units_in"]["VPD"] == "VPD_f: hPa (REDDYPROC convention)"


def test_reddyproc_daily_table_needs_stated_units(write_table: TableWriter) -> None:
    frame = pd.DataFrame({"DateTime": ["2020-06-01", "2020-06-02"], "GPP_f": [5.0, 6.0], "GPP_DT": [6.0, 7.0], "Tair_f": [10.0, 11.0]})
    path = write_table("ZZ-Rpd_daily.csv", frame)
    with pytest.raises(FluxDataError, match=r"no unit is known for GPP_f \(carbon flux, daily values\): the file states none and "
                                            r"REDDYPROC documents none; pass units=\{'GPP_f': '<unit>'\}"):
        read_flux(path)
    table = read_flux(path, units={"GPP_f": "gC m-2 d-1", "GPP_DT": "umol m-2 s-1"}, qc_missing="pass")
    np.testing.assert_allclose(table["GPP_NT"], [5.0, 6.0])
    np.testing.assert_allclose(table["GPP_DT"], np.array([6.0, 7.0]) * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(table["TA"], [10.0, 11.0])  # temperature means are degC at any resolution
    assert table.attrs["units_in"]["GPP_NT"] == "GPP_f: gC m-2 d-1 (units=)"


def test_ameriflux_site_comment_and_pi_gpp(write_table: TableWriter, starts: Starts) -> None:
    times = starts(n_days=1)
    frame = pd.DataFrame({"TIMESTAMP_START": times.strftime("%Y%m%d%H%M"),
                          "TIMESTAMP_END": (times + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"),
                          "FC_1_1_1": -3.0, "GPP_PI_F_1_1_1": 7.0, "GPP_PI_F_2_1_1": 99.0, "TA_PI_F_1_1_1": 20.0})
    table = read_flux(write_table("tower_base.csv", frame, comments=["# Site: US-Zzz", "# Version: 3-5"]))
    assert table.attrs["site_id"] == "US-Zzz" and table.attrs["family"] == "AMERIFLUX_BASE"
    np.testing.assert_allclose(table["GPP"], 7.0 * UMOL_S_TO_GC_DAY)
    assert table.attrs["gpp_rule"].startswith("GPP = the PI's GPP (GPP_PI_F_1_1_1)")
    assert read_flux(write_table("tower_base.csv", frame, comments=["# Site: US-Zzz"]), gpp_variant="PI_F_2_1_1")["GPP"].iloc[0] > 90


def test_european_fluxes_database_export(write_table: TableWriter, starts: Starts) -> None:
    times = starts()
    ends = (times + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M")
    frame = pd.DataFrame({"TIMESTAMP_END": ends, "NEE": -3.0, "GPP": 6.0, "TA": 288.15, "SW_IN": 0.0864, "VPD": 0.8, "P": 0.2})
    units = ["YYYYMMDDHHMM", "umolCO2 m-2 s-1", "umolCO2 m-2 s-1", "K", "MJ m-2 d-1", "kPa", "mm"]
    table = read_flux(write_table("EFDC_L2_Flx_ZZEfd_2020_v01_30m.txt", frame, units=units), site_id="ZZ-Efd")
    assert table.attrs["family"] == "EFDC"
    np.testing.assert_allclose(table["GPP"], 6.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(table["TA"], 15.0)
    np.testing.assert_allclose(table["VPD"], 8.0)
    np.testing.assert_allclose(table["SW_IN"], 1.0)
    np.testing.assert_allclose(table["P"], 48 * 0.2)
    assert table.attrs["units_converted"]["VPD"] == "VPD: kPa x10 (unit from the units row)"
    assert table.attrs["units_converted"]["TA"] == "TA: K x1 - 273.15 (unit from the units row)"
    assert table.attrs["units_converted"]["P"] == "P: daily sum of mm per record = mm d-1 (unit from the units row)"


NEE_ONLY = {
    "FLX_ZZ-Nee_FLUXNET2015_FULLSET_DD_2020-2020_x.csv": ("TIMESTAMP,NEE_VUT_REF,NEE_VUT_REF_QC,TA_F\n20200601,-2,1,10\n", "NEE_VUT_REF"),
    "ZZ-Nee_REddyProc_input.txt": ("Year\tDoY\tHour\tNEE\tRg\tTair\tVPD\tUstar\n-\t-\t-\tumolm-2s-1\tWm-2\tdegC\thPa\tms-1\n"
                                   "2020\t1\t0.5\t-1.2\t0\t3.1\t1.0\t0.3\n", "NEE"),
    "EFDC_ZZ-Nee_L2.csv": ("TIMESTAMP_END,NEE,TA,USTAR\nYYYYMMDDHHMM,umol m-2 s-1,degC,m s-1\n202006010030,-2,10,0.3\n", "NEE"),
}


@pytest.mark.parametrize("name", sorted(NEE_ONLY))
def test_nee_without_gpp_says_how_to_partition(tmp_path: Path, name: str) -> None:
    text, nee = NEE_ONLY[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(FluxDataError, match=rf"{name} has NEE \({nee}\) but no GPP column .* the flux is not partitioned; partition NEE "
                                            r"into GPP first - with ONEFlux .* sEddyProc\$sMRFluxPartition\(\) \(night-time.*"
                                            r"sGLFluxPartition\(\) \(day-time") as error:
        read_flux(path)
    assert "\n" not in str(error.value)


def test_unknown_layout_lists_columns_and_families(write_table: TableWriter) -> None:
    path = write_table("ZZ-Unk_gpp.csv", pd.DataFrame({"sitename": ["ZZ-Unk"], "date": ["2020-06-01"], "gpp": [3.0]}))
    with pytest.raises(FluxDataError) as error:
        read_flux(path)
    message = str(error.value)
    assert "unknown layout, no flux-file family matches its columns (sitename, date, gpp)" in message
    for family in FAMILIES.values():
        assert f"{family.name} ({family.description})" in message


def test_family_is_detected_from_columns_not_the_name(write_table: TableWriter, starts: Starts,
                                                     oneflux_frame: Callable[..., pd.DataFrame]) -> None:
    # an ONEFlux table with a REddyProc-looking name, and a REddyProc table with a FLUXNET-looking name
    fmt = detect_format(write_table("reddyproc_export.csv", oneflux_frame(starts())))
    assert fmt.family == "FLUXNET" and fmt.resolution == "HH"
    times = starts()
    reddy = pd.DataFrame({"TIMESTAMP_END": (times + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"), "GPP_uStar_f": 5.0,
                          "NEE_uStar_fqc": 0, "Tair_f": 10.0, "Rg_f": 100.0})
    assert detect_format(write_table("FLX_ZZ-Fam_FLUXNET2015_FULLSET_HH_2020-2020_x.csv", reddy)).family == "REDDYPROC"


def test_family_delimiters(write_table: TableWriter, starts: Starts, oneflux_frame: Callable[..., pd.DataFrame]) -> None:
    with pytest.raises(FluxDataError, match=r"the header is separated by tabs, not commas; FLUXNET files are commas-separated"):
        read_flux(write_table(DD_NAME, oneflux_daily(GPP_NT_VUT_REF=[1.0, 2.0]), sep="\t"))
    with pytest.raises(FluxDataError, match=r"the header is separated by semicolons, not tabs or commas; REDDYPROC files"):
        read_flux(write_table("ZZ-Fam_x.txt", pd.DataFrame({"DateTime": ["2020-06-01 00:30"], "GPP_f": [1.0]}), sep=";"))


def test_column_plan_for_the_parse_benchmark(write_table: TableWriter, starts: Starts,
                                             oneflux_frame: Callable[..., pd.DataFrame]) -> None:
    path = write_table("FLX_ZZ-Fam_FLUXNET2015_FULLSET_HH_2020-2020_x.csv", oneflux_frame(starts()))
    assert _column_plan(detect_format(path), path, "mean") == {
        "GPP_NT": "GPP_NT_VUT_REF", "GPP_DT": "GPP_DT_VUT_REF", "QC": "NEE_VUT_REF_QC",
        "TA": "TA_F", "SW_IN": "SW_IN_F", "VPD": "VPD_F", "P": "P_F",
    }
