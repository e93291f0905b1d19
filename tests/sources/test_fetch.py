"""``ecoembed fetch``: offline, through a local static STAC catalog with GeoTIFF assets written by the test.

Two towers have Sentinel-2 and Sentinel-1 items (asset keys as earth-search and Planetary Computer
name them: ``red``, ``nir08``, ``scl``, ``vv``), a third tower has none.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("odc.stac", reason="optional extra ecoembed[stac] (odc-stac) is not installed")
pytest.importorskip("pystac_client", reason="optional extra ecoembed[stac] (pystac-client) is not installed")
rasterio = pytest.importorskip("rasterio", reason="rasterio is needed to write the test's GeoTIFF assets")

from ecoembed.cli import main  # noqa: E402
from ecoembed.errors import InputError  # noqa: E402
from ecoembed.sensors.sentinel2 import S2_BANDS, dn_to_reflectance  # noqa: E402
from ecoembed.sources.chips import tower_pixel  # noqa: E402
from ecoembed.sources.fetch import check_dates, fetch_sites  # noqa: E402
from ecoembed.sources.local import open_cube  # noqa: E402
from ecoembed.sources.stac import resolve_assets  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),  # rasterio from_origin uses Affine "*"
              pytest.mark.filterwarnings("ignore::DeprecationWarning:odc.geo")]  # shapely.ops.transform inside odc-geo

EPSG = 32632
Y1 = 5_000_000.0
ORIGINS = {"AA-One": 500_000.0, "BB-Two": 520_000.0}  # raster upper-left x of the towers with items (UTM 32N, m)
EMPTY_X = 600_000.0  # the tower without items, 80 km east
BROKEN_X = 560_000.0  # a tower whose S2 item names asset files that do not exist (a failed download)
N = 16  # raster edge (px); the tower is in the centre of pixel (8, 8)
SIZE = 8  # chip edge asked for: the tower lands in chip pixel (4, 4)
DATES = [datetime(2021, 6, 1, 10, 30, tzinfo=UTC), datetime(2022, 6, 6, 10, 30, tzinfo=UTC)]
S2_KEYS = {"B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2", "B07": "rededge3",
           "B08": "nir", "B8A": "nir08", "B11": "swir16", "B12": "swir22", "SCL": "scl"}


def _lat_lon(x: float, y: float) -> tuple[float, float]:
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(f"EPSG:{EPSG}", "EPSG:4326", always_xy=True).transform(x, y)
    return float(lat), float(lon)


def _tower(x0: float) -> tuple[float, float]:
    return _lat_lon(x0 + 10 * 8 + 5, Y1 - 10 * 8 - 5)


def _bbox(x0: float) -> list[float]:
    corners = [_lat_lon(x, y) for x in (x0, x0 + 10 * N) for y in (Y1, Y1 - 10 * N)]
    lats, lons = [c[0] for c in corners], [c[1] for c in corners]
    return [min(lons), min(lats), max(lons), max(lats)]


def _write_tif(path: Path, data: np.ndarray, dtype: str, nodata: float | None, x0: float) -> None:
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", height=N, width=N, count=1, dtype=dtype, crs=f"EPSG:{EPSG}",
                       transform=from_origin(x0, Y1, 10.0, 10.0), nodata=nodata, tiled=True, blockxsize=16, blockysize=16) as dst:
        dst.write(data.astype(dtype), 1)


def _catalog(tmp: Path) -> tuple[Path, dict]:
    """A static catalog with sentinel-2-l2a and sentinel-1-rtc items over the two towers; the source arrays."""
    import pystac

    rng = np.random.default_rng(1)
    cat = pystac.Catalog(id="test", description="local test catalog (SYNTHETIC rasters)")
    every = [_bbox(x0) for x0 in ORIGINS.values()]
    extent = [min(b[0] for b in every), min(b[1] for b in every), max(b[2] for b in every), max(b[3] for b in every)]
    colls = {}
    for kind, cid in (("s2", "sentinel-2-l2a"), ("s1", "sentinel-1-rtc")):
        colls[kind] = pystac.Collection(id=cid, description="test", extent=pystac.Extent(
            pystac.SpatialExtent([extent]), pystac.TemporalExtent([[DATES[0], DATES[-1]]])))
        cat.add_child(colls[kind])
    arrays: dict = {}
    for site, x0 in ORIGINS.items():
        b = _bbox(x0)
        geometry = {"type": "Polygon", "coordinates": [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]], [b[0], b[1]]]]}
        for kind in ("s2", "s1"):
            for i, dt in enumerate(DATES):
                item = pystac.Item(id=f"{site}-{kind}-{i}", geometry=geometry, bbox=b, datetime=dt,
                                   properties={"proj:epsg": EPSG, "sat:orbit_state": ("ascending", "descending")[i]})
                folder = tmp / "assets" / item.id
                folder.mkdir(parents=True)
                keys = S2_KEYS if kind == "s2" else {"VV": "vv", "VH": "vh"}
                for band, key in keys.items():
                    if band == "SCL":
                        data, dtype, nodata = rng.choice([4, 5, 8], size=(N, N), p=[0.7, 0.2, 0.1]), "uint8", 0
                    elif kind == "s2":
                        data, dtype, nodata = rng.integers(1100, 5000, (N, N)), "uint16", 0
                    else:
                        data, dtype, nodata = rng.uniform(0.005, 0.3, (N, N)), "float32", None
                    _write_tif(folder / f"{key}.tif", data, dtype, nodata, x0)
                    item.add_asset(key, pystac.Asset(href=str(folder / f"{key}.tif"), media_type=pystac.MediaType.COG,
                                                     roles=["data"]))
                    arrays.setdefault((site, band), []).append(data.astype(dtype))
                colls[kind].add_item(item)
    b = _bbox(BROKEN_X)
    broken = pystac.Item(id="broken-s2", geometry={"type": "Polygon", "coordinates": [[[b[0], b[1]], [b[2], b[1]], [b[2], b[3]],
                         [b[0], b[3]], [b[0], b[1]]]]}, bbox=b, datetime=DATES[0], properties={"proj:epsg": EPSG})
    for key in S2_KEYS.values():
        broken.add_asset(key, pystac.Asset(href=str(tmp / "missing" / f"{key}.tif"), media_type=pystac.MediaType.COG))
    colls["s2"].add_item(broken)
    cat.normalize_hrefs(str(tmp / "stac"))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return tmp / "stac" / "catalog.json", {k: np.stack(v) for k, v in arrays.items()}


def _sites(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "flux").mkdir()
    rows = []
    for site, x0 in [*ORIGINS.items(), ("CC-None", EMPTY_X), ("DD-Broken", BROKEN_X)]:
        lat, lon = _tower(x0)
        (folder / "flux" / f"{site}.csv").write_text("TIMESTAMP,GPP\n", encoding="utf-8")
        rows.append(f"{site},{lat:.7f},{lon:.7f},ENF,flux/{site}.csv")
    path = folder / "towers.csv"
    path.write_text("site_id,lat,lon,igbp,flux_path\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    return _catalog(tmp_path_factory.mktemp("stac"))


def _args(sites: Path, out: Path, catalog: Path, *extra: str) -> list[str]:
    return ["fetch", "--sites", str(sites), "--out", str(out), "--start", "2021-01-01", "--end", "2022-12-31",
            "--catalog", str(catalog), "--size-px", str(SIZE), "--quiet", *extra]


def _report(out: Path) -> dict[tuple[str, str], str]:
    rep = pd.read_csv(out / "fetch_report.csv", keep_default_na=False)
    assert list(rep.columns) == ["site_id", "sensor", "status", "reason", "n_items", "path"]
    return {(r.site_id, r.sensor): r.status for r in rep.itertuples()}


def test_fetch_cli_two_sites_one_without_items_and_resume(tmp_path: Path, catalog: tuple[Path, dict],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    cat, src = catalog
    sites = _sites(tmp_path / "in")
    before = sites.read_bytes()
    out = tmp_path / "out"
    assert main(_args(sites, out, cat)) == 0
    err = capsys.readouterr().err
    assert "CC-None s2: skipped, no sentinel-2-l2a item" in err and "CC-None s1: skipped" in err
    assert "DD-Broken s2: failed, " in err  # the other sites go on

    times = np.array([np.datetime64(d.replace(tzinfo=None), "ns") for d in DATES])
    for site, x0 in ORIGINS.items():
        lat, lon = _tower(x0)
        s2 = open_cube(out / f"{site}_s2.nc", "s2")
        assert dict(s2.sizes) == {"time": 2, "y": SIZE, "x": SIZE} and s2.attrs["crs"] == f"EPSG:{EPSG}"
        assert s2.attrs["bands"] == ",".join(S2_BANDS) and "SCL" in s2
        assert "units '1'" in s2.attrs["values"]  # reflectance declared by the file, not guessed from storage
        assert tower_pixel(s2, lat, lon) == (SIZE // 2, SIZE // 2)
        np.testing.assert_allclose(s2["x"].values, x0 + 45 + 10 * np.arange(SIZE))  # chip columns 4..11 of the raster
        chip = (slice(None), slice(4, 4 + SIZE), slice(4, 4 + SIZE))
        np.testing.assert_allclose(s2["B8A"].values, dn_to_reflectance(src[(site, "B8A")][chip], times), rtol=1e-6)
        np.testing.assert_array_equal(s2["SCL"].values, src[(site, "SCL")][chip])
        s1 = open_cube(out / f"{site}_s1.nc", "s1")
        assert dict(s1.sizes) == {"time": 2, "y": SIZE, "x": SIZE} and "units 'db'" in s1.attrs["values"]
        assert list(s1["orbit"].values) == ["ascending", "descending"]
        np.testing.assert_allclose(s1["VH"].values, 10 * np.log10(src[(site, "VH")][chip].astype(np.float64)), atol=1e-4)
    assert not (out / "CC-None_s2.nc").exists()

    assert sites.read_bytes() == before  # the input sites file is never written
    new = pd.read_csv(out / "sites.csv", keep_default_na=False)
    assert list(new["site_id"]) == [*ORIGINS, "CC-None", "DD-Broken"] and list(new["igbp"]) == ["ENF"] * 4
    assert list(new["s2_path"]) == ["AA-One_s2.nc", "BB-Two_s2.nc", "", ""]
    assert list(new["s1_path"]) == ["AA-One_s1.nc", "BB-Two_s1.nc", "", ""]
    assert Path(new["flux_path"][0]) == (tmp_path / "in" / "flux" / "AA-One.csv").resolve()  # outside --out: absolute
    assert _report(out) == {**{(s, k): "fetched" for s in ORIGINS for k in ("s2", "s1")},
                            ("CC-None", "s2"): "no_items", ("CC-None", "s1"): "no_items",
                            ("DD-Broken", "s2"): "failed", ("DD-Broken", "s1"): "no_items"}

    # resume: finished cubes are verified and kept; a truncated one is fetched again
    kept = out / "BB-Two_s2.nc"
    mtime = kept.stat().st_mtime_ns
    broken = out / "AA-One_s2.nc"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    assert main(_args(sites, out, cat)) == 0
    status = _report(out)
    assert status[("AA-One", "s2")] == "fetched" and status[("BB-Two", "s2")] == "kept"
    assert status[("AA-One", "s1")] == "kept" and status[("CC-None", "s2")] == "no_items"
    assert kept.stat().st_mtime_ns == mtime
    assert open_cube(broken, "s2").sizes["time"] == 2
    assert sites.read_bytes() == before
    capsys.readouterr()

    # a cube of this folder made for another request is refused before any download
    assert main([*_args(sites, out, cat)[:-3], "--size-px", "6", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--overwrite" in err and len(err.splitlines()) == 1


def test_fetch_bad_input_is_one_line_exit_2(tmp_path: Path, catalog: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    cat, _ = catalog
    sites = _sites(tmp_path / "in")
    for bad, needle in ((["--start", "2021-13-01"], "--start '2021-13-01' is not a date"),
                        (["--end", "2020-01-01"], "is after --end"),
                        (["--start", "2001-01-01"], "spans 22.0 years"),
                        (["--size-px", "0"], "--size-px 0")):
        args = _args(sites, tmp_path / "out", cat)
        for flag, value in zip(bad[::2], bad[1::2], strict=True):
            args[args.index(flag) + 1] = value
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and needle in err and len(err.splitlines()) == 1, err
    # --out holding the sites file: the new sites.csv would overwrite it (refused by the CLI's output-overlap rule)
    same = tmp_path / "same"
    same.mkdir()
    (same / "sites.csv").write_bytes(sites.read_bytes())
    (same / "flux").symlink_to(tmp_path / "in" / "flux")
    assert main(_args(same / "sites.csv", same, cat)) == 2
    assert "contains the input" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_named_catalogs_fail_early_without_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sites = _sites(tmp_path / "in")
    with pytest.raises(InputError, match="cannot give s1: its sentinel-1-grd collection holds uncalibrated"):
        fetch_sites(sites, tmp_path / "out", start="2021-01-01", end="2021-12-31", catalog="earth-search", sensors=["s1"])
    monkeypatch.setitem(sys.modules, "planetary_computer", None)  # import fails as if not installed
    with pytest.raises(InputError, match="pip install planetary-computer"):
        fetch_sites(sites, tmp_path / "out", start="2021-01-01", end="2021-12-31", catalog="planetary-computer")
    with pytest.raises(InputError, match="neither a known catalog"):
        fetch_sites(sites, tmp_path / "out", start="2021-01-01", end="2021-12-31", catalog=str(tmp_path / "nope.json"))
    assert check_dates("2020-02-29", "2020-03-01") == ("2020-02-29", "2020-03-01")


def test_resolve_assets_prefers_exact_then_finest_key() -> None:
    item = SimpleNamespace(assets={"B04_20m": 0, "B04_10m": 0, "B8A_20m": 0, "SCL_20m": 0, "SCL_60m": 0, "B02": 0, "blue": 0})
    assert resolve_assets([item], "sentinel-2-l2a", ["B02", "B04", "B8A", "SCL", "B12"]) == {
        "B02": "B02", "B04": "B04_10m", "B8A": "B8A_20m", "SCL": "SCL_20m"}
    assert resolve_assets([SimpleNamespace(assets={"vv": 0, "vh": 0})], "sentinel-1-grd", ["VV", "VH"]) == {"VV": "vv", "VH": "vh"}


def test_load_stac_given_asset_keys_fall_back_to_the_items_keys(catalog: tuple[Path, dict]) -> None:
    from ecoembed.sources.stac import load_stac

    cat, src = catalog
    lat, lon = _tower(ORIGINS["AA-One"])
    cube = load_stac(cat, "sentinel-2-l2a", lat, lon, "2021-01-01", "2021-12-31", size_px=4,
                     assets={"B04": "red", "B08": "not-an-asset"})  # a wrong key: resolved from the items ("nir")
    assert sorted(b for b in cube.data_vars if b != "valid") == ["B04", "B08"] and cube.attrs["stac_items"] == 1
    np.testing.assert_allclose(cube["B08"].values[0], src[("AA-One", "B08")][0, 6:10, 6:10] * 1e-4, rtol=1e-6)
