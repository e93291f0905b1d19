"""Issue 21: compact embedding cubes (encodings and codecs), the device option, and scale-out on worker processes."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from support.fusion_fakes import write_tiny_scene

from ecoembed.embed import embed
from ecoembed.embed.pipeline import CUDA_FALLBACK, cached_model, resolve_device
from ecoembed.errors import InputError, OutputExistsError
from ecoembed.sources.embedding_cube import (
    DEFAULT_ENCODING,
    ENCODINGS,
    INT16_ENCODING,
    INT16_STEP,
    QUALITY_LAYERS,
    ZARR_CODEC,
    open_embeddings,
)

START, END = "2019-03-01", "2019-04-10"  # 41 days: three 16-day chunks, the last one partial


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_tiny_scene(tmp_path_factory.mktemp("storage_scene"))


def _run(scene: dict[str, Path], out: Path, **kw: Any):  # type: ignore[no-untyped-def]
    args: dict[str, Any] = {"s1": scene["s1"], "model": scene["model"], "start": START, "end": END, "chunk_px": 4,
                            "days_per_chunk": 16, "pixel_batch": 7, "progress": False}
    args.update(kw)
    return embed(scene["s2"], out, **args)


@pytest.fixture(scope="module")
def cubes(scene: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same scene embedded lossless (float32) and with the default encoding, as Zarr and NetCDF."""
    root = tmp_path_factory.mktemp("storage_cubes")
    out = {"float32": root / "f32.zarr", "default": root / "default.zarr", "default_nc": root / "default.nc"}
    _run(scene, out["float32"], encoding="float32")
    _run(scene, out["default"])
    _run(scene, out["default_nc"])
    return out


def _chunk_bytes(store: Path, variables: tuple[str, ...]) -> int:
    """Bytes of the chunk files of ``variables`` (metadata excluded)."""
    return sum(f.stat().st_size for v in variables for f in (store / v).rglob("*") if f.is_file() and f.name != "zarr.json")


def test_default_cube_decodes_within_half_a_step_of_float32(cubes: dict[str, Path]) -> None:
    assert DEFAULT_ENCODING == "int16"
    lossless = open_embeddings(cubes["float32"])["embedding"].values
    for key in ("default", "default_nc"):
        ds = open_embeddings(cubes[key])
        got = ds["embedding"].values
        assert ds["embedding"].dtype == np.float32 and ds["embedding"].dims == ("time", "y", "x", "feature")
        assert ds.attrs["embedding_encoding"] == f"{INT16_ENCODING} (decoded)"
        np.testing.assert_array_equal(np.isnan(got), np.isnan(lossless))  # empty pixels stay NaN
        assert np.isnan(got[:, 0, :2]).all() and np.isfinite(got[:, 1:]).all()
        err = np.abs(got - lossless)[np.isfinite(lossless)]
        assert err.max() <= INT16_STEP / 2 + 1e-6, key  # the stated bound: half a quantisation step
        assert err.max() > INT16_STEP / 8  # and it is a real quantisation (not float32 in disguise)


def test_default_store_is_cf_packed_int16_with_standard_codecs(cubes: dict[str, Path]) -> None:
    raw = zarr.open_group(str(cubes["default"]), mode="r")
    emb = raw["embedding"]
    assert isinstance(emb, zarr.Array) and emb.metadata.zarr_format == 3 and emb.dtype == np.int16
    assert emb.attrs["scale_factor"] == INT16_STEP and emb.attrs["_FillValue"] == -32768 and emb.fill_value == -32768
    names = [c["name"] for c in json.loads((cubes["default"] / "embedding" / "zarr.json").read_text())["codecs"]]
    assert names == ["transpose", "bytes", "blosc"]  # Zarr v3 core codecs only: no numcodecs-only filter
    assert raw.attrs["embedding_codec"] == ZARR_CODEC and raw.attrs["device"] == "cpu"
    assert "0.015625" in str(raw.attrs["embedding_max_abs_error"])
    with xr.open_dataset(cubes["default_nc"], mask_and_scale=False) as nc:  # NetCDF: CF packing + zlib, no ecoembed needed
        assert nc["embedding"].dtype == np.int16 and nc["embedding"].attrs["scale_factor"] == np.float32(INT16_STEP)
        assert nc["embedding"].encoding["zlib"] and nc["embedding"].encoding["shuffle"]


def test_default_cube_is_smaller_than_float32(cubes: dict[str, Path]) -> None:
    variables = ("embedding", *QUALITY_LAYERS)
    small, lossless = _chunk_bytes(cubes["default"], variables), _chunk_bytes(cubes["float32"], variables)
    assert small < 0.6 * lossless, (small, lossless)
    assert cubes["default_nc"].stat().st_size < lossless  # NetCDF (zlib, no transpose) is bigger than Zarr, still below float32


