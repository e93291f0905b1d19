"""Issue 21 in one run: the machine, the encoder, the peers, the pipeline, the cube, the demo.

Run (from the repository root, on an otherwise idle machine; ~10-15 min on 2 cores)::

    taskset -c 0,1 .venv/bin/python experiments/bench_performance.py [--work /tmp/bench_perf] [--json out.json]

Prints, each figure measured in this process (or its child, for the demo) and
each ratio between figures of the same run:

1. **matmul**: float32 2048^2 matmul GFLOP/s (best of 10).
2. **encoder**: the fused model's real inference path
   (:func:`ecoembed.embed.infer.embed_series`, shipped model, S2 73 + S1 61
   dates -> 365 daily embeddings, pixel batch 256, 64-day slabs), FLOPs counted
   with ``FlopCounterMode`` on the MATH attention backend; GFLOP/s and its share
   of the matmul rate, eager and (``--compile``) with the compiled query.
3. **peers**: ``experiments/bench_peers.py`` (Presto-class transformer and
   OmniSat-style LTAE, same dates and 12 monthly composites): peer / ecoembed
   seconds per pixel-year.
4. **embed end to end** vs **encoder only** on the same synthetic scene
   (``make_scene``, ``--scene-px`` px, one year, S2+S1 NetCDF files): ``embed()``
   pixel-days/s over ``embed_series`` pixel-days/s on the same blocks already in
   memory, with a per-phase profile of ``embed`` (read, mask + normalise,
   contextualise, query, write, verify) from timers wrapped around the
   pipeline's own functions.
5. **cube size**: bytes per pixel-day of the default cube written in 4, and GB
   per km² per year at 10 m (10,000 pixels per km², 365 days).
6. **demo**: ``ecoembed demo`` wall time in a child process and its per-phase
   seconds (``demo_summary.json``), interpretation / fit-gpp.

Inputs are synthetic (the scene, the pixel series); costs do not depend on values.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_inference
import bench_peers

from ecoembed.embed import pipeline
from ecoembed.embed.infer import embed_series, model_series
from ecoembed.sources.local import open_cube, save_cube
from ecoembed.sources.synthetic import make_scene
from ecoembed.weights.shipped import load_fusion_model

ROOT = Path(__file__).resolve().parents[1]
PIXELS_PER_KM2 = 10_000
"""10 m pixels in one km²."""

PHASES = {  # pipeline function -> phase (timers wrapped around the pipeline's own functions; nested time is subtracted)
    "_block_series": "read",
    "model_series": "mask + normalise",
    "contextualize_pixels": "contextualise",
    "query_contexts": "query",
    "days_to_nearest": "quality layers",
    "block_digest": "verify (digest re-read)",
    "_run_block": "write (not overlapped: waiting for the writer thread, slab setup)",
}


def _timed_wrappers(totals: dict[str, float]) -> dict[str, Any]:
    """Replace the pipeline's phase functions by timing wrappers; returns the originals (to restore)."""
    originals: dict[str, Any] = {}
    local = threading.local()  # per thread: time spent in nested timed calls, per open frame

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                total = time.perf_counter() - t0
                nested = stack.pop()
                phase = PHASES[name]
                if threading.current_thread() is not threading.main_thread():
                    phase += " [writer thread, overlapped]"
                totals[phase] += total - nested  # own time: nested phases are booked to themselves
                if stack:
                    stack[-1] += total
        return timed

    for name in PHASES:
        if hasattr(pipeline, name):
            originals[name] = getattr(pipeline, name)
            setattr(pipeline, name, wrap(name, originals[name]))
    return originals


