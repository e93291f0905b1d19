"""Bytes per pixel-day of the embedding cube encodings (issue 21 part 4), on one realistic scene.

Writes a synthetic S2 + S1 scene (default 128 x 128 px at 10 m, one year), embeds it once with the
shipped model as float32 (``ecoembed.embed.embed``, timed: the embed rate for scale-out sizing), then
re-encodes that cube into every encoding with the same functions the block tasks use
(:func:`~ecoembed.sources.embedding_cube.embedding_template`, ``zarr_encoding``, ``encode_int16``,
``encode_int8``; so each store holds the bytes ``embed(encoding=...)`` would write) and prints, per
encoding: bytes per pixel-day (embedding + scale + quality layers, chunk files only), GB per km2 per
year at 10 m (10,000 px per km2, 365 days) and the max abs decode error against float32. Rows
"before" use xarray's default codec (zstd level 0, time slowest), as cubes were stored before issue 21.

    .venv/bin/python experiments/bench_cube_size.py --size 128 --out /tmp/bench_cube   # ~5-10 min on 2 cores
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from ecoembed.embed import embed
from ecoembed.sources.embedding_cube import (
    ENCODINGS,
    QUALITY_LAYERS,
    embedding_template,
    encode_int8,
    encode_int16,
    netcdf_encoding,
    open_embeddings,
    zarr_encoding,
)
from ecoembed.sources.synthetic import make_scene, save_cube

PX_PER_KM2 = 10_000  # 10 m pixels
DAYS_PER_YEAR = 365


def chunk_bytes(store: Path, variables: list[str]) -> int:
    """Bytes of the chunk files of ``variables`` in a Zarr v3 store (metadata excluded)."""
    return sum(f.stat().st_size for v in variables if (store / v).exists()
               for f in (store / v).rglob("*") if f.is_file() and f.name != "zarr.json")


def reencode(lossless: Path, out: Path, encoding: str, compact: bool) -> None:
    """Write ``lossless`` (a float32 cube) as ``encoding`` into ``out``, one time chunk at a time, as block tasks do."""
    src = xr.open_zarr(lossless, consolidated=False)
    s2_like = xr.Dataset(coords={"y": src["y"], "x": src["x"]})
    days_per_chunk, chunk_px = int(src.attrs["days_per_chunk"]), int(src.attrs["chunk_px"])
    days = src["time"].values.astype("datetime64[D]").astype(np.int64)
    attrs = {**src.attrs, "embedding_encoding": ENCODINGS[encoding]}
    tmpl = embedding_template(s2_like, days, src.sizes["feature"], chunk_px, days_per_chunk, encoding, attrs)
    tmpl.to_zarr(out, mode="w", compute=False, consolidated=False, encoding=zarr_encoding(tmpl, compact=compact), zarr_format=3)
    group = zarr.open_group(str(out), mode="r+")
    for d0 in range(0, src.sizes["time"], days_per_chunk):
        window = slice(d0, d0 + days_per_chunk)
        slab = np.asarray(src["embedding"][window].values, np.float32)  # stored (time, feature, y, x)
        if encoding == "int16":
            group["embedding"][window] = encode_int16(slab)
        elif encoding == "int8":
            q, scale = encode_int8(slab.transpose(0, 2, 3, 1))
            group["embedding"][window] = np.ascontiguousarray(q.transpose(0, 3, 1, 2))
            group["embedding_scale"][window] = scale
        else:
            group["embedding"][window] = slab
        for layer in QUALITY_LAYERS:
            group[layer][window] = src[layer][window].values
    group.attrs["complete"] = True


def max_abs_error(lossless: Path, other: Path) -> float:
    a, b = open_embeddings(lossless)["embedding"], open_embeddings(other)["embedding"]
    worst = 0.0
    for d0 in range(0, a.sizes["time"], 64):
        x, y = a[d0:d0 + 64].values, b[d0:d0 + 64].values
        assert np.array_equal(np.isnan(x), np.isnan(y))
        if np.isfinite(x).any():
            worst = max(worst, float(np.nanmax(np.abs(x - y))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="scene edge (pixels)")
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", default="2019-12-31")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_cube"))
    args = parser.parse_args()
    root = args.out
    root.mkdir(parents=True, exist_ok=True)
    scene = make_scene(size_px=args.size, start=args.start, end=args.end, seed=args.seed)
    save_cube(scene.s2, root / "s2.nc")
    save_cube(scene.s1, root / "s1.nc")
    lossless = root / "float32.zarr"
    t0 = time.perf_counter()
    res = embed(root / "s2.nc", lossless, s1=root / "s1.nc", start=args.start, end=args.end, encoding="float32",
                progress=False, overwrite=True)
    seconds = time.perf_counter() - t0
    pixel_days = res.n_pixels * res.n_days
    print(f"scene {args.size} x {args.size} px, {res.n_days} days, S2+S1, shipped model ({res.checkpoint_sha256[:12]}), "
          f"E = {xr.open_zarr(lossless, consolidated=False).sizes['feature']}")
    print(f"embed (float32): {seconds:.0f} s wall = {pixel_days / seconds:,.0f} pixel-days/s on this machine")
    rows = []
    for encoding, compact, label in (("int16", True, "int16 (default)"), ("int8", True, "int8"), ("float32", True, "float32"),
                                     ("int8", False, "int8 before issue 21"), ("float32", False, "float32 before issue 21")):
        store = root / f"{label.split()[0]}_{'compact' if compact else 'before'}.zarr"
        if store.exists():
            shutil.rmtree(store)
        reencode(lossless, store, encoding, compact)
        variables = ["embedding", "embedding_scale", *QUALITY_LAYERS]
        total = chunk_bytes(store, variables)
        rows.append((label, chunk_bytes(store, ["embedding", "embedding_scale"]) / pixel_days, total / pixel_days,
                     total / pixel_days * PX_PER_KM2 * DAYS_PER_YEAR / 1e9, max_abs_error(lossless, store)))
        if encoding == "int16":
            ds = xr.open_zarr(store, consolidated=False)  # as embed() assembles a .nc output from its work store
            ds.attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in ds.attrs.items()}
            nc = root / "int16.nc"
            ds.to_netcdf(nc, engine="netcdf4", encoding=netcdf_encoding(ds))
            nc_bytes = nc.stat().st_size
    print(f"{'encoding':26s} {'emb B/px-day':>12s} {'total B/px-day':>15s} {'GB/km2/yr':>10s} {'max abs err':>12s}")
    for label, emb_b, tot_b, gb, err in rows:
        print(f"{label:26s} {emb_b:12.2f} {tot_b:15.2f} {gb:10.3f} {err:12.6f}")
    print(f"int16 as NetCDF (zlib 4 + shuffle, whole file): {nc_bytes / pixel_days:.2f} B/px-day, "
          f"{nc_bytes / pixel_days * PX_PER_KM2 * DAYS_PER_YEAR / 1e9:.3f} GB/km2/yr")


if __name__ == "__main__":
    main()
