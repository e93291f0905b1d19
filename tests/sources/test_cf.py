"""CF-1.8 georeferencing: `georeference` / `transform_of`, and GDAL (rasterio) / rioxarray reading the written cubes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from support.fusion_fakes import fake_fusion_checkpoint, tiny_cubes, write_cube

from ecoembed.errors import CubeError, OutputExistsError
from ecoembed.sources.cf import georeference, transform_of
from ecoembed.sources.embedding_cube import LEGACY_DIMS, STORED_DIMS, open_embeddings

rasterio = pytest.importorskip("rasterio", reason="rasterio (GDAL) is needed to check what GIS software reads")
pytest.importorskip("rioxarray", reason="rioxarray registers the .rio accessor whose CRS lookup is checked")
from rasterio.crs import CRS  # noqa: E402


def _utm(ny: int = 4, nx: int = 5, *, y_up: bool = False) -> xr.Dataset:
    x = 600_000.0 + 5.0 + 10.0 * np.arange(nx)
    y = 5_200_000.0 - 5.0 - 10.0 * np.arange(ny)
    if y_up:
        y = y[::-1]
    rng = np.random.default_rng(0)
    return xr.Dataset(
        {"b": (("time", "y", "x"), rng.random((3, ny, nx)).astype(np.float32), {"units": "1"}),
         "per_day": ("time", np.arange(3.0))},
        coords={"time": np.arange(3), "y": y, "x": x},
        attrs={"crs": "EPSG:32632", "title": "test"},
    )


def test_georeference_gives_crs_transform_and_cf_attrs() -> None:
    ds = _utm()
    g = georeference(ds)
    assert transform_of(g) == (10.0, 0.0, 600_000.0, 0.0, -10.0, 5_200_000.0)
    ref = g["spatial_ref"]
    assert ref.dims == () and ref.dtype == np.int32 and "spatial_ref" in g.coords
    assert CRS.from_wkt(ref.attrs["crs_wkt"]) == CRS.from_epsg(32632) and ref.attrs["spatial_ref"] == ref.attrs["crs_wkt"]
    assert ref.attrs["grid_mapping_name"] == "transverse_mercator"
    assert [float(v) for v in ref.attrs["GeoTransform"].split()] == [600_000.0, 10.0, 0.0, 5_200_000.0, 0.0, -10.0]
    assert g["b"].attrs["grid_mapping"] == "spatial_ref" and "grid_mapping" not in g["per_day"].attrs
    assert g.attrs == {"crs": "EPSG:32632", "title": "test", "Conventions": "CF-1.8"}
    assert g["x"].attrs == {"standard_name": "projection_x_coordinate", "long_name": "x coordinate of projection (pixel centre)",
                            "units": "m", "axis": "X"}
    assert g["y"].attrs["standard_name"] == "projection_y_coordinate" and g["y"].attrs["axis"] == "Y"
    assert georeference(g).identical(g)  # idempotent
    assert "spatial_ref" not in ds.coords and ds["b"].attrs == {"units": "1"} and ds["x"].attrs == {}  # input untouched
    assert g.rio.crs == CRS.from_epsg(32632)  # rioxarray (in memory)
    assert tuple(g.rio.transform())[:6] == transform_of(g)


def test_georeferenced_netcdf_opens_in_gdal_and_rioxarray(tmp_path: Path) -> None:
    path = tmp_path / "g.nc"
    georeference(_utm()).to_netcdf(path)
    with rasterio.open(f"netcdf:{path}:b") as src:
        assert src.crs == CRS.from_epsg(32632) and src.count == 3 and src.shape == (4, 5)
        np.testing.assert_allclose(tuple(src.transform)[:6], (10.0, 0.0, 600_000.0, 0.0, -10.0, 5_200_000.0), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(src.read(2), _utm()["b"].values[1])
    with xr.open_dataset(path, decode_coords="all") as back:
        assert back.rio.crs == CRS.from_epsg(32632)
        again = tmp_path / "again.nc"
        georeference(back).to_netcdf(again)  # grid_mapping decoded into encoding is moved back: no clash on writing
    with rasterio.open(f"netcdf:{again}:b") as src:
        assert src.crs == CRS.from_epsg(32632)


def test_increasing_y_and_geographic_and_single_pixel() -> None:
    assert transform_of(_utm(y_up=True)) == transform_of(_utm())  # reported north-up, as GDAL presents it
    geo = _utm().assign_coords(x=np.linspace(8.0, 8.4, 5), y=np.linspace(47.3, 47.0, 4))
    geo.attrs["crs"] = "EPSG:4326"
    g = georeference(geo)
    assert g["x"].attrs["standard_name"] == "longitude" and g["y"].attrs["units"] == "degrees_north"
    assert g["spatial_ref"].attrs["grid_mapping_name"] == "latitude_longitude"
    one = _utm(1, 1)
    with pytest.raises(CubeError, match="single 'x' pixel"):
        georeference(one)
    one.attrs["resolution_m"] = 10.0
    assert transform_of(one) == (10.0, 0.0, 600_000.0, 0.0, -10.0, 5_200_000.0)
    assert georeference(one)["b"].attrs["grid_mapping"] == "spatial_ref"


def test_bad_cases_raise_cube_error() -> None:
    no_crs = _utm()
    no_crs.attrs = {}
    with pytest.raises(CubeError, match="no CRS"):
        georeference(no_crs)
    assert georeference(no_crs, "EPSG:32632").attrs["crs"] == "EPSG:32632"  # explicit CRS
    with pytest.raises(CubeError, match="cannot read the CRS"):
        georeference(_utm(), "EPSG:999999")
    ragged = _utm().assign_coords(x=[600_005.0, 600_015.0, 600_030.0, 600_040.0, 600_050.0])
    with pytest.raises(CubeError, match="not a regular grid"):
        georeference(ragged)
    with pytest.raises(CubeError, match="no 'x' coordinate"):
        georeference(_utm().drop_vars("x"))


# --- the real pipeline: embedding and reconstruction cubes written to NetCDF ---------------------------------------------

START, END = "2019-03-01", "2019-03-10"  # 10 days x 8 features = 80 GDAL bands


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from ecoembed.embed import embed
    from ecoembed.embed.reconstruct import reconstruct_s2

    root = tmp_path_factory.mktemp("cf_scene")
    s2, s1 = tiny_cubes()
    write_cube(s2, root / "s2.nc")
    write_cube(s1, root / "s1.nc")
    fake_fusion_checkpoint(root / "fusion.safetensors")
    kw = {"s1": root / "s1.nc", "model": root / "fusion.safetensors", "start": START, "end": END, "progress": False}
    embed(root / "s2.nc", root / "emb.nc", chunk_px=5, days_per_chunk=4, encoding="float32", **kw)  # type: ignore[arg-type]
    embed(root / "s2.nc", root / "emb_int8.nc", chunk_px=5, days_per_chunk=4, encoding="int8", **kw)  # type: ignore[arg-type]
    reconstruct_s2(root / "s2.nc", root / "recon.nc", chunk_px=5, **kw)  # type: ignore[arg-type]
    return {"root": root, "s2": root / "s2.nc", "s1": root / "s1.nc", "model": root / "fusion.safetensors",
            "emb": root / "emb.nc", "emb_int8": root / "emb_int8.nc", "recon": root / "recon.nc"}


def _input_grid(s2_path: Path) -> tuple[CRS, tuple[float, ...], tuple[int, int]]:
    with xr.open_dataset(s2_path) as s2:
        x, y = s2["x"].values, s2["y"].values
        transform = (10.0, 0.0, float(x[0]) - 5.0, 0.0, -10.0, float(y[0]) + 5.0)  # 10 m pixel centres, y decreasing
        return CRS.from_user_input(s2.attrs["crs"]), transform, (len(y), len(x))


@pytest.mark.parametrize("name", ["emb", "emb_int8"])
def test_embedding_netcdf_opens_in_gdal_with_the_input_grid(written: dict[str, Path], name: str) -> None:
    crs, transform, shape = _input_grid(written["s2"])
    path = written[name]
    with xr.open_dataset(path) as raw:
        assert raw["embedding"].dims == STORED_DIMS and raw.attrs["Conventions"] == "CF-1.8"
        assert raw.attrs["embedding_dims"] == "time feature y x"
        n_days, n_feat = raw.sizes["time"], raw.sizes["feature"]
    assert (n_days, n_feat) == (10, 8)
    variables = ["embedding", "days_to_s2", "days_to_s1"] + (["embedding_scale"] if name == "emb_int8" else [])
    for var in variables:
        with rasterio.open(f"netcdf:{path}:{var}") as src:
            assert src.crs == crs, var
            np.testing.assert_allclose(tuple(src.transform)[:6], transform, rtol=0, atol=1e-6)
            assert src.shape == shape
            assert src.count == (n_days * n_feat if var == "embedding" else n_days), var
    emb = open_embeddings(path)
    assert emb["embedding"].dims == LEGACY_DIMS
    with rasterio.open(f"netcdf:{path}:embedding") as src:
        band = src.read(3 * n_feat + 5 + 1).astype(np.float32)  # GDAL bands run feature-fastest: day 3, feature 5
    stored = xr.open_dataset(path)["embedding"].values[3, 5]
    np.testing.assert_array_equal(band, stored)  # same pixels in the same place (NaN == NaN here)
    if name == "emb":
        np.testing.assert_array_equal(band, emb["embedding"].values[3, :, :, 5])
    with xr.open_dataset(path, decode_coords="all") as ds:
        assert ds.rio.crs == crs and ds["embedding"].rio.crs == crs


def test_reconstruction_netcdf_opens_in_gdal_with_the_input_grid(written: dict[str, Path]) -> None:
    crs, transform, shape = _input_grid(written["s2"])
    path = written["recon"]
    with rasterio.open(f"netcdf:{path}:B04") as src:
        assert src.crs == crs and src.count == 10 and src.shape == shape
        np.testing.assert_allclose(tuple(src.transform)[:6], transform, rtol=0, atol=1e-6)
        band = src.read(4)
    with xr.open_dataset(path, decode_coords="all") as ds:
        np.testing.assert_array_equal(band, ds["B04"].values[3])
        assert ds.rio.crs == crs
        assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["crs"] == "EPSG:32630"


def test_legacy_layout_is_still_read_as_time_y_x_feature(written: dict[str, Path], tmp_path: Path) -> None:
    new = xr.open_dataset(written["emb"])
    legacy = new.assign(embedding=new["embedding"].transpose(*LEGACY_DIMS)).drop_vars("spatial_ref")
    legacy.attrs = {k: v for k, v in new.attrs.items() if k not in ("embedding_dims", "Conventions")}
    legacy.to_netcdf(tmp_path / "legacy.nc")
    a, b = open_embeddings(written["emb"]), open_embeddings(tmp_path / "legacy.nc")
    assert a["embedding"].dims == b["embedding"].dims == LEGACY_DIMS
    np.testing.assert_array_equal(a["embedding"].values, b["embedding"].values)
    bad = new.assign(embedding=new["embedding"].transpose("feature", "time", "y", "x"))
    bad.to_netcdf(tmp_path / "bad.nc")
    with pytest.raises(CubeError, match="dims"):
        open_embeddings(tmp_path / "bad.nc")


def test_unfinished_store_of_the_old_layout_is_foreign(written: dict[str, Path], tmp_path: Path) -> None:
    import zarr

    from ecoembed.embed import embed

    kw = {"s1": written["s1"], "model": written["model"], "start": START, "end": END, "progress": False, "chunk_px": 5,
          "days_per_chunk": 4}

    def stop(block) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("stop")

    out = tmp_path / "old.zarr"
    with pytest.raises(RuntimeError, match="stop"):
        embed(written["s2"], out, on_block_done=stop, **kw)  # type: ignore[arg-type]
    group = zarr.open_group(str(out), mode="r+")
    del group.attrs["embedding_dims"]  # what a store written before the (time, feature, y, x) layout looks like
    with pytest.raises(OutputExistsError, match="another model/inputs/settings"):
        embed(written["s2"], out, **kw)  # type: ignore[arg-type]
    res = embed(written["s2"], out, overwrite=True, **kw)  # type: ignore[arg-type]
    assert res.blocks_computed == res.blocks_total == 6  # 10x12 px in 5 px blocks
    resumed = tmp_path / "resumed.zarr"
    with pytest.raises(RuntimeError, match="stop"):
        embed(written["s2"], resumed, on_block_done=stop, **kw)  # type: ignore[arg-type]
    res = embed(written["s2"], resumed, **kw)  # type: ignore[arg-type]
    assert res.blocks_skipped == 1 and res.blocks_computed == 5  # a store of the current layout resumes
    np.testing.assert_array_equal(open_embeddings(resumed)["embedding"].values, open_embeddings(out)["embedding"].values)