def test_resume_with_another_encoding_is_foreign(scene: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "e.zarr"
    with pytest.raises(RuntimeError):
        _run(scene, out, on_block_done=lambda b: (_ for _ in ()).throw(RuntimeError("killed")))
    with pytest.raises(OutputExistsError, match="other model/inputs/settings"):
        _run(scene, out, encoding="float32")
    with pytest.raises(InputError, match="choose one of"):
        _run(scene, tmp_path / "x.zarr", encoding="float16")


def test_cuda_without_gpu_falls_back_and_device_is_not_a_resume_key(scene: dict[str, Path], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    import torch

    import ecoembed.embed.pipeline as pipeline

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(pipeline, "_WARNED_FALLBACK", [])
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(InputError, match="choose one of"):
        resolve_device("tpu")
    out = tmp_path / "e.zarr"
    seen: list[int] = []

    def stop_after_three(block) -> None:  # type: ignore[no-untyped-def]
        seen.append(1)
        if len(seen) == 3:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        _run(scene, out, end="2019-03-16", on_block_done=stop_after_three)  # device="cpu"; 16 days keep it quick
    with caplog.at_level(logging.WARNING, logger="ecoembed.embed.pipeline"):
        res = _run(scene, out, end="2019-03-16", device="cuda")  # resumes: the device is not part of the resume key
    assert res.blocks_skipped == 3 and res.blocks_computed == 6 and res.device == "cpu"
    assert sum(CUDA_FALLBACK in r.getMessage() for r in caplog.records) == 1  # one line, not one per block
    assert open_embeddings(out).attrs["device"] == "cpu"
    # the worker's cached model is placed on the device it is asked for (and cached per device)
    on_meta = cached_model(str(scene["model"]), "meta")
    assert {p.device.type for p in on_meta.model.parameters()} == {"meta"}
    assert cached_model(str(scene["model"]), "cpu") is cached_model(str(scene["model"]), "cpu") is not on_meta


def test_cli_encoding_device_scheduler_options(scene: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import ecoembed.embed.pipeline as pipeline
    from ecoembed.cli import embed_command, main

    choices = {p.name: p for p in embed_command.params}
    assert set(choices["encoding"].type.choices) == set(ENCODINGS)  # type: ignore[attr-defined]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "cli.zarr"
    base = ["embed", "--s2", str(scene["s2"]), "--s1", str(scene["s1"]), "--model", str(scene["model"]),
            "--start", "2019-03-01", "--end", "2019-03-10", "--chunk-px", "6"]
    assert main([*base, "--out", str(out), "--encoding", "float32", "--device", "cuda"]) == 0
    captured = capsys.readouterr()
    assert "(float32, on cpu)" in captured.out and "--device cuda: no GPU available" in captured.err
    assert xr.open_zarr(out, consolidated=False)["embedding"].dtype == np.float32
    assert main([*base, "--out", str(tmp_path / "y.zarr"), "--int8", "--encoding", "float32"]) == 2
    assert "contradicts" in capsys.readouterr().err
    monkeypatch.setattr(pipeline, "SCHEDULER_TIMEOUT_S", 0.5)
    assert main([*base, "--out", str(tmp_path / "z.zarr"), "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the dask scheduler at tcp://127.0.0.1:1" in err[0]
    assert not (tmp_path / "z.zarr").exists()


def _assert_same_stored_values(one: Path, other: Path) -> None:
    """The stored (integer) values of every time variable are identical, fill/NaN positions included; so is the decoded cube."""
    a_group, b_group = zarr.open_group(str(one), mode="r"), zarr.open_group(str(other), mode="r")
    for name in ("embedding", *QUALITY_LAYERS):
        a, b = a_group[name], b_group[name]
        assert isinstance(a, zarr.Array) and isinstance(b, zarr.Array)
        np.testing.assert_array_equal(a[...], b[...])
    np.testing.assert_array_equal(open_embeddings(one)["embedding"].values, open_embeddings(other)["embedding"].values)


def test_a_threaded_cluster_writes_the_same_bytes_as_one_process(scene: dict[str, Path], cubes: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    """The distributed path in the default run (in-process: no worker start-up); worker processes: the slow test below.

    One thread: two threads of one process reading the same NetCDF inputs at once have failed here with
    "NetCDF: Can't open HDF5 attribute" (netCDF-C/HDF5 are not thread-safe); worker processes are the tested setup.
    """
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, Client(cluster):
        res = _run(scene, tmp_path / "dist.zarr")
    assert res.blocks_computed == 9
    _assert_same_stored_values(cubes["default"], res.path)


@pytest.mark.slow  # ~10 s of it is each spawned worker importing torch/xarray/ecoembed: 23 s on a loaded 2-core machine
def test_worker_processes_write_the_same_bytes_as_one_process(scene: dict[str, Path], cubes: dict[str, Path],
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21 part 6: two worker processes (1 thread each) write exactly the single-process cube."""
    import os

    from distributed import Client, LocalCluster

    def register_fake_encoder() -> None:  # pickled by value: runs in each worker, which imports the test helpers itself
        import torch
        from support.fusion_fakes import FakeEncoder

        from ecoembed.weights.builders import register_encoder_builder

        register_encoder_builder("FakeEncoder", lambda cfg: FakeEncoder(**cfg))
        torch.set_num_threads(1)  # one core per worker, as threads_per_worker=1 means

    tests_dir = str(Path(__file__).resolve().parents[1])  # spawned workers inherit the environment, not pytest's sys.path
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH", "")) if p))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        client.run(register_fake_encoder)
        res = _run(scene, tmp_path / "dist.zarr")
    assert res.blocks_computed == 9
    _assert_same_stored_values(cubes["default"], res.path)
