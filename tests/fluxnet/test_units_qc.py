"""Units from metadata (never from values), QC rules per format, qc_missing, and the release column."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fluxnet import FluxDataError, FluxQCWarning, qc_pass, read_flux
from fluxnet.aggregate import UMOL_S_TO_GC_DAY
from fluxnet.layout import split_name_unit
from fluxnet.units import CARBON_FLUX, TEMPERATURE, VAPOUR_PRESSURE_DEFICIT, convert_to_tidy, normalise_unit

Starts = Callable[..., pd.DatetimeIndex]
TableWriter = Callable[..., Path]
DD_NAME = "FLX_ZZ-Uqc_FLUXNET2015_SUBSET_DD_2020-2020_synthetic.csv"


@pytest.mark.parametrize(
    ("quantity", "unit", "daily", "value", "tidy"),
    [
        (CARBON_FLUX, "µmol m⁻² s⁻¹", True, 10.0, 10.377504),
        (CARBON_FLUX, "umol/m2/s", False, 10.0, 10.0),
        (CARBON_FLUX, "gC m-2 d-1", True, 3.0, 3.0),
        (CARBON_FLUX, "mg CO2 m-2 s-1", False, 0.440095, 10.0),
        (TEMPERATURE, "[K]", False, 273.15, 0.0),
        (TEMPERATURE, "°C", True, 5.0, 5.0),
        (VAPOUR_PRESSURE_DEFICIT, "Pa", True, 1000.0, 10.0),
        (VAPOUR_PRESSURE_DEFICIT, "kPa", True, 1.0, 10.0),
    ],
)
def test_unit_spellings(quantity: object, unit: str, daily: bool, value: float, tidy: float) -> None:
    conversion = convert_to_tidy(quantity, unit, daily=daily)  # type: ignore[arg-type]
    assert conversion is not None
    assert conversion.apply(np.array([value]))[0] == pytest.approx(tidy)


def test_unit_normalisation_and_names() -> None:
    assert normalise_unit(" [µmol m⁻² s⁻¹] ") == "umolm-2s-1"
    assert split_name_unit("NEE [umol m-2 s-1]") == ("NEE", "umol m-2 s-1")
    assert split_name_unit("TA (degC)") == ("TA", "degC")
    assert split_name_unit("VPD_f_kPa") == ("VPD_f", "kPa")
    assert split_name_unit("TA_F") == ("TA_F", None)
    assert split_name_unit("SWC_F_MDS_1") == ("SWC_F_MDS_1", None)
    assert convert_to_tidy(VAPOUR_PRESSURE_DEFICIT, "furlong", daily=True) is None


def test_units_in_column_names_parquet_metadata_and_option(write_table: TableWriter, tmp_path: Path) -> None:
    frame = pd.DataFrame({"TIMESTAMP": ["2020-06-01", "2020-06-02"], "GPP_NT_VUT_REF": [2.0, 3.0], "NEE_VUT_REF_QC": [1.0, 1.0],
                          "TA_F (K)": [283.15, 293.15], "VPD_F_kPa": [1.0, 2.0]})
    table = read_flux(write_table(DD_NAME, frame))
    np.testing.assert_allclose(table["TA"], [10.0, 20.0])
    np.testing.assert_allclose(table["VPD"], [10.0, 20.0])
    assert table.attrs["units_in"]["TA"] == "TA_F (K): K (column name)"
    # the caller's units= wins over what the file says
    np.testing.assert_allclose(read_flux(write_table(DD_NAME, frame), units={"VPD_F_kPa": "hPa"})["VPD"], [1.0, 2.0])
    arrow = pa.Table.from_pandas(frame.rename(columns={"TA_F (K)": "TA_F", "VPD_F_kPa": "VPD_F"}), preserve_index=False)
    fields = [f.with_metadata({"units": "Pa"}) if f.name == "VPD_F" else f for f in arrow.schema]
    pq.write_table(arrow.cast(pa.schema(fields)), tmp_path / "ZZ-Uqc_daily.parquet")
    from_parquet = read_flux(tmp_path / "ZZ-Uqc_daily.parquet")
    np.testing.assert_allclose(from_parquet["VPD"], [0.01, 0.02])
    assert from_parquet.attrs["units_converted"]["VPD"] == "VPD_F: Pa x0.01 (unit from the parquet field metadata)"


def test_unknown_unit_is_refused_not_guessed(write_table: TableWriter) -> None:
    frame = pd.DataFrame({"TIMESTAMP": [20200601], "GPP_NT_VUT_REF": [2.0], "VPD_F": [3.0]})
    path = write_table(DD_NAME, frame, units=["-", "gC m-2 d-1", "inHg"])
    with pytest.raises(FluxDataError, match=r"unit 'inHg' of VPD_F \(from the units row\) is not a unit of daily VPD values this "
                                            r"reader knows \(hPa, mbar, mb, hectopascal, kPa, Pa\); pass units=\{'VPD_F': '<unit>'\}"):
        read_flux(path)


def test_daily_gpp_in_umol_per_second_is_converted(write_table: TableWriter) -> None:
    frame = pd.DataFrame({"TIMESTAMP": [20200601, 20200602], "GPP_NT_VUT_REF": [10.0, 5.0], "NEE_VUT_REF_QC": [1, 1]})
    table = read_flux(write_table(DD_NAME, frame, units=["YYYYMMDD", "umolCO2 m-2 s-1", "-"]))
    np.testing.assert_allclose(table["GPP"], [10 * UMOL_S_TO_GC_DAY, 5 * UMOL_S_TO_GC_DAY])
    assert table.attrs["units_converted"]["GPP_NT"] == "GPP_NT_VUT_REF: umolCO2 m-2 s-1 x1.0377504 (unit from the units row)"


def test_half_hourly_conversion_is_stated(write_table: TableWriter, starts: Starts, oneflux_frame: Callable[..., pd.DataFrame]) -> None:
    table = read_flux(write_table("FLX_ZZ-Uqc_FLUXNET2015_FULLSET_HH_2020-2020_x.csv", oneflux_frame(starts())))
    assert table.attrs["units_converted"]["GPP_NT"] == (
        "GPP_NT_VUT_REF: daily mean of umol m-2 s-1 x 1.0377504 = gC m-2 d-1 (unit from the FLUXNET convention)"
    )
    assert table.attrs["units_in"]["VPD"] == "VPD_F: hPa (FLUXNET convention)"
    assert "VPD" not in table.attrs["units_converted"]


def test_pre_filtered_daily_file_qc_rule_and_qc_missing(write_table: TableWriter) -> None:
    frame = pd.DataFrame({"TIMESTAMP": ["2020-06-01", "2020-06-02", "2020-06-05"], "NEE_VUT_MEAN_QC": [0.9, -9999, 0.85],
                          "GPP_NT_VUT_REF": [2.0, 3.0, 4.0], "GPP_DT_VUT_REF": [2.5, 3.5, 4.5], "database": ["a", "a", "b"]})
    path = write_table("ZZ-Uqc_ICOS_GPP_DD_2020-2020.csv", frame)
    table = read_flux(path)
    assert table.attrs["qc_rule"] == (
        "GPP_qc = NEE_VUT_MEAN_QC, the file's daily fraction of measured or good-quality gap-filled records "
        "(NEE_VUT_REF_QC is absent, NEE_VUT_MEAN_QC is used); 1 of 3 days have no QC value: GPP_qc is NaN, so qc_pass() fails "
        "them (qc_missing='pass' or 'fail' decides instead); 2 days between the first and last are not in the file(s) "
        "(a pre-filtered file has days missing, not flagged)"
    )
    assert table.attrs["days_absent"] == 2 and table.attrs["qc_missing_days"] == 1
    assert list(qc_pass(table)) == [True, False, True]
    assert list(qc_pass(read_flux(path, qc_missing="pass"))) == [True, True, True]
    assert list(qc_pass(read_flux(path, qc_missing="fail"))) == [True, False, True]
    np.testing.assert_allclose(read_flux(path, qc_missing="fail")["GPP_qc"], [0.9, 0.0, 0.85])
    assert list(table["release"]) == ["a", "a", "b"]
    assert list(table.columns)[-1] == "release"


def test_daily_file_without_qc_warns_and_states_the_rule(write_table: TableWriter) -> None:
    path = write_table(DD_NAME, pd.DataFrame({"TIMESTAMP": [20200601, 20200602], "GPP_NT_VUT_REF": [2.0, 3.0]}))
    with pytest.warns(FluxQCWarning, match=r"have no QC column: GPP_qc is NaN and qc_pass\(\) drops every day; pass qc_missing="):
        table = read_flux(path)
    assert table["GPP_qc"].isna().all() and not qc_pass(table).any()
    assert table.attrs["qc_source"] == "none"
    assert table.attrs["qc_rule"].startswith("no QC column in the file; 2 of 2 days have no QC value: GPP_qc is NaN")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        passed = read_flux(path, qc_missing="pass")
    assert qc_pass(passed).all()
    assert passed.attrs["qc_rule"].endswith("GPP_qc is 1 (qc_missing='pass')")
    with pytest.raises(ValueError, match="qc_missing must be one of nan, pass, fail"):
        read_flux(path, qc_missing="maybe")


def test_reddyproc_flags_become_a_daily_fraction_and_release_is_aggregated(write_table: TableWriter, starts: Starts) -> None:
    times = starts()
    flags = np.zeros(len(times))
    flags[:12] = 2  # medium gap-fill
    flags[60:66] = np.nan  # no flag: not good
    frame = pd.DataFrame({"TIMESTAMP_END": (times + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M"), "NEE_uStar_f": -3.0,
                          "NEE_uStar_fqc": flags, "GPP_uStar_f": 5.0, "release": ["v1"] * 40 + ["v2"] * 56})
    table = read_flux(write_table("ZZ-Rfq_output.csv", frame))
    np.testing.assert_allclose(table["GPP_qc"], [36 / 48, 42 / 48])
    assert list(table["release"]) == ["v1+v2", "v2"]
    np.testing.assert_allclose(read_flux(write_table("ZZ-Rfq_output.csv", frame), qc_flag_max=2)["GPP_qc"], [1.0, 42 / 48])


def test_daily_reddyproc_fqc_is_not_used_as_a_fraction(write_table: TableWriter) -> None:
    frame = pd.DataFrame({"DateTime": ["2020-06-01", "2020-06-02"], "GPP_f": [5.0, 6.0], "NEE_fqc": [0.0, 1.0]})
    table = read_flux(write_table("ZZ-Rdq_daily.csv", frame), units={"GPP_f": "gC m-2 d-1"}, qc_missing="fail")
    assert table.attrs["qc_rule"].startswith("no usable QC column in the file (REddyProc _fqc flags are per record; in a daily table")
    np.testing.assert_allclose(table["GPP_qc"], [0.0, 0.0])
