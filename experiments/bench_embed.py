"""Benchmark `ecoembed embed`: wall time, peak RSS, pixel-days/s; memory stays bounded by the block.

Run (from the repository root; ~10 min on 2 cores, writes ~6 GB under --work)::

    .venv/bin/python experiments/bench_embed.py [--size 256] [--chunk-px 64] [--work /tmp/bench_embed]

1. Builds a synthetic scene (``make_scene``, ``--size`` px, one year 2019) and
   saves its S2/S1 cubes as NetCDF.
2. Runs ``ecoembed embed --s2 --s1 --out X.zarr`` in a child process (2 torch
   threads) and reads that child's own peak RSS (``os.wait4`` rusage), wall
   time and pixel-days/s (pixels x output days / wall).
3. Memory bound: runs the same command on a scene of 2x2 blocks (4x the block
   budget) and on the full scene; peak RSS should not grow with the scene.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ecoembed.sources.local import save_cube
from ecoembed.sources.synthetic import make_scene

ROOT = Path(__file__).resolve().parents[1]


def run_embed(s2: Path, s1: Path, out: Path, chunk_px: int, extra: list[str]) -> dict[str, float]:
    """Run the CLI in a child process; its wall time (s), peak RSS (MB) and pixel-days/s (from the output's size)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "ecoembed.cli", "embed", "--s2", str(s2), "--s1", str(s1), "--out", str(out), "--chunk-px", str(chunk_px), *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"embed failed with status {status}: {' '.join(cmd)}")
    import xarray as xr

    sizes = xr.open_zarr(out, consolidated=False).sizes
    pixel_days = sizes["time"] * sizes["y"] * sizes["x"]
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "pixel_days_per_s": pixel_days / wall, "days": sizes["time"]}


def make_inputs(size: int, work: Path, seed: int) -> tuple[Path, Path]:
    s2, s1 = work / f"s2_synthetic_{size}px.nc", work / f"s1_synthetic_{size}px.nc"
    if not (s2.exists() and s1.exists()):
        t0 = time.perf_counter()
        scene = make_scene(size_px=size, start="2019-01-01", end="2019-12-31", seed=seed)
        save_cube(scene.s2, s2)
        save_cube(scene.s1, s1)
        print(f"synthetic {size}x{size} px scene built and saved in {time.perf_counter() - t0:.1f} s")
    return s2, s1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256, help="scene edge in pixels")
    parser.add_argument("--chunk-px", type=int, default=64)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_embed"))
    parser.add_argument("--int8", action="store_true", help="also time --int8 storage")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}

    small = 2 * args.chunk_px  # 2 x 2 blocks = 4x the block (memory) budget
    s2s, s1s = make_inputs(small, args.work, seed=7)
    r = run_embed(s2s, s1s, args.work / "small.zarr", args.chunk_px, [])
    results[f"{small}x{small} px (4 blocks)"] = r

    s2, s1 = make_inputs(args.size, args.work, seed=8)
    r = run_embed(s2, s1, args.work / "full.zarr", args.chunk_px, [])
    n_blocks = (args.size // args.chunk_px) ** 2
    size_gb = sum(f.stat().st_size for f in (args.work / "full.zarr").rglob("*") if f.is_file()) / 1e9
    results[f"{args.size}x{args.size} px ({n_blocks} blocks)"] = {**r, "store_gb": size_gb}
    shutil.rmtree(args.work / "full.zarr", ignore_errors=True)
    if args.int8:
        r = run_embed(s2, s1, args.work / "full8.zarr", args.chunk_px, ["--int8"])
        size8 = sum(f.stat().st_size for f in (args.work / "full8.zarr").rglob("*") if f.is_file()) / 1e9
        results[f"{args.size}x{args.size} px --int8"] = {**r, "store_gb": size8}
        shutil.rmtree(args.work / "full8.zarr", ignore_errors=True)

    inputs = "make_scene + sources.open_cube"
    print(f"ecoembed embed, S2+S1, one year of daily outputs, chunk {args.chunk_px} px, cpus {os.cpu_count()}, inputs: {inputs}")
    print(f"{'scene':28s} {'days':>5s} {'wall s':>8s} {'peak RSS MB':>12s} {'pixel-days/s':>13s} {'store GB':>9s}")
    for name, r in results.items():
        print(f"{name:28s} {r['days']:5d} {r['wall_s']:8.1f} {r['peak_rss_mb']:12.0f} {r['pixel_days_per_s']:13.0f} "
              f"{r.get('store_gb', float('nan')):9.2f}")
    (args.work / "bench_embed.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
