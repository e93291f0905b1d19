"""Explicit data semantics (issue 19, part 3): what the numbers mean comes from metadata or options, never values.

Every case writes small SYNTHETIC inputs in ``tmp_path`` and checks

1. the decision or the refusal: DN vs reflectance and no-data from metadata or an option
   (:mod:`ecoembed.sensors.values`), values that contradict the decision refused with one
   line naming the file, the band and the option; every cube a command windows in metres
   (embedding cubes included) in a projected CRS whose spacing agrees with ``resolution_m``;
   a checkpoint's recorded band order and statistics used, and a cube lacking a band it needs
   refused;
2. through ``ecoembed.cli.main`` where a command is involved: exit status 2 and one
   ``error: ...`` line on stderr, no traceback;
3. nothing changed: every input file is byte-identical afterwards (sha256) and no file is
   left behind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecoembed.errors import CheckpointError, CubeError, InputError
from ecoembed.sources.local import open_cube
from ecoembed.sources.points import read_point_table

X0, Y0 = 500_005.0, 4_499_995.0
"""Pixel centres of the test grids (UTM 32N, metres)."""


# --- helpers ----------------------------------------------------------------------------------


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root``: relative path -> sha256."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def unchanged(root: Path) -> Iterator[None]:
    """Assert that the files under ``root`` are byte-identical afterwards and that none was added."""
    before = tree(root)
    yield
    after = tree(root)
    assert sorted(set(after) - set(before)) == [], "files left behind"
    assert {k: v for k, v in after.items() if k in before} == before, "input files changed"


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """``main(args)``: asserts exit status 2 and one ``error:`` line on stderr (no traceback); returns that line."""
    from ecoembed.cli import main

    code = main(args)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, f"exit status {code}, stderr {err!r}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def s2_cube(values: dict[str, np.ndarray], *, attrs: dict[str, dict] | None = None, n_days: int = 6,
            start: str = "2020-05-01", size: int = 4, file_attrs: dict | None = None) -> xr.Dataset:
    """A SYNTHETIC S2 cube on a 10 m UTM grid with the given raw band arrays (time, y, x) and band attrs."""
    coords = {"time": pd.date_range(start, periods=n_days, freq="5D"),
              "y": Y0 - 10.0 * np.arange(size), "x": X0 + 10.0 * np.arange(size)}
    ds = xr.Dataset({b: (("time", "y", "x"), v, (attrs or {}).get(b, {})) for b, v in values.items()}, coords=coords)
    ds.attrs = {"crs": "EPSG:32632", "synthetic": 1, "title": "SYNTHETIC test cube", **(file_attrs or {})}
    return ds


def reflectance(n_days: int = 6, size: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"B04": rng.uniform(0.03, 0.12, (n_days, size, size)).astype(np.float32),
            "B08": rng.uniform(0.25, 0.45, (n_days, size, size)).astype(np.float32)}


# --- DN vs reflectance ------------------------------------------------------------------------


def test_reflectance_band_with_one_outlier_stays_reflectance(tmp_path: Path) -> None:
    bands = reflectance()
    bands["B08"][0, 0, 0] = 1.7  # one saturated / specular pixel above 1
    s2_cube(bands).to_netcdf(tmp_path / "refl.nc")
    with unchanged(tmp_path):
        cube = open_cube(tmp_path / "refl.nc", "s2").load()
    np.testing.assert_allclose(cube["B08"].values, bands["B08"], rtol=0, atol=1e-7)  # nothing divided by 10^4
    np.testing.assert_allclose(cube["B04"].values, bands["B04"], rtol=0, atol=1e-7)
    assert "float storage" in cube.attrs["values"] and "reflectance" in cube.attrs["values"]


def test_integer_cube_without_metadata_is_dn_by_the_storage_type_and_says_why(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dn = {"B04": rng.integers(300, 1200, (6, 4, 4)).astype(np.int16), "B08": rng.integers(2500, 4500, (6, 4, 4)).astype(np.int16)}
    s2_cube(dn).to_netcdf(tmp_path / "dn.nc")
    as_float = {b: v.astype(np.float32) for b, v in dn.items()}  # the same numbers stored as floats, no units
    s2_cube(as_float).to_netcdf(tmp_path / "dn_float.nc")
    with unchanged(tmp_path):
        cube = open_cube(tmp_path / "dn.nc", "s2").load()
        np.testing.assert_allclose(cube["B08"].values, dn["B08"] * 1e-4, rtol=1e-6)  # 2020: no baseline offset
        assert "integer storage" in cube.attrs["values"] and "digital numbers" in cube.attrs["values"]
        assert "integer storage" in cube["B08"].attrs["values"]
        # the storage-type rule says float = reflectance: DN-range floats are refused, not guessed as DN
        with pytest.raises(CubeError) as info:
            open_cube(tmp_path / "dn_float.nc", "s2")
        cube = open_cube(tmp_path / "dn_float.nc", "s2", values="dn").load()  # the option settles it
        np.testing.assert_allclose(cube["B08"].values, dn["B08"] * 1e-4, rtol=1e-6)
        assert "given as an option" in cube.attrs["values"]
    message = str(info.value)
    assert "\n" not in message and "dn_float.nc" in message and "band B0" in message and "--s2-values dn" in message


def test_reflectance_declared_cube_with_dn_values_is_refused_by_embed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.fusion_fakes import fake_fusion_checkpoint

    dn = {b: np.random.default_rng(2).uniform(500, 4000, (6, 4, 4)).astype(np.float32) for b in ("B04", "B08")}
    s2_cube(dn, attrs={b: {"units": "1"} for b in dn}).to_netcdf(tmp_path / "declared_refl.nc")
    fake_fusion_checkpoint(tmp_path / "fusion.safetensors")
    with unchanged(tmp_path):
        line = run_cli(["embed", "--s2", str(tmp_path / "declared_refl.nc"), "--model", str(tmp_path / "fusion.safetensors"),
                        "--out", str(tmp_path / "emb.zarr")], capsys)
    assert "declared_refl.nc" in line and "band B04" in line and "units '1'" in line and "--s2-values dn" in line


def test_dn_option_on_reflectance_values_is_refused_by_embed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from support.fusion_fakes import fake_fusion_checkpoint

    s2_cube(reflectance()).to_netcdf(tmp_path / "refl.nc")
    fake_fusion_checkpoint(tmp_path / "fusion.safetensors")
    with unchanged(tmp_path):
        line = run_cli(["embed", "--s2", str(tmp_path / "refl.nc"), "--s2-values", "dn", "--model",
                        str(tmp_path / "fusion.safetensors"), "--out", str(tmp_path / "emb.zarr")], capsys)
    assert "refl.nc" in line and "digital numbers" in line and "below 2" in line and "--s2-values reflectance" in line


def test_sar_linear_declared_but_negative_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    db = {p: rng.uniform(-20, -8, (6, 4, 4)).astype(np.float32) for p in ("VV", "VH")}
    ds = s2_cube(db, attrs={p: {"units": "linear"} for p in db}, file_attrs={"orbit": "ascending"})
    ds.to_netcdf(tmp_path / "s1.nc")
    with unchanged(tmp_path), pytest.raises(CubeError) as info:
        open_cube(tmp_path / "s1.nc", "s1")
    assert "s1.nc" in str(info.value) and "linear power" in str(info.value) and "--s1-values db" in str(info.value)
    cube = open_cube(tmp_path / "s1.nc", "s1", values="db").load()  # the option settles it; values kept as dB
    np.testing.assert_allclose(cube["VV"].values, db["VV"], atol=1e-5)


# --- no data ----------------------------------------------------------------------------------


def test_undeclared_minus_9999_is_masked_in_cubes_and_point_tables(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    dn = {"B04": rng.integers(300, 1200, (6, 4, 4)).astype(np.int16), "B08": rng.integers(2500, 4500, (6, 4, 4)).astype(np.int16)}
    dn["B08"][1, 2, 3] = -9999
    s2_cube(dn).to_netcdf(tmp_path / "dn.nc")
    refl = reflectance()
    refl["B04"][2, 0, 0] = -9999.0
    s2_cube(refl).to_netcdf(tmp_path / "refl.nc")
    table = pd.DataFrame({"date": pd.date_range("2020-05-01", periods=5, freq="10D").strftime("%Y-%m-%d"),
                          "B04": [0.05, 0.06, -9999.0, 0.05, 0.04], "B08": [0.3, 0.31, 0.32, 0.33, 0.34],
                          "NDVI": [0.7, -9999.0, 0.68, 0.71, 0.69]})
    table.to_csv(tmp_path / "ZZ-P1_s2.csv", index=False)
    with unchanged(tmp_path):
        cube = open_cube(tmp_path / "dn.nc", "s2").load()
        assert np.isnan(cube["B08"].values[1, 2, 3]) and not bool(cube["valid"].values[1, 2, 3])
        assert np.isfinite(cube["B08"].values).sum() == cube["B08"].size - 1 and "-9999" in cube["B08"].attrs["masked_fill_values"]
        cube = open_cube(tmp_path / "refl.nc", "s2").load()
        assert np.isnan(cube["B04"].values[2, 0, 0]) and np.isfinite(cube["B04"].values).sum() == cube["B04"].size - 1
        point = next(iter(read_point_table(tmp_path / "ZZ-P1_s2.csv", lat=45.0, lon=9.0).values()))
    assert np.isnan(point["B04"].values[2, 0, 0]) and np.isnan(point["NDVI"].values[1, 0, 0])  # index columns alike
    assert np.nanmin(point["NDVI"].values) > 0.6 and "-9999" in point.attrs["masked_fill_values"]


def test_declared_other_fill_is_masked_by_option_attribute_and_sidecar(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    dn = {"B04": rng.integers(300, 1200, (6, 4, 4)).astype(np.int16), "B08": rng.integers(2500, 4500, (6, 4, 4)).astype(np.int16)}
    dn["B04"][0, 1, 1] = -32768
    s2_cube(dn).to_netcdf(tmp_path / "option.nc")  # nothing declares -32768: the option does
    s2_cube(dn, attrs={"B04": {"nodata": -32768}}).to_netcdf(tmp_path / "attribute.nc")
    table = pd.DataFrame({"date": ["2020-05-01", "2020-05-11", "2020-05-21"], "PPI": [0.8, -32768.0, 0.9]})
    table.to_csv(tmp_path / "ZZ-P2_ppi.csv", index=False)
    table.to_csv(tmp_path / "ZZ-P3_ppi.csv", index=False)
    (tmp_path / "ZZ-P3_ppi.json").write_text(json.dumps({"nodata": -32768}))
    with unchanged(tmp_path):
        for name, options in (("option.nc", {"nodata": -32768.0}), ("attribute.nc", {})):
            cube = open_cube(tmp_path / name, "s2", **options).load()
            assert np.isnan(cube["B04"].values[0, 1, 1]), name
            assert np.isfinite(cube["B04"].values).sum() == cube["B04"].size - 1, name
            assert "-32768" in cube["B04"].attrs["masked_fill_values"]
        with pytest.raises(InputError, match="undeclared fill.*--nodata -32768"):  # undeclared: refused with the remedy
            read_point_table(tmp_path / "ZZ-P2_ppi.csv", lat=45.0, lon=9.0)
        by_option = next(iter(read_point_table(tmp_path / "ZZ-P2_ppi.csv", lat=45.0, lon=9.0, nodata=-32768).values()))
        by_sidecar = next(iter(read_point_table(tmp_path / "ZZ-P3_ppi.csv", lat=45.0, lon=9.0).values()))
    for cube in (by_option, by_sidecar):
        assert np.isnan(cube["PPI"].values[1, 0, 0]) and np.nanmin(cube["PPI"].values) == pytest.approx(0.8)


def test_point_table_of_float_dn_is_refused_naming_the_option(tmp_path: Path) -> None:
    """A CSV of DN with an empty cell reads as floats: the storage rule says reflectance, the values contradict it."""
    rng = np.random.default_rng(6)
    b04 = rng.integers(300, 1200, 12).astype(float)
    b04[3] = np.nan
    table = pd.DataFrame({"date": pd.date_range("2020-05-01", periods=12, freq="5D").strftime("%Y-%m-%d"),
                          "B04": b04, "B08": rng.integers(2500, 4500, 12).astype(float)})
    table.to_csv(tmp_path / "ZZ-P4_s2.csv", index=False)
    with unchanged(tmp_path), pytest.raises(CubeError) as info:
        read_point_table(tmp_path / "ZZ-P4_s2.csv", lat=45.0, lon=9.0)
    assert "ZZ-P4_s2.csv" in str(info.value) and "values='dn'" in str(info.value)
    cube = next(iter(read_point_table(tmp_path / "ZZ-P4_s2.csv", lat=45.0, lon=9.0, values="dn").values()))
    np.testing.assert_allclose(cube["B08"].values[:, 0, 0], table["B08"].to_numpy() * 1e-4, rtol=1e-6)


# --- CRS / resolution of every cube a command windows -----------------------------------------


def _embedding_sites(root: Path) -> Path:
    from ecoembed.sources.synthetic import write_embedding_sites

    return write_embedding_sites(root, n_sites=2, n_feat=3, days=120, size_px=5)


def _fit_gpp(csv: Path, out: Path) -> list[str]:
    return ["fit-gpp", "--sites", str(csv), "--out", str(out), "--features", "embeddings", "--head", "linear",
            "--quiet", "--strict", "--no-interpret"]


def test_embedding_cube_in_degrees_is_refused_by_fit_gpp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    csv = _embedding_sites(data)
    for _, row in pd.read_csv(csv).iterrows():
        path = data / row["features_path"]
        with xr.open_dataset(path) as ds:
            ds = ds.load()
        n = ds.sizes["x"]
        step = 0.0001  # ~10 m in degrees: the 5 x 5 window is accepted by the pixel arithmetic, but not in metres
        ds = ds.assign_coords(x=row["lon"] + step * (np.arange(n) - n // 2), y=row["lat"] - step * (np.arange(n) - n // 2))
        ds.attrs["crs"] = "EPSG:4326"
        ds.to_netcdf(path)
    with unchanged(tmp_path):
        line = run_cli(_fit_gpp(csv, tmp_path / "run"), capsys)
    assert "ZZ-T0_emb.nc" in line and "geographic CRS (EPSG:4326" in line and "projected" in line


def test_cube_whose_spacing_contradicts_resolution_m_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    csv = _embedding_sites(data)
    first = data / pd.read_csv(csv)["features_path"].iloc[0]
    with xr.open_dataset(first) as ds:
        ds = ds.load()
    ds.attrs["resolution_m"] = 20.0  # the pixels are 10 m apart
    ds.to_netcdf(first)
    with unchanged(tmp_path):
        line = run_cli(_fit_gpp(csv, tmp_path / "run"), capsys)
    assert first.name in line and "spacing 10 m contradicts its resolution_m attribute (20 m)" in line


def test_sensor_cube_without_crs_and_with_a_mapping_contradiction_are_refused() -> None:
    from ecoembed.sources.chips import tower_pixel
    from ecoembed.sources.grid import require_metric_grid

    cube = s2_cube(reflectance())
    assert require_metric_grid(cube, source="ok.nc").to_epsg() == 32632
    with pytest.raises(CubeError, match="nocrs.nc has no CRS"):
        tower_pixel(cube.assign_attrs(crs=""), 45.0, 9.0, source="nocrs.nc")
    clash = cube.assign_coords(spatial_ref=((), 0, {"crs_wkt": "EPSG:32633"}))
    with pytest.raises(CubeError, match="clash.nc states crs EPSG:32632 but its grid mapping is EPSG:32633"):
        tower_pixel(clash, 45.0, 9.0, source="clash.nc")
    feet = cube.assign_attrs(crs="EPSG:2263")  # NAD83 / New York Long Island, US survey feet
    with pytest.raises(CubeError, match="not metres"):
        require_metric_grid(feet, source="feet.nc")


# --- checkpoint band order and normalisation --------------------------------------------------


def _four_band_checkpoint(path: Path, bands: list[str]) -> None:
    """A SYNTHETIC fake fusion checkpoint whose S2 encoder takes four channels in ``bands`` order."""
    import torch
    from support.fusion_fakes import FakeEncoder

    from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork, ModalityConfig
    from ecoembed.weights.builders import register_encoder_builder
    from ecoembed.weights.fusion_checkpoint import save_fusion_checkpoint

    register_encoder_builder("FakeEncoder", lambda cfg: FakeEncoder(**cfg))
    torch.manual_seed(0)
    fusion = FusionNetwork({"s2": ModalityConfig(8, 4)}, d_model=16, embed_dim=8, n_heads=2, n_layers=1)
    model = FusedEmbeddingModel({"s2": FakeEncoder(4, seed=1)}, fusion)
    save_fusion_checkpoint(path, model, {"s2": {"class": "FakeEncoder", "config": {"n_channels": 4, "d_model": 8, "seed": 1}}},
                           extra={"synthetic": True, "normalisation": {"s2": {"bands": bands, "mean": [0.05, 0.06, 0.07, 0.3],
                                                                              "std": [0.02, 0.03, 0.04, 0.1]}}})


def test_checkpoint_band_order_needing_a_band_the_cube_lacks_is_refused(tmp_path: Path) -> None:
    from ecoembed.embed.infer import check_model_inputs, model_series
    from ecoembed.weights.fusion_checkpoint import load_fusion_checkpoint

    _four_band_checkpoint(tmp_path / "four.safetensors", ["B02", "B03", "B04", "B08"])
    rng = np.random.default_rng(7)
    bands = {b: rng.uniform(0.02, 0.4, (6, 4, 4)).astype(np.float32) for b in ("B02", "B03", "B04", "B8A")}
    s2_cube(bands).to_netcdf(tmp_path / "no_b08.nc")  # a valid S2 cube (NIR = B8A), but the checkpoint's NIR is B08
    with unchanged(tmp_path):
        loaded = load_fusion_checkpoint(tmp_path / "four.safetensors")
        cube = open_cube(tmp_path / "no_b08.nc", "s2")
        for call in (lambda: model_series(loaded, cube, "s2"), lambda: check_model_inputs(loaded, {"s2": cube})):
            with pytest.raises(CubeError) as info:
                call()
            message = str(info.value)
            assert "\n" not in message and "no_b08.nc" in message and "lacks B08" in message
            assert "four.safetensors" in message and "B02,B03,B04,B08" in message
        with pytest.raises(CheckpointError, match="no 's1' modality"):
            loaded.input_normalisation("s1")


def test_checkpoint_band_order_and_statistics_are_used_not_the_registry(tmp_path: Path) -> None:
    from ecoembed.embed.infer import model_series
    from ecoembed.weights.fusion_checkpoint import load_fusion_checkpoint

    order = ["B08", "B04", "B03", "B02"]  # not the registry's order
    _four_band_checkpoint(tmp_path / "four.safetensors", order)
    rng = np.random.default_rng(8)
    bands = {b: rng.uniform(0.02, 0.4, (6, 4, 4)).astype(np.float32) for b in ("B02", "B03", "B04", "B05", "B08")}
    s2_cube(bands).to_netcdf(tmp_path / "s2.nc")
    loaded = load_fusion_checkpoint(tmp_path / "four.safetensors")
    series = model_series(loaded, open_cube(tmp_path / "s2.nc", "s2").load(), "s2")
    assert list(series.bands) == order and series.values.shape[-1] == 4 and "four.safetensors" in series.normalisation["source"]
    mean, std = np.array([0.05, 0.06, 0.07, 0.3]), np.array([0.02, 0.03, 0.04, 0.1])
    for i, b in enumerate(order):
        raw = bands[b].transpose(1, 2, 0).reshape(16, 6)
        expect = np.where(series.valid, (raw - mean[i]) / std[i], 0.0)
        np.testing.assert_allclose(series.values[..., i], expect, rtol=1e-5, atol=1e-5)


def test_checkpoint_without_recorded_normalisation_is_refused() -> None:
    from ecoembed.sources.chips import checkpoint_series

    cube = s2_cube(reflectance())
    with pytest.raises(CheckpointError, match="old.safetensors records no s2 band order"):
        checkpoint_series(cube, "s2", None, checkpoint="old.safetensors")
    with pytest.raises(CheckpointError, match="one finite mean and one positive std"):
        checkpoint_series(cube, "s2", {"bands": ["B04", "B08"], "mean": [0.1], "std": [0.1, 0.1]}, checkpoint="bad.safetensors")
