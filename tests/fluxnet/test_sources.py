"""Flux files as downloaded: compressed, zipped, Parquet/Feather; non-regular files refused before opening."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxnet import FluxDataError, detect_format, read_flux
from fluxnet.aggregate import UMOL_S_TO_GC_DAY
from fluxnet.sources import open_sources

HH = "FLX_ZZ-Arc_FLUXNET2015_FULLSET_HH_2020-2020_synthetic.csv"
DD = "FLX_ZZ-Arc_FLUXNET2015_FULLSET_DD_2020-2020_synthetic.csv"
DD_TEXT = "TIMESTAMP,GPP_NT_VUT_REF,GPP_DT_VUT_REF,NEE_VUT_REF_QC\n20200601,3.0,5.0,1\n20200602,4.0,6.0,0.5\n"


@pytest.fixture()
def hh_file(tmp_path: Path, starts: Callable[..., pd.DatetimeIndex], oneflux_frame: Callable[..., pd.DataFrame]) -> Path:
    path = tmp_path / HH
    oneflux_frame(starts(), gpp_nt=np.linspace(0, 10, 96)).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("suffix", "compress"), [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)])
def test_compressed_file_reads_like_the_plain_one(hh_file: Path, suffix: str, compress: Callable[[bytes], bytes]) -> None:
    packed = hh_file.with_name(hh_file.name + suffix)
    packed.write_bytes(compress(hh_file.read_bytes()))
    pd.testing.assert_frame_equal(read_flux(packed), read_flux(hh_file))
    assert detect_format(packed).resolution == "HH"
    assert read_flux(packed).attrs["site_id"] == "ZZ-Arc"  # the name hint survives the .gz suffix


def test_zip_with_one_member_and_readme(tmp_path: Path, hh_file: Path) -> None:
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(hh_file, f"FLX_ZZ-Arc/{HH}")
        z.writestr("README.txt", "Data policy: CC-BY-4.0\n")
        z.writestr("__MACOSX/._x.csv", "junk")
    table = read_flux(archive)
    pd.testing.assert_frame_equal(table, read_flux(hh_file))
    assert table.attrs["archive"] == [f"download.zip: read FLX_ZZ-Arc/{HH}; not read: README.txt"]
    assert table.attrs["source_files"] == [f"{archive.resolve()}!FLX_ZZ-Arc/{HH}"]


def test_zip_members_of_one_site_are_concatenated(tmp_path: Path, starts: Callable[..., pd.DatetimeIndex],
                                                  oneflux_frame: Callable[..., pd.DataFrame]) -> None:
    archive = tmp_path / "years.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for year in (2021, 2020):
            name = f"FLX_ZZ-Arc_FLUXNET2015_FULLSET_HH_{year}-{year}_synthetic.csv"
            z.writestr(name, oneflux_frame(starts(f"{year}-07-01", 1)).to_csv(index=False))
    table = read_flux(archive)
    assert list(table["date"]) == [pd.Timestamp("2020-07-01"), pd.Timestamp("2021-07-01")]
    np.testing.assert_allclose(table["GPP_NT"], 5.0 * UMOL_S_TO_GC_DAY)


def test_zip_with_daily_and_half_hourly_reads_the_daily_unless_told(tmp_path: Path, hh_file: Path) -> None:
    archive = tmp_path / "FLX_ZZ-Arc_FLUXNET2015_FULLSET_2020-2020_synthetic.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(hh_file, HH)
        z.writestr(DD, DD_TEXT)
        z.writestr("FLX_ZZ-Arc_FLUXNET2015_FULLSET_MM_2020-2020_synthetic.csv", "TIMESTAMP,GPP_NT_VUT_REF\n202006,4.0\n")
        z.writestr("FLX_ZZ-Arc_FLUXNET2015_ERA5_HH_1989-2020_synthetic.csv", "TIMESTAMP_START,TIMESTAMP_END,TA_ERA\n")
    daily = read_flux(archive)
    np.testing.assert_allclose(daily["GPP"], [4.0, 5.0])
    assert daily.attrs["resolution_in"] == "DD"
    half_hourly = read_flux(archive, resolution="HH")
    pd.testing.assert_frame_equal(half_hourly, read_flux(hh_file))
    assert "not read" in half_hourly.attrs["archive"][0] and DD in half_hourly.attrs["archive"][0]
    assert detect_format(archive).resolution == "DD"


def test_zip_of_several_sites_is_refused_unless_site_id_chooses(tmp_path: Path) -> None:
    archive = tmp_path / "sites.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(DD, DD_TEXT)
        z.writestr(DD.replace("ZZ-Arc", "ZZ-Bbb"), DD_TEXT)
    with pytest.raises(FluxDataError, match=r"sites\.zip holds flux tables of several sites \(ZZ-Arc, ZZ-Bbb\); pass site_id="):
        read_flux(archive)
    assert read_flux(archive, site_id="ZZ-Bbb").attrs["source_files"][0].endswith(DD.replace("ZZ-Arc", "ZZ-Bbb"))


def test_zip_members_covering_the_same_days_are_ambiguous(tmp_path: Path) -> None:
    archive = tmp_path / "versions.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr(DD, DD_TEXT)
        z.writestr(DD.replace("FULLSET", "SUBSET"), DD_TEXT)
    with pytest.raises(FluxDataError, match=r"both hold 2020-06-01 00:00:00; give each period once \(extract the one you want"):
        read_flux(archive)


def test_zip_without_gpp_says_why(tmp_path: Path) -> None:
    archive = tmp_path / "meteo.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ICOSETC_ZZ-Arc_METEO_L2.csv", "TIMESTAMP_START,TIMESTAMP_END,TA_1_1_1\n202001010000,202001010030,3.0\n")
        z.writestr("notes.txt", "nothing here\n")
    expected = r"meteo\.zip is a ZIP archive without a flux table with GPP; its members: ICOSETC_ZZ-Arc_METEO_L2\.csv \("
    with pytest.raises(FluxDataError, match=expected):
        read_flux(archive)
    nee_only = tmp_path / "fluxes.zip"
    with zipfile.ZipFile(nee_only, "w") as z:
        z.writestr("ICOSETC_ZZ-Arc_FLUXES_L2.csv", "TIMESTAMP_START,TIMESTAMP_END,NEE_1_1_1,TA_1_1_1\n202001010000,202001010030,-3,3\n")
    with pytest.raises(FluxDataError, match=r"fluxes\.zip!ICOSETC_ZZ-Arc_FLUXES_L2\.csv has NEE \(NEE_1_1_1\) but no GPP"):
        read_flux(nee_only)


def test_empty_and_damaged_archives(tmp_path: Path) -> None:
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("folder/", "")
    with pytest.raises(FluxDataError, match=r"empty\.zip is a ZIP archive without any data file in it"):
        read_flux(empty)
    damaged = tmp_path / "cut.zip"
    damaged.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(FluxDataError, match=r"cut\.zip is a damaged ZIP archive .*download it again"):
        read_flux(damaged)


def test_parquet_and_feather_tables(tmp_path: Path, starts: Callable[..., pd.DatetimeIndex],
                                    oneflux_frame: Callable[..., pd.DataFrame], hh_file: Path) -> None:
    frame = oneflux_frame(starts(), gpp_nt=np.linspace(0, 10, 96))
    frame.to_parquet(tmp_path / "ZZ-Arc_fluxes.parquet")
    typed = frame.assign(TIMESTAMP_START=starts(), TIMESTAMP_END=starts() + pd.Timedelta(minutes=30),
                         NEE_VUT_REF_QC=frame["NEE_VUT_REF_QC"].astype("int8"))
    typed.to_feather(tmp_path / "ZZ-Arc_fluxes.feather")
    expected = read_flux(hh_file)
    for name in ("ZZ-Arc_fluxes.parquet", "ZZ-Arc_fluxes.feather"):
        pd.testing.assert_frame_equal(read_flux(tmp_path / name), expected)
    zipped = tmp_path / "tables.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(tmp_path / "ZZ-Arc_fluxes.parquet", "ZZ-Arc_fluxes.parquet")
    pd.testing.assert_frame_equal(read_flux(zipped), expected)


def test_name_contradicting_content_is_refused_with_the_remedy(tmp_path: Path, hh_file: Path) -> None:
    plain_named_gz = tmp_path / (HH + ".gz")
    plain_named_gz.write_bytes(hh_file.read_bytes())
    with pytest.raises(FluxDataError, match=r"is plain text but its name ends in \.gz; it was probably decompressed on download; "
                                            r"rename it without \.gz"):
        read_flux(plain_named_gz)
    gzip_named_csv = tmp_path / DD
    gzip_named_csv.write_bytes(gzip.compress(DD_TEXT.encode()))
    with pytest.raises(FluxDataError, match=rf"{DD} is gzip-compressed but its name ends in \.csv; rename it to {DD}\.gz"):
        read_flux(gzip_named_csv)
    parquet_named_csv = tmp_path / "ZZ-Arc_x.csv"
    pd.DataFrame({"a": [1]}).to_parquet(parquet_named_csv)
    with pytest.raises(FluxDataError, match=r"ZZ-Arc_x\.csv is a Parquet file but its name ends in \.csv"):
        read_flux(parquet_named_csv)


def test_fifo_and_folder_are_refused_before_opening(tmp_path: Path) -> None:
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)  # opening it for reading would block without a writer
    with pytest.raises(FluxDataError, match=r"stream\.csv is a FIFO \(named pipe\), not a file; copy the data into a regular file"):
        read_flux(fifo)
    with pytest.raises(FluxDataError, match=r"is a folder, not a file; give the flux file\(s\) inside it"):
        read_flux(tmp_path)
    with pytest.raises(FluxDataError, match="is a character device, not a file"):
        open_sources("/dev/null")


def test_compressed_tar_is_refused(tmp_path: Path) -> None:
    tarred = tmp_path / "flux.tar.gz"
    tarred.write_bytes(gzip.compress(b"FLX_x.csv\x00" + b"\x00" * 500))
    with pytest.raises(FluxDataError, match=r"flux\.tar\.gz is a compressed tar archive; extract its files \(tar -xf\)"):
        read_flux(tarred)


def test_spreadsheets_are_refused_with_the_remedy(tmp_path: Path) -> None:
    workbook = tmp_path / "FLX_ZZ-Arc_FLUXNET2015_SUBSET_DD_2009-2012_1-3.xlsx"
    with zipfile.ZipFile(workbook, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    with pytest.raises(FluxDataError, match=r"\.xlsx is an Excel workbook \(\.xlsx\), not a flux table; export the sheet as CSV"):
        read_flux(workbook)
    legacy = tmp_path / "fluxes.xls"
    legacy.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)
    with pytest.raises(FluxDataError, match=r"fluxes\.xls is an Excel \.xls workbook, not a flux table; export the sheet as CSV"):
        read_flux(legacy)
