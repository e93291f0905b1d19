"""read_sites_csv, read_bif and read_site_infos on small tables the tests write."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fluxnet import FluxDataError, read_bif, read_site_infos, read_sites_csv, split_path_list


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project folder with the files a sites.csv may reference."""
    (tmp_path / "flux").mkdir()
    for name in ("a_2019.csv", "a_2020.csv", "b.csv"):
        (tmp_path / "flux" / name).write_text("TIMESTAMP,GPP_NT_VUT_REF\n20200101,1.0\n")
    (tmp_path / "cubes").mkdir()
    (tmp_path / "cubes" / "a_s2.nc").write_bytes(b"")
    return tmp_path


def write_sites(folder: Path, text: str) -> Path:
    path = folder / "sites.csv"
    path.write_text(text)
    return path


def test_reads_and_resolves_paths(project: Path) -> None:
    path = write_sites(
        project,
        "site_id,lat,lon,igbp,synthetic,flux_path,s2_path,note\n"
        "ZZ-Aaa,46.8,9.9,GRA,true,flux/a_2019.csv; flux/a_2020.csv,cubes/a_s2.nc,first\n"
        "ZZ-Bbb,-33.5,151.2,,no,flux/b.csv,,\n",
    )
    sites = read_sites_csv(path)
    assert list(sites["site_id"]) == ["ZZ-Aaa", "ZZ-Bbb"]
    np.testing.assert_allclose(sites["lat"], [46.8, -33.5])
    assert sites["lon"].dtype == float
    assert list(sites["synthetic"]) == [True, False]
    assert sites["igbp"].iloc[0] == "GRA" and np.isnan(sites["igbp"].iloc[1])
    assert split_path_list(sites["flux_path"].iloc[0]) == [
        str(project.resolve() / "flux" / "a_2019.csv"),
        str(project.resolve() / "flux" / "a_2020.csv"),
    ]
    assert sites["s2_path"].iloc[0] == str(project.resolve() / "cubes" / "a_s2.nc")
    assert np.isnan(sites["s2_path"].iloc[1])  # empty cell = not given
    assert split_path_list(sites["s2_path"].iloc[1]) == []
    assert sites["note"].iloc[0] == "first"


def test_missing_required_columns(project: Path) -> None:
    path = write_sites(project, "site,latitude,lon\nZZ-Aaa,46.8,9.9\n")
    with pytest.raises(FluxDataError, match=r"sites\.csv: missing required column\(s\) site_id, lat; found columns: site, latitude, lon"):
        read_sites_csv(path)


def test_duplicated_site(project: Path) -> None:
    path = write_sites(project, "site_id,lat,lon\nZZ-Aaa,46.8,9.9\nZZ-Aaa,46.9,9.8\n")
    with pytest.raises(FluxDataError, match=r"sites\.csv: duplicated site_id 'ZZ-Aaa'"):
        read_sites_csv(path)


def test_lat_out_of_range_hints_swapped(project: Path) -> None:
    path = write_sites(project, "site_id,lat,lon\nZZ-Aaa,46.8,9.9\nZZ-Bbb,120.5,35.1\n")
    with pytest.raises(FluxDataError, match=r"lat of site 'ZZ-Bbb' is 120\.5, outside \[-90, 90\] \(lat/lon swapped\?"):
        read_sites_csv(path)


def test_lon_out_of_range_without_swap_hint(project: Path) -> None:
    path = write_sites(project, "site_id,lat,lon\nZZ-Aaa,46.8,200.0\n")
    with pytest.raises(FluxDataError, match=r"lon of site 'ZZ-Aaa' is 200\.0, outside \[-180, 180\]$"):
        read_sites_csv(path)


def test_non_numeric_lat(project: Path) -> None:
    path = write_sites(project, "site_id,lat,lon\nZZ-Aaa,46°48'N,9.9\n")
    with pytest.raises(FluxDataError, match=r"lat of site 'ZZ-Aaa' is \"46°48'N\", not a number"):
        read_sites_csv(path)


def test_absolute_path_refused(project: Path) -> None:
    absolute = project.resolve() / "flux" / "b.csv"
    path = write_sites(project, f"site_id,lat,lon,flux_path\nZZ-Aaa,46.8,9.9,{absolute}\n")
    with pytest.raises(FluxDataError, match=r"flux_path of site 'ZZ-Aaa' is the absolute path .*allow_absolute_paths=True"):
        read_sites_csv(path)
    assert read_sites_csv(path, allow_absolute_paths=True)["flux_path"].iloc[0] == str(absolute)


