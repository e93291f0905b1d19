"""The fused model's real inference path against this machine's matmul FLOP rate (issue 21, part 2).

Run:  taskset -c 0,1 .venv/bin/python experiments/bench_inference.py [--threads 2] [--pixels 1024]

What is timed is :func:`ecoembed.embed.infer.embed_series`, the code that every
``embed`` block runs: the frozen S2 and S1 encoders, the fusion network's
self-attention over all tokens of a pixel (once per pixel) and the
cross-attention queries of 365 daily embeddings, with the shipped model, pixel
batch 256 and 64-day query slabs (the ``embed`` defaults). Inputs are
**synthetic** (random normalised values; cost does not depend on them): one
year of 73 S2 dates (every 5 days, ~40 % of them cloudy per pixel) and 61 S1
dates (every 6 days, all valid).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on the
MATH attention backend (the fused CPU kernels are invisible to the counter)
over the same call; the time is the best of N repeats with the default kernels.
The matmul rate is a 2048^2 float32 matmul in the same process (best of 10);
the share printed is achieved FLOP/s over that rate.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch
from bench_encoder import matmul_flop_rate  # the same square-matmul rate as the encoder benchmark
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from ecoembed.embed.infer import embed_series
from ecoembed.training.fusion_data import ArraySeries

FIRST_DAY = 19358  # 2023-01-01


def synthetic_series(n_pixels: int, seed: int = 0, *, s2_dates: int = 73, s1_dates: int = 61,
                     cloud_fraction: float = 0.4) -> dict[str, ArraySeries]:
    """One synthetic pixel-year per pixel: S2 every 5 days (cloudy at random), S1 every 6 days, alternating orbits."""
    rng = np.random.default_rng(seed)
    s2 = ArraySeries(values=rng.standard_normal((n_pixels, s2_dates, 10)).astype(np.float32),
                days=FIRST_DAY + 5 * np.arange(s2_dates, dtype=np.int64),
                valid=rng.random((n_pixels, s2_dates)) > cloud_fraction)
    s1 = ArraySeries(values=rng.standard_normal((n_pixels, s1_dates, 2)).astype(np.float32),
                days=FIRST_DAY + 6 * np.arange(s1_dates, dtype=np.int64),
                valid=np.ones((n_pixels, s1_dates), bool), orbit=np.arange(s1_dates, dtype=np.int64) % 2)
    return {"s2": s2, "s1": s1}


def counted_flops(model: Any, series: dict[str, ArraySeries], days: np.ndarray, **kwargs: Any) -> int:
    """Matmul-type FLOPs of one ``embed_series`` call (MATH attention backend, so attention products count)."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        embed_series(model, series, days, **kwargs)
    return int(counter.get_total_flops())


def best_time(fn: Any, repeats: int) -> float:
    """Best wall time (s) of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run_inference_benchmark(n_pixels: int = 1024, threads: int = 2, repeats: int = 3, model: Any = None,
                            pixel_batch: int = 256, days_per_slab: int = 64) -> dict[str, float]:
    """Figures of the fused inference path: matmul rate, FLOPs per pixel-year, achieved rate and its share."""
    torch.set_num_threads(threads)
    if model is None:
        from ecoembed.weights.shipped import load_fusion_model

        model = load_fusion_model(None).model.eval()
    series = synthetic_series(n_pixels)
    days = FIRST_DAY + np.arange(365, dtype=np.int64)
    kwargs = {"pixel_batch": pixel_batch, "days_per_slab": days_per_slab}
    flops = counted_flops(model, synthetic_series(min(n_pixels, pixel_batch), seed=1), days, **kwargs)
    flops_per_pixel = flops / min(n_pixels, pixel_batch)
    rate = matmul_flop_rate()
    seconds = best_time(lambda: embed_series(model, series, days, **kwargs), repeats)
    achieved = flops_per_pixel * n_pixels / seconds
    return {
        "threads": threads, "pixels": n_pixels, "pixel_batch": pixel_batch, "days_per_slab": days_per_slab,
        "matmul_gflops": rate / 1e9, "flops_per_pixel_year": flops_per_pixel,
        "seconds": seconds, "s_per_pixel_year": seconds / n_pixels, "encoder_gflops": achieved / 1e9,
        "share_of_matmul": achieved / rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pixels", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pixel-batch", type=int, default=256)
    parser.add_argument("--days-per-slab", type=int, default=64)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    res = run_inference_benchmark(args.pixels, args.threads, args.repeats, pixel_batch=args.pixel_batch,
                                  days_per_slab=args.days_per_slab)
    print(f"fused inference (shipped model, S2 73 dates + S1 61 dates -> 365 daily embeddings, SYNTHETIC inputs), "
          f"{res['pixels']} pixels, pixel batch {res['pixel_batch']}, slab {res['days_per_slab']} days, {res['threads']} threads")
    print(f"matmul rate (2048^2 float32, best of 10): {res['matmul_gflops']:.1f} GFLOP/s")
    print(f"FLOPs per pixel-year (FlopCounterMode, MATH attention): {res['flops_per_pixel_year'] / 1e6:.2f} MFLOP")
    print(f"time: {res['seconds']:.3f} s = {res['s_per_pixel_year'] * 1e3:.3f} ms per pixel-year "
          f"-> {res['encoder_gflops']:.1f} GFLOP/s = {res['share_of_matmul']:.1%} of the matmul rate")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
