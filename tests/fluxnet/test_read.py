"""read_flux on small files the tests write, one per format, and every malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxnet import FluxDataError, qc_pass, read_flux, write_fluxnet_dd
from fluxnet.aggregate import UMOL_S_TO_GC_DAY
from fluxnet.records import site_in_name

HH_NAME = "FLX_ZZ-Tst_FLUXNET2015_FULLSET_HH_2020-2020_synthetic.csv"
DD_NAME = "FLX_ZZ-Tst_FLUXNET2015_SUBSET_DD_2020-2020_synthetic.csv"


def half_hours(start: str, n_days: int, step_minutes: int = 30) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n_days * 1440 // step_minutes, freq=f"{step_minutes}min")


def write_hh(
    path: Path,
    *,
    start: str = "2020-06-01",
    n_days: int = 2,
    step_minutes: int = 30,
    gpp_nt: float | np.ndarray = 10.0,
    gpp_dt: float | np.ndarray = 10.0,
    qc: int | np.ndarray = 0,
    extra: dict[str, float | np.ndarray] | None = None,
    comment_lines: tuple[str, ...] = (),
) -> Path:
    """A small FLUXNET-convention HH/HR file (synthetic values, physically plausible)."""
    times = half_hours(start, n_days, step_minutes)
    columns: dict[str, object] = {
        "TIMESTAMP_START": times.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (times + pd.Timedelta(minutes=step_minutes)).strftime("%Y%m%d%H%M"),
        "TA_F": 15.0,
        "SW_IN_F": 200.0,
        "VPD_F": 8.0,
        "P_F": 0.1,
        "NEE_VUT_REF_QC": qc,
        "GPP_NT_VUT_REF": gpp_nt,
        "GPP_DT_VUT_REF": gpp_dt,
    }
    columns.update(extra or {})
    frame = pd.DataFrame(columns, index=range(len(times)))
    text = "".join(line + "\n" for line in comment_lines) + frame.to_csv(index=False)
    path.write_text(text)
    return path


def write_dd(path: Path, rows: dict[str, list[object]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# --- formats -> expected values ------------------------------------------------


def test_hh_constant_flux_converts_to_gc_per_day(tmp_path: Path) -> None:
    table = read_flux(write_hh(tmp_path / HH_NAME, gpp_nt=10.0, gpp_dt=10.0))
    assert list(table.columns) == [
        "site_id", "date", "GPP", "GPP_NT", "GPP_DT", "GPP_unc", "GPP_qc", "TA", "SW_IN", "VPD", "P",
    ]
    assert len(table) == 2
    # 10 umol m-2 s-1 * 86400 s * 12.011e-6 g/umol, worked by hand
    np.testing.assert_allclose(table["GPP"], 10.377504, rtol=1e-9)
    assert (table["site_id"] == "ZZ-Tst").all()
    assert table["date"].dtype == "datetime64[ns]"
    assert list(table["date"]) == [pd.Timestamp("2020-06-01"), pd.Timestamp("2020-06-02")]
    np.testing.assert_allclose(table["P"], 48 * 0.1)  # daily sum of 0.1 mm per half hour
    np.testing.assert_allclose(table["TA"], 15.0)
    assert table.attrs["resolution_in"] == "HH"
    assert table.attrs["units"]["GPP"] == "gC m-2 d-1"
    assert table.attrs["units"]["P"] == "mm d-1"


def test_hh_methods_uncertainty_and_qc_fraction(tmp_path: Path) -> None:
    n = 96
    qc = np.zeros(n, dtype=int)
    qc[:12] = 2  # 12 medium-quality gap-fills on day 1 -> 36/48 good
    qc[48:50] = 1  # good gap-fill counts as good
    path = write_hh(tmp_path / HH_NAME, gpp_nt=4.0, gpp_dt=8.0, qc=qc)
    mean = read_flux(path)
    np.testing.assert_allclose(mean["GPP"], 6.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(mean["GPP_NT"], 4.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(mean["GPP_DT"], 8.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(mean["GPP_unc"], 2.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(mean["GPP_qc"], [36 / 48, 1.0])
    np.testing.assert_allclose(read_flux(path, gpp_method="NT")["GPP"], 4.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(read_flux(path, gpp_method="DT")["GPP"], 8.0 * UMOL_S_TO_GC_DAY)
    assert list(qc_pass(mean)) == [False, True]
    # a stricter flag threshold: only measured records count
    strict = read_flux(path, qc_flag_max=0)
    np.testing.assert_allclose(strict["GPP_qc"], [36 / 48, 46 / 48])


def test_hh_partial_day_gets_nan_by_coverage(tmp_path: Path) -> None:
    gpp = np.full(96, 5.0)
    gpp[48:60] = np.nan  # 12 of 48 missing on day 2: coverage 0.75
    path = write_hh(tmp_path / HH_NAME, gpp_nt=gpp, gpp_dt=gpp)
    table = read_flux(path)
    assert np.isfinite(table["GPP"].iloc[0]) and np.isnan(table["GPP"].iloc[1])
    relaxed = read_flux(path, min_coverage=0.7)
    np.testing.assert_allclose(relaxed["GPP"], 5.0 * UMOL_S_TO_GC_DAY)


def test_mean_falls_back_to_the_other_partitioning_and_says_so(tmp_path: Path) -> None:
    path = write_dd(
        tmp_path / DD_NAME,
        {
            "TIMESTAMP": [20200601, 20200602, 20200603],
            "GPP_NT_VUT_REF": [2.0, -9999, 4.0],
            "GPP_DT_VUT_REF": [4.0, 3.0, -9999],
            "NEE_VUT_REF_QC": [1.0, 0.5, 0.9],
        },
    )
    table = read_flux(path)
    np.testing.assert_allclose(table["GPP"], [3.0, 3.0, 4.0])
    assert np.isnan(table["GPP_NT"].iloc[1]) and np.isnan(table["GPP_unc"].iloc[1])
    assert table.attrs["gpp_fallback_days"] == {"NT_missing_used_DT": 1, "DT_missing_used_NT": 1}
    np.testing.assert_allclose(table["GPP_qc"], [1.0, 0.5, 0.9])
    assert np.isnan(table["TA"]).all()  # drivers absent -> NaN, never -9999


def test_hr_file_detected_from_step(tmp_path: Path) -> None:
    name = "FLX_ZZ-Tst_FLUXNET2015_FULLSET_HR_2020-2020_synthetic.csv"
    table = read_flux(write_hh(tmp_path / name, step_minutes=60, gpp_nt=10.0, gpp_dt=10.0))
    assert table.attrs["resolution_in"] == "HR"
    np.testing.assert_allclose(table["GPP"], 10.377504)
    np.testing.assert_allclose(table["P"], 24 * 0.1)


def test_icos_l2_file(tmp_path: Path) -> None:
    path = write_hh(tmp_path / "ICOSETC_ZZ-Ico_FLUXNET_HH_L2.csv", gpp_nt=3.0, gpp_dt=5.0,
                    extra={"PPFD_IN": 400.0})
    table = read_flux(path)
    assert table["site_id"].iloc[0] == "ZZ-Ico"
    np.testing.assert_allclose(table["GPP"], 4.0 * UMOL_S_TO_GC_DAY)
    np.testing.assert_allclose(table["PPFD_IN"], 400.0)
    assert table.attrs["units"]["PPFD_IN"] == "umol m-2 s-1"


def write_ameriflux(path: Path, *, gpp_column: str | None = "GPP_PI_F_1_1_1") -> Path:
    times = half_hours("2021-07-01", 1)
    fc = np.full(len(times), -3.0)
    fc[:6] = -9999  # six records not measured -> GPP_qc = 42/48
    columns: dict[str, object] = {
        "TIMESTAMP_START": times.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (times + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"),
        "FC_1_1_1": fc,
        "TA_1_1_1": 20.0,
        "TA_1_2_1": 99.0,  # a second sensor that must not be chosen
        "SW_IN_1_1_1": 300.0,
        "VPD_PI_F_1_1_1": 12.0,
        "P_1_1_1": 0.0,
    }
    if gpp_column:
        columns[gpp_column] = 7.0
    frame = pd.DataFrame(columns, index=range(len(times)))
    path.write_text("# Site: ZZ-Amf\n# Version: 1-5\n" + frame.to_csv(index=False))
    return path


def test_ameriflux_base_uses_pi_gpp_and_positions(tmp_path: Path) -> None:
    table = read_flux(write_ameriflux(tmp_path / "AMF_ZZ-Amf_BASE_HH_1-5.csv"))
    assert table["site_id"].iloc[0] == "ZZ-Amf"
    np.testing.assert_allclose(table["GPP"], 7.0 * UMOL_S_TO_GC_DAY)
    assert np.isnan(table["GPP_NT"]).all() and np.isnan(table["GPP_unc"]).all()
    np.testing.assert_allclose(table["TA"], 20.0)
    np.testing.assert_allclose(table["VPD"], 12.0)
    np.testing.assert_allclose(table["SW_IN"], 300.0)
    np.testing.assert_allclose(table["P"], 0.0)
    assert table.attrs["qc_source"] == "fraction of records with measured FC_1_1_1"
    np.testing.assert_allclose(table["GPP_qc"], 42 / 48)
    assert table.attrs["gpp_method"] == "PI"


def test_ameriflux_without_gpp_says_so(tmp_path: Path) -> None:
    path = write_ameriflux(tmp_path / "AMF_ZZ-Amf_BASE_HH_1-5.csv", gpp_column=None)
    with pytest.raises(FluxDataError, match=r"AMF_ZZ-Amf_BASE_HH_1-5\.csv.*no GPP column.*GPP_PI_F"):
        read_flux(path)


def test_ameriflux_refuses_explicit_nt(tmp_path: Path) -> None:
    path = write_ameriflux(tmp_path / "AMF_ZZ-Amf_BASE_HH_1-5.csv")
    with pytest.raises(FluxDataError, match="only the PI's GPP"):
        read_flux(path, gpp_method="NT")


def test_several_files_are_joined_in_time_order(tmp_path: Path) -> None:
    second = write_hh(tmp_path / "FLX_ZZ-Tst_FLUXNET2015_FULLSET_HH_2021-2021_synthetic.csv",
                      start="2021-01-01", n_days=1)
    first = write_hh(tmp_path / HH_NAME, start="2020-12-31", n_days=1)
    table = read_flux([second, first])
    assert list(table["date"]) == [pd.Timestamp("2020-12-31"), pd.Timestamp("2021-01-01")]
    assert len(table.attrs["source_files"]) == 2


def test_unnamed_file_needs_site_id(tmp_path: Path) -> None:
    path = write_hh(tmp_path / "tower.csv")
    with pytest.raises(FluxDataError, match=r"tower\.csv.*pass site_id"):
        read_flux(path)
    assert read_flux(path, site_id="ZZ-Own")["site_id"].iloc[0] == "ZZ-Own"
    with pytest.raises(FluxDataError, match="ZZ-Tst"):
        read_flux(write_hh(tmp_path / HH_NAME), site_id="ZZ-Other")


def test_write_fluxnet_dd_round_trips(tmp_path: Path) -> None:
    table = read_flux(write_hh(tmp_path / HH_NAME, gpp_nt=np.linspace(0, 12, 96), gpp_dt=3.3,
                               extra={"PPFD_IN": 500.0}))
    table.loc[1, "TA"] = np.nan
    out = write_fluxnet_dd(table, tmp_path / DD_NAME)
    assert out == tmp_path / DD_NAME
    assert "-9999" in out.read_text()
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away
    again = read_flux(out)
    pd.testing.assert_frame_equal(again, table)
    assert again.attrs["resolution_in"] == "DD"


def test_write_fluxnet_dd_refuses_two_sites(tmp_path: Path) -> None:
    table = pd.DataFrame({"site_id": ["A", "B"], "date": pd.to_datetime(["2020-01-01"] * 2), "GPP": [1.0, 2.0]})
    with pytest.raises(FluxDataError, match="2 sites"):
        write_fluxnet_dd(table, tmp_path / DD_NAME)


# --- malformed inputs ------------------------------------------------------------


def test_missing_gpp_column(tmp_path: Path) -> None:
    path = write_dd(tmp_path / DD_NAME, {"TIMESTAMP": [20200601], "TA_F": [12.0]})
    with pytest.raises(FluxDataError, match=rf"{DD_NAME}.*no GPP column.*GPP_NT_VUT_REF"):
        read_flux(path)


def test_all_gpp_missing(tmp_path: Path) -> None:
    path = write_dd(tmp_path / DD_NAME, {"TIMESTAMP": [20200601, 20200602],
                                         "GPP_NT_VUT_REF": [-9999, -9999], "GPP_DT_VUT_REF": [-9999.0, -9999.0]})
    with pytest.raises(FluxDataError, match=rf"{DD_NAME}.*GPP_NT_VUT_REF, GPP_DT_VUT_REF is missing"):
        read_flux(path)


def test_duplicated_timestamps(tmp_path: Path) -> None:
    path = write_dd(tmp_path / DD_NAME, {"TIMESTAMP": [20200601, 20200602, 20200602],
                                         "GPP_NT_VUT_REF": [1.0, 2.0, 3.0]})
    with pytest.raises(FluxDataError, match=rf"{DD_NAME}: duplicated timestamp TIMESTAMP=20200602 on line 4"):
        read_flux(path)


def test_unsorted_timestamps(tmp_path: Path) -> None:
    path = write_hh(tmp_path / HH_NAME, n_days=1)
    lines = path.read_text().splitlines()
    lines[5], lines[6] = lines[6], lines[5]
    path.write_text("\n".join(lines) + "\n")
    expected = rf"{HH_NAME}: timestamps are not sorted: TIMESTAMP_START=202006010200 on line 7 comes after 202006010230"
    with pytest.raises(FluxDataError, match=expected):
        read_flux(path)


def test_hh_and_dd_mixed(tmp_path: Path) -> None:
    hh = write_hh(tmp_path / HH_NAME)
    dd = write_dd(tmp_path / DD_NAME, {"TIMESTAMP": [20200701], "GPP_NT_VUT_REF": [1.0]})
    with pytest.raises(FluxDataError, match=rf"cannot mix resolutions.*{HH_NAME} \(HH\).*{DD_NAME} \(DD\)"):
        read_flux([hh, dd])


def test_overlapping_files(tmp_path: Path) -> None:
    first = write_hh(tmp_path / HH_NAME)
    second = write_hh(tmp_path / "FLX_ZZ-Tst_FLUXNET2015_FULLSET_HH_2020-2021_synthetic.csv", start="2020-06-02")
    with pytest.raises(FluxDataError, match="both hold 2020-06-02"):
        read_flux([first, second])


def test_non_fluxnet_csv(tmp_path: Path) -> None:
    path = tmp_path / "weather.csv"
    path.write_text("date,temperature\n2020-06-01,12.5\n")
    expected = r"weather\.csv: unknown layout, no flux-file family matches its columns \(date, temperature\); accepted families: FLUXNET"
    with pytest.raises(FluxDataError, match=expected):
        read_flux(path)


def test_wrong_delimiter(tmp_path: Path) -> None:
    path = tmp_path / DD_NAME
    path.write_text("TIMESTAMP;GPP_NT_VUT_REF\n20200601;1.0\n")
    with pytest.raises(FluxDataError, match=rf"{DD_NAME}: the header is separated by semicolons"):
        read_flux(path)


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / DD_NAME
    path.write_bytes("TIMESTAMP,GPP_NT_VUT_REF,TA_F_°C\n20200601,1.0,3.0\n".encode("latin-1"))
    with pytest.raises(FluxDataError, match=rf"{DD_NAME} is not UTF-8 text: byte 0xb0 on line 1"):
        read_flux(path)


def test_non_utf8_bytes_in_a_data_value(tmp_path: Path) -> None:
    path = tmp_path / DD_NAME
    path.write_bytes(b"TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\n20200602,2\xb0\n")
    with pytest.raises(FluxDataError, match=rf"{DD_NAME} is not UTF-8 text: byte 0xb0 on line 3"):
        read_flux(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / DD_NAME
    path.write_text("")
    with pytest.raises(FluxDataError, match=rf"{DD_NAME} is empty"):
        read_flux(path)


def test_header_without_rows(tmp_path: Path) -> None:
    path = tmp_path / DD_NAME
    path.write_text("TIMESTAMP,GPP_NT_VUT_REF\n")
    with pytest.raises(FluxDataError, match=rf"{DD_NAME} has a header but no data rows"):
        read_flux(path)


def test_text_in_a_value_column(tmp_path: Path) -> None:
    path = write_dd(tmp_path / DD_NAME, {"TIMESTAMP": [20200601, 20200602], "GPP_NT_VUT_REF": ["1.0", "abc"]})
    with pytest.raises(FluxDataError, match=rf"{DD_NAME}: could not parse: In CSV column 'GPP_NT_VUT_REF'.*invalid value 'abc'"):
        read_flux(path)


def test_invalid_date(tmp_path: Path) -> None:
    path = write_dd(tmp_path / DD_NAME, {"TIMESTAMP": [20200601, 20200231], "GPP_NT_VUT_REF": [1.0, 2.0]})
    with pytest.raises(FluxDataError, match=r"TIMESTAMP 20200231 on line 3 is not a valid YYYYMMDD"):
        read_flux(path)


def test_dd_qc_must_be_a_fraction(tmp_path: Path) -> None:
    path = write_dd(tmp_path / DD_NAME, {"TIMESTAMP": [20200601], "GPP_NT_VUT_REF": [1.0], "NEE_VUT_REF_QC": [3]})
    with pytest.raises(FluxDataError, match=r"NEE_VUT_REF_QC is 3.0 on 2020-06-01"):
        read_flux(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FluxDataError, match=r"nowhere\.csv does not exist"):
        read_flux(tmp_path / "nowhere.csv")


def test_bad_gpp_method(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="gpp_method"):
        read_flux(write_hh(tmp_path / HH_NAME), gpp_method="median")


@pytest.mark.parametrize(
    ("name", "site"),
    [
        ("FLX_ZZ-T0_FLUXNET2015_SUBSET_DD_2019-2019_synthetic.csv", "ZZ-T0"),  # product prefixes take any site token
        ("ICOSETC_BE-Bra_FLUXNET_HH_L2.csv", "BE-Bra"),
        ("AMF_US-Ha1_BASE_HH_1-5.csv", "US-Ha1"),
        ("EUF_SN-Nkr_FLUXNET_FLUXMET_HH_2018-2024_v1.3_r1.csv", "SN-Nkr"),
        ("AT-Neu_ICOS_GPP_DD_2017-2020.csv", "AT-Neu"),  # a leading FLUXNET-style id
        ("tower.csv", None),
        ("gpp_CH-Cha.csv", None),  # only a leading id counts
    ],
)
def test_site_from_file_names(name: str, site: str | None) -> None:
    assert site_in_name(name) == site