def test_dotdot_escape_refused(project: Path) -> None:
    sub = project / "config"
    sub.mkdir()
    path = write_sites(sub, "site_id,lat,lon,flux_path\nZZ-Aaa,46.8,9.9,../flux/b.csv\n")
    with pytest.raises(FluxDataError, match=r"flux_path of site 'ZZ-Aaa' is '\.\./flux/b\.csv', which leaves the CSV's folder"):
        read_sites_csv(path)
    allowed = read_sites_csv(path, allow_absolute_paths=True)
    assert allowed["flux_path"].iloc[0] == str(project.resolve() / "flux" / "b.csv")


def test_missing_file_names_site_and_column(project: Path) -> None:
    path = write_sites(project, "site_id,lat,lon,features_path\nZZ-Aaa,46.8,9.9,cubes/missing.zarr\n")
    with pytest.raises(FluxDataError, match=r"features_path of site 'ZZ-Aaa' names 'cubes/missing\.zarr', but .* does not exist"):
        read_sites_csv(path)


def test_empty_file(project: Path) -> None:
    path = write_sites(project, "")
    with pytest.raises(FluxDataError, match=r"sites file .*sites\.csv is empty"):
        read_sites_csv(path)


def test_header_only(project: Path) -> None:
    path = write_sites(project, "site_id,lat,lon\n")
    with pytest.raises(FluxDataError, match=r"sites\.csv: has a header but no site rows"):
        read_sites_csv(path)


def test_bad_synthetic_flag(project: Path) -> None:
    path = write_sites(project, "site_id,lat,lon,synthetic\nZZ-Aaa,46.8,9.9,maybe\n")
    with pytest.raises(FluxDataError, match=r"synthetic of site 'ZZ-Aaa' is 'maybe'"):
        read_sites_csv(path)


def test_semicolon_separated_sites_file(project: Path) -> None:
    path = write_sites(project, "site_id;lat;lon\nZZ-Aaa;46.8;9.9\n")
    with pytest.raises(FluxDataError, match=r"sites\.csv: the header .* is not comma-separated"):
        read_sites_csv(path)


def test_read_bif_pivots_location(tmp_path: Path) -> None:
    path = tmp_path / "bif.csv"
    path.write_text(
        "SITE_ID,GROUP_ID,VARIABLE_GROUP,VARIABLE,DATAVALUE\n"
        "ZZ-Bbb,1,GRP_LOCATION,LOCATION_LAT,-33.5\n"
        "ZZ-Bbb,1,GRP_LOCATION,LOCATION_LONG,151.2\n"
        "ZZ-Bbb,2,GRP_IGBP,IGBP,EBF\n"
        "ZZ-Bbb,3,GRP_UTC_OFFSET,UTC_OFFSET,10\n"
        "ZZ-Aaa,4,GRP_LOCATION,LOCATION_LAT,46.8\n"
        "ZZ-Aaa,4,GRP_LOCATION,LOCATION_LONG,9.9\n"
        "ZZ-Aaa,4,GRP_LOCATION,LOCATION_ELEV,1500\n"
        "ZZ-Aaa,5,GRP_IGBP,IGBP,GRA\n"
    )
    sites = read_bif(path)
    assert list(sites.columns) == ["site_id", "lat", "lon", "igbp", "utc_offset"]
    assert list(sites["site_id"]) == ["ZZ-Aaa", "ZZ-Bbb"]
    np.testing.assert_allclose(sites["lat"], [46.8, -33.5])
    assert list(sites["igbp"]) == ["GRA", "EBF"]
    assert np.isnan(sites["utc_offset"].iloc[0]) and sites["utc_offset"].iloc[1] == 10


def test_read_bif_refuses_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "bif.csv"
    path.write_text("site,lat\nA,1\n")
    with pytest.raises(FluxDataError, match=r"bif\.csv: not a BIF table, missing column\(s\) SITE_ID"):
        read_bif(path)


@pytest.mark.realdata
def test_read_site_infos_real_file(shared_data: Path) -> None:
    sites = read_site_infos(shared_data / "sites" / "fluxnet_site_infos.txt")
    assert len(sites) == 217
    assert list(sites.columns[:4]) == ["site_id", "lat", "lon", "igbp"]
    first = sites.iloc[0]
    assert first["site_id"] == "CN-Gebi"  # trailing '.' of the file removed
    assert (first["lat"], first["lon"], first["igbp"]) == (42.001, 101.137, "BSV")
    us_ton = sites.set_index("site_id").loc["US-Ton"]
    assert (us_ton["lat"], us_ton["lon"], us_ton["canopy_height_m"]) == (38.432, -120.966, 9.41)
    assert sites["site_id"].is_unique
    assert sites["lat"].between(-90, 90).all() and sites["lon"].between(-180, 180).all()
