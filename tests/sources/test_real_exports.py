"""Real Sentinel exports open as they are: WorldCereal patches (10 m + 20 m S2, 20 m S1), openEO, Spain, points.

Reads ../shared/data (skips with a reason when absent). Nothing here is synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from ecoembed.errors import CubeError
from ecoembed.sensors.indices import ndvi, ndvi_of
from ecoembed.sources.local import open_cube
from ecoembed.sources.points import read_point_table

BELGIAN = ("00002806639B424A", "0000280849BAC91C")
PATCHES = (*BELGIAN, "000028085BF08E7E", "2021_TZA_COPERNICUS-GEOGLAM_POLY_1101950")


@pytest.mark.parametrize("patch", PATCHES)
def test_worldcereal_patch_opens_on_one_10m_grid(shared_data: Path, patch: str) -> None:
    folder = shared_data / "worldcereal" / patch
    s2_files = sorted(folder.glob("S2_L2A_*.nc"))
    s2 = open_cube(s2_files, "s2")
    s1 = open_cube(sorted(folder.glob("S1_*.nc")), "s1", like=s2)
    assert s2.sizes["y"] == s2.sizes["x"] == 64 and s1.sizes["y"] == s1.sizes["x"] == 64
    np.testing.assert_allclose(np.diff(s2["x"].values), 10.0)
    assert np.allclose(s1["x"].values, s2["x"].values) and np.allclose(s1["y"].values, s2["y"].values)
    bands = s2.attrs["bands"].split(",")
    if len(s2_files) == 2:  # 10 m + 20 m files: all ten bands, the SCL from the 20 m file
        assert bands == ["B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
    else:  # a 20 m file alone: its six bands, split into 10 m pixels
        assert bands == ["B05", "B06", "B07", "B8A", "B11", "B12"]
    assert "SCL" in s2 and "SCL classes" in s2.attrs["validity"]
    assert "scale_factor" in s2.attrs["values"]  # reflectance from the files' CF packing, not from the values
    assert 0.2 < float(s2["valid"].mean()) < 0.9
    assert list(s1.data_vars)[:2] == ["VH", "VV"] or {"VV", "VH"} <= set(s1.data_vars)
    vv = s1["VV"].values[s1["valid"].values]
    assert -30 < np.nanmedian(vv) < 0  # dB
    assert set(np.asarray(s1["orbit"].values).tolist()) == {"ascending"} and "file name" in s1.attrs["values"]
    # a 20 m S2 band lands on the 10 m grid by bilinear interpolation: its mean is kept
    raw20 = xr.open_dataset(next(f for f in s2_files if "20m" in f.name))
    assert float(s2["B11"].mean()) == pytest.approx(float(raw20["B11"].where(raw20["B11"] > 0).mean()), rel=0.02)


def test_spain_cube_b04_b08_only_and_its_ndvi(shared_data: Path) -> None:
    cube = open_cube(shared_data / "sentinel2" / "raw_s2_ndvi_field.nc")
    assert cube.attrs["bands"] == "B04,B08" and "openEO" in cube.attrs["values"]
    raw = xr.open_dataset(shared_data / "sentinel2" / "raw_s2_ndvi_field.nc")
    ok = cube["valid"].values & np.isfinite(raw["NDVI"].values)
    np.testing.assert_allclose(ndvi(cube).values[ok], raw["NDVI"].values[ok], atol=1e-5)


def test_openeo_export_and_its_gfmap_s1(shared_data: Path) -> None:
    path = shared_data / "more_s2" / "worldcereal_points" / "belgium_patch_101x101_2020-08_2022-03_monthly.nc"
    s2 = open_cube(path, "s2")
    assert s2.sizes["x"] == 101 and "B8A" not in s2 and "harmonised" in s2.attrs["values"]
    assert 0.01 < float(np.nanmedian(s2["B04"].values)) < 0.2
    s1 = open_cube(path, "s1", orbit="ascending")
    assert -25 < float(np.nanmedian(s1["VV"].values)) < -3 and "GFMAP" in s1.attrs["values"]
    with pytest.raises(CubeError, match="orbit"):
        open_cube(path, "s1")  # monthly composites do not say their orbit; the message names the option


def test_lat_lon_minicube_is_refused_with_the_remedy(shared_data: Path) -> None:
    path = next((shared_data / "more_s2" / "greenearthnet").glob("*.nc"))
    with pytest.raises(CubeError, match="lat/lon grid.*reproject"):
        open_cube(path)


def test_reflectance_cube_with_an_outlier_keeps_its_ndvi(shared_data: Path, tmp_path: Path) -> None:
    """A float reflectance cube with one value > 1 stays reflectance: the DN rule never looks at the data."""
    cube = open_cube(sorted((shared_data / "worldcereal" / BELGIAN[0]).glob("S2_L2A_10m*.nc")), "s2").load()
    before = ndvi_of(cube["B04"].values, cube["B08"].values)  # values only: validity differs without blue (spectral test)
    export = xr.Dataset({b: (("time", "y", "x"), cube[b].values) for b in ("B04", "B08")},
                        coords={"time": cube["time"].values, "y": cube["y"].values, "x": cube["x"].values},
                        attrs={"crs": cube.attrs["crs"]})
    export["B08"].values[0, 0, 0] = 1.7  # one outlier above 1 (a saturated or specular pixel)
    export.to_netcdf(tmp_path / "refl.nc")
    again = open_cube(tmp_path / "refl.nc", "s2")
    after = ndvi_of(again["B04"].values, again["B08"].values)
    same = np.ones(before.shape, bool)
    same[0, 0, 0] = False
    finite = np.isfinite(before) & same
    np.testing.assert_allclose(after[finite], before[finite], atol=1e-6)
    assert "float storage" in again.attrs["values"]


def test_point_tables_as_they_are_exported(shared_data: Path) -> None:
    bands = next(iter(read_point_table(next((shared_data / "icos_towers" / "s2_bands").glob("*.csv")), lat=50.9, lon=13.5).values()))
    assert bands.sizes == {"time": bands.sizes["time"], "y": 1, "x": 1} and bands.attrs["crs"] == "EPSG:32633"
    assert len(bands.attrs["bands"].split(",")) == 10 and "NDVI" in bands.attrs["indices"]
    wc = read_point_table(shared_data / "more_s2" / "worldcereal_points" / "wc_private_dummy_flanders2021.parquet",
                          sensor="s2", harmonized=True)
    cube = next(iter(wc.values()))
    assert 0.0 < float(cube["B04"].mean()) < 0.3  # uint16 x 10000, 65535 = no clear observation