def run_embed_benchmark(work: Path, size_px: int = 128, chunk_px: int = 64, threads: int = 2,
                        compile: bool = False) -> dict[str, Any]:
    """``embed()`` end to end vs ``embed_series`` on the same blocks in memory; per-phase profile; cube bytes."""
    torch.set_num_threads(threads)
    work.mkdir(parents=True, exist_ok=True)
    s2p, s1p = work / f"s2_synthetic_{size_px}px.nc", work / f"s1_synthetic_{size_px}px.nc"
    if not (s2p.exists() and s1p.exists()):
        scene = make_scene(size_px=size_px, start="2019-01-01", end="2019-12-31", seed=8)
        save_cube(scene.s2, s2p)
        save_cube(scene.s1, s1p)
    loaded = load_fusion_model(None)
    model = loaded.model.eval()
    s2 = open_cube(s2p, "s2")
    s1 = open_cube(s1p, "s1", like=s2)
    days = pipeline.query_range(s2, None, None)
    blocks = []
    for y0 in range(0, size_px, chunk_px):
        for x0 in range(0, size_px, chunk_px):
            window = {"y": slice(y0, y0 + chunk_px), "x": slice(x0, x0 + chunk_px)}
            blocks.append({"s2": model_series(loaded, s2.isel(window).load(), "s2"),
                           "s1": model_series(loaded, s1.isel(window).load(), "s1")})
    n_pixels = size_px * size_px
    pixel_days = n_pixels * len(days)

    def encoder_only() -> None:
        for series in blocks:
            embed_series(model, series, days, pixel_batch=256, days_per_slab=64, compile=compile)

    encoder_only()  # warm-up (and compilation)
    t0 = time.perf_counter()
    encoder_only()
    enc_s = time.perf_counter() - t0

    out = work / "bench.zarr"
    totals: dict[str, float] = defaultdict(float)
    kwargs: dict[str, Any] = {"chunk_px": chunk_px, "progress": False, "overwrite": True}
    if compile:
        kwargs["compile"] = True
    originals = _timed_wrappers(totals)
    try:
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        pipeline.embed(s2p, out, s1=s1p, **kwargs)
        e2e_s = time.perf_counter() - t0
    finally:
        for name, fn in originals.items():
            setattr(pipeline, name, fn)
    totals["outside blocks (setup, open, publish)"] = e2e_s - sum(v for k, v in totals.items() if "overlapped" not in k)
    store_bytes = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    attrs = _store_attrs(out)
    bytes_per_pixel_day = store_bytes / pixel_days
    return {
        "scene_px": size_px, "chunk_px": chunk_px, "days": len(days), "pixels": n_pixels,
        "encoder_only_s": enc_s, "embed_s": e2e_s,
        "encoder_only_pixel_days_per_s": pixel_days / enc_s, "embed_pixel_days_per_s": pixel_days / e2e_s,
        "embed_over_encoder": enc_s / e2e_s, "phases_s": dict(totals),
        "store_bytes": store_bytes, "bytes_per_pixel_day": bytes_per_pixel_day,
        "gb_per_km2_year": bytes_per_pixel_day * PIXELS_PER_KM2 * 365 / 1e9,
        "embedding_encoding": attrs.get("embedding_encoding", "?"),
    }


def _store_attrs(path: Path) -> dict[str, Any]:
    import xarray as xr

    with xr.open_zarr(path, consolidated=False) as ds:
        return dict(ds.attrs)


