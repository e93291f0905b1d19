"""STAC source: offline round trip through a local static catalog with GeoTIFF assets written by the test."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("odc.stac", reason="optional extra ecoembed[stac] (odc-stac) is not installed")
pytest.importorskip("pystac_client", reason="optional extra ecoembed[stac] (pystac-client) is not installed")
rasterio = pytest.importorskip("rasterio", reason="rasterio is needed to write the test's GeoTIFF assets")

from ecoembed.errors import InputError  # noqa: E402
from ecoembed.sensors.sentinel2 import S2_BANDS, dn_to_reflectance, scl_valid  # noqa: E402
from ecoembed.sources.local import open_cube  # noqa: E402
from ecoembed.sources.stac import load_stac  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # rasterio from_origin uses Affine "*"
              pytest.mark.filterwarnings("ignore::DeprecationWarning:odc.geo")]  # shapely.ops.transform inside odc-geo

EPSG = 32632
X0, Y1 = 500_000.0, 5_000_000.0  # upper-left corner of the test rasters (UTM 32N, metres)
N = 12
DATES = [datetime(2021, 6, 1, 10, 30, tzinfo=UTC), datetime(2022, 6, 6, 10, 30, tzinfo=UTC)]


def _tower() -> tuple[float, float]:
    from pyproj import Transformer

    # centre of pixel (row 6, col 6): the chip of 12 px centred there covers the whole raster
    x, y = X0 + 10 * 6 + 5, Y1 - 10 * 6 - 5
    lon, lat = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True).transform(x, y)
    return lat, lon


def _write_tif(path: Path, data: np.ndarray, dtype: str, nodata: float | None) -> None:
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", height=N, width=N, count=1, dtype=dtype, crs=f"EPSG:{EPSG}",
                       transform=from_origin(X0, Y1, 10.0, 10.0), nodata=nodata, tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(data.astype(dtype), 1)


def _polygon(b: list[float]) -> dict:
    return {"type": "Polygon", "coordinates": [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]]}


def _catalog(tmp: Path, kind: str) -> tuple[Path, dict]:
    import pystac

    rng = np.random.default_rng(0)
    cat = pystac.Catalog(id="test", description="local test catalog (SYNTHETIC rasters)")
    coll_id = "sentinel-2-l2a" if kind == "s2" else "sentinel-1-rtc"
    bbox_ll = [*(_tower()[1] - 0.01, _tower()[0] - 0.01), *(_tower()[1] + 0.01, _tower()[0] + 0.01)]
    coll = pystac.Collection(id=coll_id, description="test", extent=pystac.Extent(
        pystac.SpatialExtent([bbox_ll]), pystac.TemporalExtent([[DATES[0], DATES[-1]]])))
    cat.add_child(coll)
    arrays: dict = {}
    for i, dt in enumerate(DATES):
        item = pystac.Item(id=f"{kind}-{i}", geometry=_polygon(bbox_ll), bbox=bbox_ll, datetime=dt,
                           properties={"proj:epsg": EPSG, "sat:orbit_state": "ascending" if i % 2 == 0 else "descending"})
        folder = tmp / f"{kind}-{i}"
        folder.mkdir(parents=True)
        bands = (*S2_BANDS, "SCL") if kind == "s2" else ("VV", "VH")
        for b in bands:
            if b == "SCL":
                data, dtype, nodata = rng.choice([4, 5, 8, 3], size=(N, N), p=[0.6, 0.2, 0.1, 0.1]), "uint8", 0
            elif kind == "s2":
                data, dtype, nodata = rng.integers(1100, 5000, (N, N)), "uint16", 0
                data[0, 0] = 0  # a no-data pixel
            else:
                data, dtype, nodata = rng.uniform(0.005, 0.3, (N, N)), "float32", None
            _write_tif(folder / f"{b}.tif", data, dtype, nodata)
            item.add_asset(b, pystac.Asset(href=str(folder / f"{b}.tif"), media_type=pystac.MediaType.COG, roles=["data"]))
            arrays.setdefault(b, []).append(data.astype(dtype))
        coll.add_item(item)
    cat.normalize_hrefs(str(tmp / "stac"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return tmp / "stac" / "catalog.json", {k: np.stack(v) for k, v in arrays.items()}


def test_stac_round_trip_s2(tmp_path: Path) -> None:
    path, src = _catalog(tmp_path, "s2")
    lat, lon = _tower()
    cache = tmp_path / "cache" / "s2_chip.zarr"
    cube = load_stac(path, "sentinel-2-l2a", lat, lon, "2021-01-01", "2022-12-31", size_px=N, cache=cache)
    assert cube.sizes == {"time": 2, "y": N, "x": N} and cube.attrs["crs"] == f"EPSG:{EPSG}"
    np.testing.assert_allclose(cube["x"].values, X0 + 5 + 10 * np.arange(N))
    np.testing.assert_allclose(cube["y"].values, Y1 - 5 - 10 * np.arange(N))
    times = np.array([np.datetime64(d.replace(tzinfo=None), "ns") for d in DATES])
    np.testing.assert_array_equal(cube["time"].values, times)
    for b in S2_BANDS:
        expect = dn_to_reflectance(src[b], times)  # 2022 date: baseline 04.00 offset applied
        np.testing.assert_allclose(cube[b].values, expect, rtol=1e-6, atol=0)
        # the source DNs come back exactly: DN = reflectance / 1e-4 - offset
        offset = np.array([0.0, -1000.0])[:, None, None]
        dn_back = np.rint(cube[b].values.astype(np.float64) * 1e4 - offset)
        nodata = src[b] == 0
        np.testing.assert_array_equal(dn_back[~nodata], src[b][~nodata])
        assert np.isnan(cube[b].values[nodata]).all()
    np.testing.assert_array_equal(cube["SCL"].values, src["SCL"])
    np.testing.assert_array_equal(cube["valid"].values, scl_valid(src["SCL"]) & np.isfinite(cube["B02"].values))
    assert cache.exists()
    again = open_cube(cache)
    np.testing.assert_array_equal(again["B08"].values, cube["B08"].values)


def test_stac_round_trip_s1_orbit_and_db(tmp_path: Path) -> None:
    path, src = _catalog(tmp_path, "s1")
    lat, lon = _tower()
    cube = load_stac(path, "sentinel-1-rtc", lat, lon, "2021-01-01", "2022-12-31", size_px=N)
    assert cube.attrs["sensor"] == "sentinel-1-grd"
    assert list(cube["orbit"].values) == ["ascending", "descending"]
    np.testing.assert_allclose(cube["VV"].values, 10 * np.log10(src["VV"].astype(np.float64)), atol=1e-4)


def test_stac_no_items_and_missing_catalog(tmp_path: Path) -> None:
    path, _ = _catalog(tmp_path, "s2")
    lat, lon = _tower()
    with pytest.raises(InputError, match="no sentinel-2-l2a item"):
        load_stac(path, "sentinel-2-l2a", lat, lon, "2015-01-01", "2015-12-31", size_px=4)
    with pytest.raises(InputError, match="no collection 'landsat'"):
        load_stac(path, "landsat", lat, lon, "2021-01-01", "2022-12-31", size_px=4)
    with pytest.raises(InputError, match="does not exist"):
        load_stac(tmp_path / "nope.json", "sentinel-2-l2a", lat, lon, "2021-01-01", "2022-12-31", size_px=4)
