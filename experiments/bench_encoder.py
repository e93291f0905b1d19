"""Throughput of the default S2 encoder on this machine, against its matmul FLOP rate.

Run:  .venv/bin/python experiments/bench_encoder.py [--threads 2] [--dates 70]

Prints, for T dates of 10 S2 bands with the default ``S2Encoder`` (inference,
all dates usable):

* the model's FLOPs per pixel series, counted analytically from the layer
  sizes (multiply-add = 2 FLOPs; matmul-type work only: linear layers,
  attention products; element-wise ops, softmax, LayerNorm and the date
  sinusoids are listed separately as "other", not counted), cross-checked
  with ``torch.utils.flop_counter.FlopCounterMode`` (which does not count the
  CPU flash-attention kernel of ``scaled_dot_product_attention``: the two
  attention products are added back and the match is then exact);
* the measured float32 matmul rate of this machine (square matmul, best of N);
* pixel series per second for several batch sizes (best of N repeats), the
  achieved FLOP rate and its ratio to the matmul rate.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ecoembed.models.encoders import S2Encoder
from ecoembed.models.ltae import N_DATE_FEATURES


def analytic_flops_per_series(model: S2Encoder, n_dates: int) -> dict[str, int]:
    """Matmul FLOPs (2 per multiply-add) of one series of ``n_dates`` usable dates."""
    t, c, d, e, ff = n_dates, model.n_channels, model.d_model, model.embed_dim, model.ff_mult
    parts = {
        "value_proj": 2 * t * c * d,
        "date_proj": 2 * t * N_DATE_FEATURES * d,
        "context_qkv": model.n_context_layers * 2 * t * d * 3 * d,
        "context_scores_QK": model.n_context_layers * 2 * t * t * d,
        "context_weights_V": model.n_context_layers * 2 * t * t * d,
        "context_out_proj": model.n_context_layers * 2 * t * d * d,
        "context_ff": model.n_context_layers * 2 * 2 * t * d * ff * d,
        "pool_key_proj": 2 * t * d * d,
        "pool_scores": 2 * t * d,
        "pool_weighted_sum": 2 * t * d,
        "output": 2 * d * e,
    }
    parts["total"] = sum(parts.values())
    return parts


def counted_flops_per_series(model: S2Encoder, n_dates: int, batch: int = 8) -> int:
    """FLOPs per series as counted by torch's FlopCounterMode (matmul-type ops)."""
    x, days, mask = _inputs(batch, n_dates)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x, days, mask)
    return counter.get_total_flops() // batch


def _inputs(batch: int, n_dates: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n_dates, 10, generator=g)
    days = (17900 + 5 * torch.arange(n_dates)).expand(batch, n_dates).contiguous()
    mask = torch.ones(batch, n_dates, dtype=torch.bool)
    return x, days, mask


def matmul_flop_rate(n: int = 2048, repeats: int = 10) -> float:
    """Best float32 FLOP/s of an n x n @ n x n matmul."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def series_per_second(model: S2Encoder, batch: int, n_dates: int, repeats: int = 5) -> float:
    """Best pixel series per second over ``repeats`` timed forward passes (inference mode)."""
    x, days, mask = _inputs(batch, n_dates)
    best = float("inf")
    with torch.inference_mode():
        model(x, days, mask)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x, days, mask)
            best = min(best, time.perf_counter() - t0)
    return batch / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dates", type=int, default=70)
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 32, 64, 128, 256, 1024, 4096])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model) (needs a C++ compiler; ~20 s to compile)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = S2Encoder().eval()
    parts = analytic_flops_per_series(model, args.dates)
    counted = counted_flops_per_series(model, args.dates)
    params = sum(p.numel() for p in model.parameters())
    print(f"S2Encoder default config {model.config()} ({params} parameters), T={args.dates} dates, threads={args.threads}")
    print("analytic FLOPs per series (matmul-type, 2/multiply-add):")
    for k, v in parts.items():
        print(f"  {k:20s} {v:>12,d}")
    attention = parts["context_scores_QK"] + parts["context_weights_V"]
    print(f"FlopCounterMode FLOPs per series: {counted:,d} (analytic/counted = {parts['total'] / counted:.3f})")
    # torch's FlopCounterMode has no formula for the CPU flash-attention kernel behind
    # F.scaled_dot_product_attention, so it misses exactly the two attention products.
    print(f"  counted + attention products (SDPA on CPU is not counted): {counted + attention:,d} "
          f"(analytic/that = {parts['total'] / (counted + attention):.3f})")
    rate = matmul_flop_rate()
    print(f"matmul rate (2048^2 float32, best of 10): {rate / 1e9:.1f} GFLOP/s")
    for batch in args.batches:
        sps = series_per_second(model, batch, args.dates)
        achieved = sps * parts["total"]
        print(f"batch {batch:5d}: {sps:10.0f} series/s  -> {achieved / 1e9:6.2f} GFLOP/s = {achieved / rate:6.1%} of the matmul rate")
    if args.compile:
        compiled = torch.compile(model, dynamic=False)
        for batch in (64, 256):
            sps = series_per_second(compiled, batch, args.dates)  # type: ignore[arg-type]
            achieved = sps * parts["total"]
            print(f"compiled, batch {batch:5d}: {sps:10.0f} series/s  -> {achieved / 1e9:6.2f} GFLOP/s = {achieved / rate:6.1%} of the matmul rate")


if __name__ == "__main__":
    main()
