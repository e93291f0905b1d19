"""Cloud-free daily Sentinel-2 reflectance decoded from the fused embedding (a by-product).

The stage-2 fusion network is trained to reconstruct held-out *valid* S2
dates from the embedding queried at that day, so its S2 reconstruction head
turns the daily embedding into a daily, gap-filled reflectance estimate. The
output follows the sensor cube contract (``time, y, x`` per band, ``valid``,
``crs``, ``synthetic`` propagated from the inputs) with ``reconstructed=True``,
georeferenced after CF-1.8 (:func:`ecoembed.sources.cf.georeference`: GDAL,
QGIS and rioxarray read each band as a raster on the S2 cube's CRS and grid,
one band per day).

Memory: blocks of ``chunk_px`` pixels are processed one at a time and written
to a Zarr store (region writes), so only one block's series and output are in
memory. Unlike ``embed``, an interrupted reconstruction starts over (the output
appears atomically only when complete).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import torch
import xarray as xr
import zarr
from tqdm.auto import tqdm

from ecoembed.dates import from_days
from ecoembed.embed.infer import check_model_inputs, embed_series, model_series
from ecoembed.embed.pipeline import open_sensor_cube, query_range
from ecoembed.errors import CheckpointError, InputError, OutputExistsError
from ecoembed.io_utils import atomic_path, check_output_location
from ecoembed.sources.cf import georeference
from ecoembed.sources.local import CubeRequest, PathLike
from ecoembed.weights.fusion_checkpoint import LoadedModel
from ecoembed.weights.shipped import load_fusion_model


def _s2_normalisation(loaded: LoadedModel) -> tuple[list[str], np.ndarray, np.ndarray]:
    norm = loaded.normalisation("s2")
    if not norm:
        raise CheckpointError(f"{loaded.path} records no S2 band order/normalisation; it cannot decode reflectance")
    return list(norm["bands"]), np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)


def decode_s2(fusion: Any, embeddings: np.ndarray) -> np.ndarray:
    """Normalised S2 bands ``[N, Q, C]`` decoded by the fusion's S2 head from daily embeddings ``[N, Q, E]`` (NaN rows -> 0)."""
    with torch.no_grad():
        return fusion.reconstruct(torch.from_numpy(np.nan_to_num(embeddings)), "s2").numpy()