def run_demo_benchmark(work: Path) -> dict[str, Any]:
    """``ecoembed demo`` in a child process: wall time, per-phase seconds, interpretation / fit-gpp."""
    out = work / "demo"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ecoembed.cli", "demo", "--out", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"demo failed ({proc.returncode}): {proc.stderr[-2000:]}")
    summary = json.loads((out / "demo_summary.json").read_text(encoding="utf-8"))
    res: dict[str, Any] = {"demo_wall_s": wall, "demo_seconds": summary.get("seconds", {})}
    timings = out / "run" / "timings.json"
    if timings.is_file():
        res["fit_gpp_seconds"] = json.loads(timings.read_text(encoding="utf-8"))
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_perf"), help="scratch folder (scene, cube, demo)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pixels", type=int, default=1024, help="pixels of the encoder and peer benchmarks")
    parser.add_argument("--scene-px", type=int, default=128, help="edge of the end-to-end scene (pixels)")
    parser.add_argument("--compile", action="store_true", help="also time the compiled query (tens of seconds to compile)")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    res: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__, "cpus": os.cpu_count()}
    t_start = time.perf_counter()

    enc = bench_inference.run_inference_benchmark(args.pixels, args.threads)
    res["encoder"] = enc
    print(f"[1] matmul (2048^2 float32, best of 10): {enc['matmul_gflops']:.1f} GFLOP/s")
    print(f"[2] encoder (fused inference path, eager): {enc['flops_per_pixel_year'] / 1e6:.1f} MFLOP per pixel-year, "
          f"{enc['s_per_pixel_year'] * 1e3:.3f} ms per pixel-year, {enc['encoder_gflops']:.1f} GFLOP/s = "
          f"{enc['share_of_matmul']:.1%} of the matmul rate (target >= 50 %)")
    if args.compile:
        from ecoembed.embed import infer

        model = load_fusion_model(None).model.eval()
        series = bench_inference.synthetic_series(args.pixels)
        qdays = bench_inference.FIRST_DAY + np.arange(365, dtype=np.int64)
        embed_series(model, series, qdays, pixel_batch=256, days_per_slab=64, compile=True)  # compile
        secs = bench_inference.best_time(lambda: embed_series(model, series, qdays, pixel_batch=256, days_per_slab=64,
                                                              compile=True), 3)
        rate = bench_inference.matmul_flop_rate()
        gflops = enc["flops_per_pixel_year"] * args.pixels / secs / 1e9
        res["encoder_compiled"] = {"seconds": secs, "s_per_pixel_year": secs / args.pixels, "gflops": gflops,
                                   "matmul_gflops": rate / 1e9, "share_of_matmul": gflops * 1e9 / rate}
        infer._COMPILED.clear()
        print(f"    compiled query: {secs / args.pixels * 1e3:.3f} ms per pixel-year, {gflops:.1f} GFLOP/s = "
              f"{gflops * 1e9 / rate:.1%} of the matmul rate measured again now ({rate / 1e9:.1f} GFLOP/s)")

    peers = bench_peers.run_peer_benchmark(args.pixels, args.threads)
    res["peers"] = peers
    print("[3] peers, seconds per pixel-year (peer's one annual embedding vs ecoembed's 365 daily ones):")
    print("    " + bench_peers.report(peers).replace("\n", "\n    "))

    e2e = run_embed_benchmark(args.work, args.scene_px, threads=args.threads)
    res["embed"] = e2e
    print(f"[4] embed end to end, {e2e['scene_px']}x{e2e['scene_px']} px x {e2e['days']} days (SYNTHETIC scene, S2+S1 NetCDF): "
          f"{e2e['embed_pixel_days_per_s']:,.0f} pixel-days/s vs encoder only {e2e['encoder_only_pixel_days_per_s']:,.0f} "
          f"pixel-days/s on the same blocks in memory = {e2e['embed_over_encoder']:.2f} (target >= 0.7)")
    print("    per-phase profile of embed (s):")
    for phase, secs in e2e["phases_s"].items():
        print(f"      {phase:40s} {secs:7.2f}  ({secs / e2e['embed_s']:.0%})")
    print(f"[5] default cube ({e2e['embedding_encoding']}): {e2e['bytes_per_pixel_day']:.1f} bytes per pixel-day = "
          f"{e2e['gb_per_km2_year']:.3f} GB per km² per year (target <= 0.1)")

    if not args.skip_demo:
        demo = run_demo_benchmark(args.work)
        res["demo"] = demo
        parts = ", ".join(f"{k} {v:.1f}" for k, v in demo["demo_seconds"].items())
        print(f"[6] ecoembed demo: {demo['demo_wall_s']:.1f} s wall in a child process (target < 60 s); phases (s): {parts}")
    print(f"(benchmark run took {time.perf_counter() - t_start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
