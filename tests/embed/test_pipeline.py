"""`ecoembed embed`: contract, chunked = in-memory, NaN pixels, resume after a crash, int8.

Encodings, devices and the multi-process cluster: ``test_cube_storage.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from support.fusion_fakes import tiny_cubes, write_cube, write_tiny_scene

from ecoembed.dates import to_days
from ecoembed.embed import embed, embed_series
from ecoembed.errors import CubeError, OutputExistsError
from ecoembed.sources.embedding_cube import open_embeddings
from ecoembed.weights import load_fusion_model


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tiny_scene(tmp_path_factory.mktemp("embed_scene"))


def _run(scene: dict[str, Path], out: Path, **kw: object):  # type: ignore[no-untyped-def]
    args = {"s1": scene["s1"], "model": scene["model"], "start": "2019-03-01", "end": "2019-05-10", "chunk_px": 4,
            "days_per_chunk": 16, "pixel_batch": 7, "progress": False}
    args.update(kw)
    return embed(scene["s2"], out, **args)  # type: ignore[arg-type]


def test_embedding_cube_contract_and_equals_in_memory(scene: dict[str, Path], tmp_path: Path) -> None:
    res = _run(scene, tmp_path / "emb.zarr", encoding="float32")  # lossless: equal to the in-memory embedding
    ds = open_embeddings(res.path)
    s2 = xr.open_dataset(scene["s2"])
    assert ds["embedding"].dims == ("time", "y", "x", "feature")
    assert ds.sizes["time"] == 71 and ds.sizes["feature"] == 8
    assert (np.diff(ds["time"].values) == np.timedelta64(1, "D")).all()
    np.testing.assert_array_equal(ds["x"].values, s2["x"].values)
    np.testing.assert_array_equal(ds["y"].values, s2["y"].values)
    assert ds.attrs["crs"] == "EPSG:32630" and ds.attrs["synthetic"] is True
    assert len(ds.attrs["checkpoint_sha256"]) == 64 and ds.attrs["model"] == "fusion.safetensors"
    assert res.blocks_total == 9 and res.blocks_computed == 9  # 10x12 px in 4 px blocks: 3 x 3

    # Chunked pipeline == the whole scene embedded in memory at once.
    from ecoembed.embed.infer import model_series
    from ecoembed.sources.local import open_cube

    loaded = load_fusion_model(scene["model"])  # the checkpoint's own band order and statistics, as embed uses them
    series = {"s2": model_series(loaded, open_cube(scene["s2"]), "s2"), "s1": model_series(loaded, open_cube(scene["s1"]), "s1")}
    days = to_days(ds["time"].values)
    ref, empty = embed_series(loaded.model, series, days)
    got = ds["embedding"].values.transpose(1, 2, 0, 3).reshape(-1, len(days), 8)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5, equal_nan=True)

    # NaN-only pixels (2 in the first row) -> NaN embeddings, counted; all others finite.
    assert empty.sum() == 2 and res.n_empty_pixels == 2
    emb = ds["embedding"].values
    assert np.isnan(emb[:, 0, :2]).all()
    assert np.isfinite(emb[:, 1:]).all() and np.isfinite(emb[:, 0, 2:]).all()


def test_interrupted_run_resumes_without_recomputing(scene: dict[str, Path], tmp_path: Path) -> None:
    reference = open_embeddings(_run(scene, tmp_path / "straight.zarr").path)["embedding"].values

    class Crash(RuntimeError):
        pass

    seen: list[tuple[int, int]] = []

    def crash_after_three(block) -> None:  # type: ignore[no-untyped-def]
        seen.append((block.iy, block.ix))
        if len(seen) == 3:
            raise Crash("simulated kill after block 3")

    out = tmp_path / "resumed.nc"
    with pytest.raises(Crash):
        _run(scene, out, on_block_done=crash_after_three)
    assert not out.exists()  # the .nc appears only when complete
    first_run = list(seen)
    seen.clear()
    res = _run(scene, out, on_block_done=lambda b: seen.append((b.iy, b.ix)))
    assert res.blocks_skipped == 3 and res.blocks_computed == 6
    assert not set(seen) & set(first_run)  # completed blocks were not recomputed
    again = open_embeddings(out)["embedding"].values
    np.testing.assert_array_equal(again, reference)
    assert not any(p.name.startswith(".resumed.nc") for p in tmp_path.iterdir())  # work store cleaned up


def test_block_without_marker_is_recomputed(scene: dict[str, Path], tmp_path: Path) -> None:
    """Data written but marker missing (killed between the two) -> not trusted, recomputed."""
    out = tmp_path / "emb.zarr"
    with pytest.raises(RuntimeError):
        _run(scene, out, on_block_done=lambda b: (_ for _ in ()).throw(RuntimeError("stop")))
    markers = tmp_path / "emb.zarr.blocks"
    (marker,) = list(markers.iterdir())
    marker.unlink()
    with pytest.raises(CubeError, match="unfinished"):
        open_embeddings(out)
    res = _run(scene, out)
    assert res.blocks_computed == 9 and res.blocks_skipped == 0


def test_marked_blocks_whose_chunks_changed_are_recomputed(scene: dict[str, Path], tmp_path: Path) -> None:
    """Issue 19: resume verifies what it trusts: a marker whose block no longer hashes to its digest is recomputed.

    Three finished blocks are damaged three ways: a chunk file deleted, a chunk file truncated, a marker without
    digest (an older version's, or hand-made); the fourth finished block is intact and the only one skipped.
    """
    import json

    reference = open_embeddings(_run(scene, tmp_path / "ref.zarr").path)["embedding"].values
    out = tmp_path / "emb.zarr"
    seen: list[int] = []

    def stop_after_four(block) -> None:  # type: ignore[no-untyped-def]
        seen.append(1)
        if len(seen) == 4:
            raise RuntimeError("simulated kill after block 4")

    with pytest.raises(RuntimeError):
        _run(scene, out, on_block_done=stop_after_four)
    markers = sorted((tmp_path / "emb.zarr.blocks").iterdir())
    assert len(markers) == 4

    def chunk_files(marker: Path) -> list[Path]:
        iy, ix = (int(v) for v in marker.stem.split("_"))
        files = [p for p in (out / "embedding").rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zattrs")]
        hits = [p for p in files if p.relative_to(out / "embedding").parts[-2:] == (str(iy), str(ix)) or p.name.endswith(f".{iy}.{ix}")]
        assert hits, [str(p.relative_to(out)) for p in files][:10]
        return hits

    for p in chunk_files(markers[0]):
        p.unlink()
    for p in chunk_files(markers[1]):
        p.write_bytes(p.read_bytes()[:7])
    info = json.loads(markers[2].read_text())
    info.pop("sha256")
    markers[2].write_text(json.dumps(info))
    res = _run(scene, out)
    assert res.blocks_skipped == 1 and res.blocks_computed == 8
    np.testing.assert_array_equal(open_embeddings(out)["embedding"].values, reference)


def test_int8_storage_decodes_transparently(scene: dict[str, Path], tmp_path: Path) -> None:
    full = open_embeddings(_run(scene, tmp_path / "f.zarr", encoding="float32").path)
    with pytest.warns(DeprecationWarning, match="encoding='int8'"):  # the old flag still works
        q = open_embeddings(_run(scene, tmp_path / "q.zarr", int8=True).path)
    raw = xr.open_zarr(tmp_path / "q.zarr", consolidated=False)
    assert raw["embedding"].dtype == np.int8 and "embedding_scale" in raw
    a, b = full["embedding"].values, q["embedding"].values
    assert q["embedding"].dtype == np.float32 and q["embedding"].dims == ("time", "y", "x", "feature")
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    scale = raw["embedding_scale"].values[..., None]
    finite = np.isfinite(a)
    assert (np.abs(a - b)[finite] <= (scale / 2 + 1e-7).repeat(8, -1)[finite]).all()
    assert (tmp_path / "q.zarr").stat() and sum(f.stat().st_size for f in (tmp_path / "q.zarr").rglob("*")) < sum(
        f.stat().st_size for f in (tmp_path / "f.zarr").rglob("*")
    )


def test_interrupted_overwrite_keeps_the_old_cube_until_the_new_one_is_complete(scene: dict[str, Path], tmp_path: Path) -> None:
    """Issue 19: --overwrite moves the old output aside and deletes it only after success."""
    out = tmp_path / "e.zarr"
    _run(scene, out, end="2019-04-10")
    old = open_embeddings(out)["embedding"].values
    with pytest.raises(RuntimeError):
        _run(scene, out, overwrite=True, on_block_done=lambda b: (_ for _ in ()).throw(RuntimeError("killed")))
    np.testing.assert_array_equal(open_embeddings(out)["embedding"].values, old)  # still the complete old cube
    res = _run(scene, out, overwrite=True)  # resumes the replacement, then swaps it in
    assert res.blocks_skipped == 1 and res.blocks_computed == 8
    assert open_embeddings(out).sizes["time"] == 71
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_existing_output_and_bad_grid(scene: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "e.zarr"
    _run(scene, out)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        _run(scene, out)
    assert _run(scene, out, overwrite=True).blocks_computed == 9
    _s2, s1 = tiny_cubes()
    write_cube(s1.assign_coords(x=s1["x"] + 5.0), tmp_path / "s1_shifted.nc")  # half a pixel off: does not nest
    with pytest.raises(CubeError, match="does not nest in the grid"):
        _run({**scene, "s1": tmp_path / "s1_shifted.nc"}, tmp_path / "bad.zarr")


def test_coarser_s1_is_resampled_onto_the_s2_grid(scene: dict[str, Path], tmp_path: Path) -> None:
    """A 20 m S1 cube nesting in the 10 m S2 grid: averaged in linear power onto it, pixels outside it are NaN."""
    _, s1 = tiny_cubes()
    coarse = s1.isel(x=slice(0, None, 2), y=slice(0, None, 2))
    coarse = coarse.assign_coords(x=coarse["x"] + 5.0, y=coarse["y"] - 5.0)  # 20 m pixel centres
    write_cube(coarse, tmp_path / "s1_20m.nc")
    from ecoembed.sources.local import open_cube

    s2_cube = open_cube(scene["s2"], "s2")
    on_grid = open_cube(tmp_path / "s1_20m.nc", "s1", like=s2_cube)
    assert on_grid.sizes["x"] == s2_cube.sizes["x"] and np.allclose(on_grid["x"].values, s2_cube["x"].values)
    res = _run({**scene, "s1": tmp_path / "s1_20m.nc"}, tmp_path / "e20.zarr")
    assert res.blocks_computed == 9


def test_s2_only_runs(scene: dict[str, Path], tmp_path: Path) -> None:
    res = _run(scene, tmp_path / "s2only.zarr", s1=None)
    ds = open_embeddings(res.path)
    assert ds.attrs["modalities"] == "s2"
    assert np.isfinite(ds["embedding"].values[:, 1:]).all()


def test_embedding_leaves_the_callers_autograd_state_alone(scene: dict[str, Path], tmp_path: Path) -> None:
    import torch

    assert torch.is_grad_enabled()
    _run(scene, tmp_path / "grad.zarr", s1=None)
    assert torch.is_grad_enabled(), "embed() switched autograd off for the calling thread"


def test_reconstruct_daily_cloud_free_s2(scene: dict[str, Path], tmp_path: Path) -> None:
    from ecoembed.embed.reconstruct import reconstruct_s2

    out = reconstruct_s2(scene["s2"], tmp_path / "recon_synthetic.nc", s1=scene["s1"], model=scene["model"],
                         start="2019-03-01", end="2019-04-30", chunk_px=5, progress=False)
    ds = xr.open_dataset(out)
    assert ds.attrs["synthetic"] == 1 and ds.attrs["reconstructed"] == 1 and ds.attrs["crs"] == "EPSG:32630"
    assert ds.sizes["time"] == 61 and (np.diff(ds["time"].values) == np.timedelta64(1, "D")).all()
    b04 = ds["B04"].values
    assert np.isnan(b04[:, 0, :2]).all() and not ds["valid"].values[:, 0, :2].any()
    rest = b04[:, 1:]
    assert np.isfinite(rest).all() and (rest >= 0).all() and (rest <= 1).all()
    assert ds["valid"].values[:, 1:].all()
    with pytest.raises(OutputExistsError):
        reconstruct_s2(scene["s2"], out, model=scene["model"], progress=False)


def test_cli_embed_and_errors(scene: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ecoembed.cli import main

    out = tmp_path / "cli.zarr"
    args = ["embed", "--s2", str(scene["s2"]), "--s1", str(scene["s1"]), "--model", str(scene["model"]), "--out", str(out),
            "--start", "2019-03-01", "--end", "2019-03-20", "--chunk-px", "6", "--int8"]
    assert main(args) == 0
    assert "blocks computed 4" in capsys.readouterr().out
    assert open_embeddings(out).sizes["time"] == 20
    assert main(args) == 2  # exists, no --overwrite: one-line error, exit 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args[:-7], "--out", str(tmp_path / "x.txt")]) == 2
    assert main(["reconstruct", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp_path / "r.nc"),
                 "--start", "2019-03-01", "--end", "2019-03-05"]) == 0


def test_shipped_default_loads_and_is_small() -> None:
    from ecoembed.weights.shipped import SHIPPED

    default = SHIPPED["fusion"].path
    loaded = load_fusion_model()  # verifies the file against the registry's sha256 and the weights against fusion.json
    assert loaded.path == default.resolve() and not loaded.synthetic and loaded.metadata["real_data"] is True
    assert set(loaded.model.encoders) == {"s2", "s1"} and loaded.model.fusion.embed_dim == 64
    assert default.stat().st_size < 5e6
    assert not any(p.requires_grad for p in loaded.model.encoders.parameters())