def reconstruct_s2(
    s2: PathLike | Sequence[PathLike],
    out: str | os.PathLike[str],
    *,
    s1: PathLike | Sequence[PathLike] | None = None,
    model: str | os.PathLike[str] | None = None,
    s2_values: str | None = None,
    s1_values: str | None = None,
    s1_orbit: str | None = None,
    point: tuple[float, float] | None = None,
    start: str | None = None,
    end: str | None = None,
    chunk_px: int = 64,
    pixel_batch: int = 256,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a daily, cloud-free S2 reflectance cube decoded from the fused embedding.

    Args:
        s2: Sentinel-2 cube file (defines the grid and default date range).
        out: output ``.nc`` or ``.zarr``.
        s1: optional Sentinel-1 cube on the same grid (improves cloudy gaps).
        model: fusion checkpoint (default: the shipped one).
        s2_values, s1_values, s1_orbit, point: as :func:`ecoembed.embed.pipeline.embed`.
        start, end: inclusive date range (YYYY-MM-DD); default the S2 acquisition range.
        chunk_px: block edge in pixels.
        pixel_batch: pixels processed together.
        overwrite: replace an existing ``out``.
        progress: tqdm progress bar.

    Returns:
        ``out``. Reflectance is clipped to [0, 1]; pixels without any usable
        observation are NaN with ``valid=False``.
    """
    out = Path(out)
    if out.suffix not in (".zarr", ".nc"):
        raise InputError(f"--out {out} must end in .zarr or .nc")
    check_output_location(out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"output {out} exists; pass --overwrite to replace it")
    loaded = load_fusion_model(model)
    bands, mean, std = _s2_normalisation(loaded)
    s2_req = CubeRequest.of(s2, "s2", values=s2_values, point=point)
    s2_cube = open_sensor_cube(s2_req)
    s1_cube = (open_sensor_cube(CubeRequest.of(s1, "s1", values=s1_values, orbit=s1_orbit, like=s2_req, point=point))
               if s1 is not None else None)
    check_model_inputs(loaded, {"s2": s2_cube, **({"s1": s1_cube} if s1_cube is not None else {})})
    days = query_range(s2_cube, start, end)
    ny, nx = s2_cube.sizes["y"], s2_cube.sizes["x"]
    synthetic = bool(s2_cube.attrs.get("synthetic", False)) or bool(s1_cube is not None and s1_cube.attrs.get("synthetic", False))

    coords = {"time": from_days(days), "y": s2_cube["y"].values, "x": s2_cube["x"].values}
    template = xr.Dataset(
        {
            **{
                b: (("time", "y", "x"), da.zeros((len(days), ny, nx), chunks=(len(days), chunk_px, chunk_px), dtype=np.float32),
                    {"units": "1", "long_name": f"reconstructed daily surface reflectance {b}"})
                for b in bands
            },
            "valid": (("time", "y", "x"), da.zeros((len(days), ny, nx), chunks=(len(days), chunk_px, chunk_px), dtype=bool)),
        },
        coords=coords,
        attrs={
            "crs": s2_cube.attrs.get("crs", ""), "sensor": "sentinel-2-l2a", "synthetic": synthetic, "resolution_m": 10.0,
            "reconstructed": True, "checkpoint_sha256": loaded.sha256, "model": loaded.path.name,
            "modalities": "s2,s1" if s1_cube is not None else "s2",
        },
    )
    for c in ("x", "y"):
        template[c].attrs = dict(s2_cube[c].attrs)
    template = georeference(template)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".work", dir=out.parent if out.parent.exists() else None))
    try:
        store = work / "cube.zarr"
        template.to_zarr(store, mode="w", compute=False, consolidated=False)
        group = zarr.open_group(str(store), mode="r+")
        blocks = [(y0, x0) for y0 in range(0, ny, chunk_px) for x0 in range(0, nx, chunk_px)]
        fusion = loaded.model.fusion
        for y0, x0 in tqdm(blocks, disable=not progress, desc="reconstruct", unit="block"):
            window = {"y": slice(y0, y0 + chunk_px), "x": slice(x0, x0 + chunk_px)}
            series = {"s2": model_series(loaded, s2_cube.isel(window).load(), "s2")}
            if s1_cube is not None:
                series["s1"] = model_series(loaded, s1_cube.isel(window).load(), "s1")
            emb, empty = embed_series(loaded.model, series, days, pixel_batch=pixel_batch, days_per_slab=64)
            refl = np.clip(decode_s2(fusion, emb) * std + mean, 0.0, 1.0)
            refl[empty] = np.nan
            yx = np.asarray(series["s2"].yx)
            by, bx = min(chunk_px, ny - y0), min(chunk_px, nx - x0)
            cube = np.full((len(days), by, bx, len(bands)), np.nan, np.float32)
            cube[:, yx[:, 0], yx[:, 1], :] = refl.transpose(1, 0, 2)
            region = (slice(None), slice(y0, y0 + by), slice(x0, x0 + bx))
            usable = np.zeros((by, bx), dtype=bool)
            usable[yx[:, 0], yx[:, 1]] = ~empty
            layers = [*((b, cube[..., i]) for i, b in enumerate(bands)), ("valid", np.broadcast_to(usable, (len(days), by, bx)))]
            for name, values in layers:
                array = group[name]
                assert isinstance(array, zarr.Array)
                array[region] = values
        with atomic_path(out) as tmp:
            if out.suffix == ".zarr":
                shutil.move(str(store), str(tmp))
            else:
                ds = xr.open_zarr(store, consolidated=False)
                ds.attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in ds.attrs.items()}
                georeference(ds).to_netcdf(tmp, engine="netcdf4")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out
