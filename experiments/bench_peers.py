"""Inference cost of ecoembed against two peer pixel time-series encoders, in one process, on the same pixels.

Run (from the repository root; about 3 minutes on 2 idle cores, up to twice that on a shared machine)::

    taskset -c 0,1 .venv/bin/python experiments/bench_peers.py [--pixels 1024] [--threads 2] [--repeats 3] [--dense] [--compile] [--json out.json]

or from Python: ``run_peer_benchmark(n_pixels=1024, threads=2, repeats=3) -> dict``.

Models (peers in ``experiments/peers.py``, written from the papers, untrained):

* **Presto** (Tseng et al. 2023): embedding 128, depth 2, 8 heads, MLP x4,
  one token per (timestep, channel group) with Presto's S1/S2/NDVI groups
  (S1; B2-B4; B5-B7; B8; B8A; B11-B12; NDVI: 7 per timestep) + one location
  token, month + channel-group + timestep encodings, mean-pooled to one
  annual 128-d embedding per pixel. Tokens of cloudy S2 dates are dropped
  before the encoder (packed per pixel, cut to the batch's longest pixel,
  padding masked): the efficient way to run it. ``presto_dense`` (with
  ``--dense``) is the same model fed every token (masked keys, nothing
  dropped), for reference.
* **LTAE** (Garnot & Landrieu 2020) in OmniSat's per-modality projector
  configuration (Astruc et al. 2024): input MLP [C, 32, 128, 256], 16 heads
  of d_k 8 (one master query each), day-of-year encoding, output MLP
  [256, 512, 256]; one for S2 and one for S1, concatenated (512-d annual
  embedding per pixel); cloudy S2 dates masked.
* **ecoembed**: the shipped fused S2 + S1 model
  (``load_fusion_model(None)``) through the public
  ``ecoembed.embed.infer.embed_series``: 365 daily 64-d embeddings per
  pixel-year, from the per-acquisition inputs.

Scenarios:

1. ``same``: one year of acquisitions, 73 S2 dates (every 5 days) and 61 S1
   dates (every 6 days, alternating orbits). ecoembed and the LTAE see them
   as they are. Presto needs S1 and S2 on common timesteps: its timesteps
   are the 73 S2 dates and its S1 token at each is the nearest S1
   acquisition (at most 3 days away), so it has 73 x 7 + 1 = 512 tokens
   before cloudy ones are dropped.
2. ``monthly``: the peers at their native 12 monthly composites (per-month
   means of the valid acquisitions, taken as gap-free: nothing masked);
   ecoembed still takes the per-acquisition inputs of scenario 1 (it has no
   monthly mode) and still outputs 365 daily embeddings.

What is synthetic: all pixel values (random normalised values; the cost does
not depend on them) and the S2 validity mask, drawn per date as a scene
would be: 50 % clear dates (97 % of pixels valid), 30 % cloudy (3 % valid),
20 % partly cloudy (50 % valid), about 40 % of pixel-dates invalid. S1 is
always valid. Nothing is trained: the peers have random weights.

Measured: seconds per pixel-year (best of ``repeats`` full passes over all
pixels, the models' passes interleaved, after a warm-up that also picks each
model's best batch size among :data:`BATCHES` (best of 2) on a probe of as many pixels
as its largest candidate), pixels/s, matmul-type FLOPs per pixel counted on 64 pixels with
``torch.utils.flop_counter.FlopCounterMode`` (MATH attention backend and the
nn.TransformerEncoderLayer fast path off while counting, so attention
products are counted; element-wise work, softmax and norms are not), the
achieved GFLOP/s, the machine's float32 matmul rate, and the ratios peer
s/pixel-year / ecoembed s/pixel-year (issue 21 targets: >= 2 on the same
dates, >= 1 against monthly composites, for Presto). Peers are timed on
prepared tensors (composites, NDVI and the S1 alignment are made before
timing); ecoembed is timed through ``embed_series`` with its numpy inputs
and numpy output, as a user calls it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PRESTO_GROUPS, LTAEPair, PrestoEncoder, n_parameters

from ecoembed.embed.infer import embed_series
from ecoembed.weights.shipped import load_fusion_model

YEAR_START = "2021-01-01"
S2_EVERY_DAYS, S1_EVERY_DAYS = 5, 6
BATCHES = {"presto": (16, 64, 256), "presto_dense": (16, 64, 256), "ltae": (256, 1024, 4096), "ecoembed": (128, 256, 512)}
"""Batch sizes tried per model (ecoembed: ``pixel_batch`` of ``embed_series``, with ``days_per_slab`` 64)."""
DAYS_PER_SLAB = 64
FLOP_COUNT_PIXELS = 64
"""Pixels whose FLOPs are counted (one batch; Presto's kept tokens are then those of a batch of 64 pixels)."""


@dataclass
class Series:
    """What ``embed_series`` reads of a modality (the attributes of ``ecoembed.sources.chips.PixelSeries``)."""

    values: np.ndarray  # float32 [N, T, C], normalised, 0 where invalid
    days: np.ndarray  # int64 [T], days since 1970-01-01
    valid: np.ndarray  # bool [N, T]
    orbit: np.ndarray | None = None  # int64 [T] (S1: 0 ascending, 1 descending)
    band_mask: np.ndarray | None = None

    def head(self, n: int) -> Series:
        return Series(self.values[:n], self.days, self.valid[:n], self.orbit, self.band_mask)


def synthetic_series(n_pixels: int, s2_norm: dict[str, Any], seed: int = 0) -> dict[str, Series]:
    """SYNTHETIC S2 + S1 pixel series of one year (normalised random values, scene-like S2 cloud mask)."""
    rng = np.random.default_rng(seed)
    start = int(np.datetime64(YEAR_START, "D").astype(np.int64))
    s2_days = start + 2 + np.arange(0, 365, S2_EVERY_DAYS, dtype=np.int64)
    s1_days = start + 1 + np.arange(0, 365, S1_EVERY_DAYS, dtype=np.int64)
    state = rng.choice(3, size=len(s2_days), p=[0.5, 0.3, 0.2])  # clear, cloudy, partly cloudy
    p_valid = np.array([0.97, 0.03, 0.5])[state]
    s2_valid = rng.random((n_pixels, len(s2_days))) < p_valid
    s2 = rng.standard_normal((n_pixels, len(s2_days), len(s2_norm["bands"])), dtype=np.float32)
    s2[~s2_valid] = 0.0
    s1 = rng.standard_normal((n_pixels, len(s1_days), 2), dtype=np.float32)
    return {
        "s2": Series(s2, s2_days, s2_valid),
        "s1": Series(s1, s1_days, np.ones((n_pixels, len(s1_days)), bool), orbit=np.arange(len(s1_days), dtype=np.int64) % 2),
    }


def _ndvi(s2: np.ndarray, norm: dict[str, Any]) -> np.ndarray:
    """NDVI ``[N, T]`` of normalised S2 values (denormalised with the checkpoint's statistics)."""
    bands = list(norm["bands"])
    red, nir = (s2[..., bands.index(b)] * norm["std"][bands.index(b)] + norm["mean"][bands.index(b)] for b in ("B04", "B08"))
    red, nir = np.clip(red, 1e-3, 1.0), np.clip(nir, 1e-3, 1.0)
    return ((nir - red) / (nir + red)).astype(np.float32)


def _months(days: np.ndarray) -> np.ndarray:
    return (days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12).astype(np.int64)


def _doy(days: np.ndarray) -> np.ndarray:
    d = days.astype("datetime64[D]")
    return (d - d.astype("datetime64[Y]")).astype(np.int64).astype(np.float32)


def _monthly(values: np.ndarray, valid: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Per-month mean of the valid values ``[N, 12, C]`` (0 for a month without any: composites taken as gap-free)."""
    month = _months(days)
    out = np.zeros((values.shape[0], 12, values.shape[2]), np.float32)
    for m in range(12):
        sel = month == m
        w = valid[:, sel].astype(np.float32)[..., None]
        out[:, m] = (values[:, sel] * w).sum(1) / np.maximum(w.sum(1), 1.0)
    return out


def peer_inputs(series: dict[str, Series], s2_norm: dict[str, Any]) -> dict[str, dict[str, dict[str, torch.Tensor | None]]]:
    """Tensors of each peer in each scenario (prepared once, outside the timing)."""
    s2, s1 = series["s2"], series["s1"]
    n = s2.values.shape[0]
    latlon = torch.tensor([[50.6, 4.7]]).expand(n, 2).contiguous()  # one location (cost does not depend on it)
    ndvi = _ndvi(s2.values, s2_norm)
    nearest_s1 = np.abs(s2.days[:, None] - s1.days[None, :]).argmin(1)
    presto_x = np.concatenate([s1.values[:, nearest_s1], s2.values, ndvi[..., None]], axis=-1)
    usable = np.repeat(s2.valid[..., None], len(PRESTO_GROUPS), axis=-1)
    usable[..., 0] = s1.valid[:, nearest_s1]  # the S1 group
    s2_month = _monthly(s2.values, s2.valid, s2.days)
    s1_month = _monthly(s1.values, s1.valid, s1.days)
    ndvi_month = _monthly(ndvi[..., None], s2.valid, s2.days)
    mid_month = torch.tensor([15.0 + 30.4 * m for m in range(12)])
    t = torch.as_tensor
    return {
        "same": {
            "presto": {"x": t(presto_x), "months": t(_months(s2.days)), "latlon": latlon, "usable": t(usable)},
            "ltae": {"s2": t(s2.values), "s2_doy": t(_doy(s2.days)), "s2_usable": t(s2.valid),
                     "s1": t(s1.values), "s1_doy": t(_doy(s1.days)), "s1_usable": None},
        },
        "monthly": {
            "presto": {"x": t(np.concatenate([s1_month, s2_month, ndvi_month], axis=-1)), "months": torch.arange(12), "latlon": latlon, "usable": None},
            "ltae": {"s2": t(s2_month), "s2_doy": mid_month, "s2_usable": None, "s1": t(s1_month), "s1_doy": mid_month, "s1_usable": None},
        },
    }


_PER_PIXEL = {"x", "latlon", "usable", "s2", "s2_usable", "s1", "s1_usable"}


def _slice(inputs: dict[str, torch.Tensor | None], lo: int, hi: int) -> dict[str, torch.Tensor | None]:
    return {k: (v[lo:hi] if k in _PER_PIXEL and v is not None else v) for k, v in inputs.items()}


def peer_runner(model: torch.nn.Module, inputs: dict[str, torch.Tensor | None], width: int) -> Callable[[int, int], np.ndarray]:
    """``run(n, batch)``: embeddings ``[n, width]`` of the first ``n`` pixels, ``batch`` pixels per forward."""

    def run(n: int, batch: int) -> np.ndarray:
        out = np.empty((n, width), np.float32)
        with torch.inference_mode():
            for lo in range(0, n, batch):
                hi = min(n, lo + batch)
                out[lo:hi] = model(**_slice(inputs, lo, hi)).numpy()
        return out

    return run


def ecoembed_runner(model: torch.nn.Module, series: dict[str, Series], query_days: np.ndarray,
                    compile: bool = False) -> Callable[[int, int], np.ndarray]:
    """``run(n, batch)``: ecoembed's daily embeddings ``[n, 365, E]`` of the first ``n`` pixels (``pixel_batch`` = batch).

    ``compile`` passes ``compile=True`` to ``embed_series`` (its ``torch.compile`` of the query step).
    """
    extra = {"compile": True} if compile else {}

    def run(n: int, batch: int) -> np.ndarray:
        sub = {k: s.head(n) for k, s in series.items()}
        emb, _ = embed_series(model, sub, query_days, pixel_batch=batch, days_per_slab=DAYS_PER_SLAB, **extra)
        return emb

    return run


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _model_name(key: str) -> str:
    """``presto_dense_same`` -> ``presto_dense``; ``ecoembed`` -> ``ecoembed``."""
    return key if key == "ecoembed" else key.rsplit("_", 1)[0]


def pick_batch(run: Callable[[int, int], Any], n_pixels: int, batches: tuple[int, ...], rounds: int = 2) -> tuple[int, dict[str, float]]:
    """The fastest of ``batches`` on a probe of ``min(n_pixels, max(batches))`` pixels (warm-up, then best of ``rounds`` interleaved)."""
    probe = min(n_pixels, max(batches))
    candidates = [b for b in batches if b <= probe] or [probe]
    for b in candidates:
        run(min(b, probe), b)  # warm-up
    probe_s = dict.fromkeys(candidates, math.inf)
    for _ in range(rounds):
        for b in candidates:
            probe_s[b] = min(probe_s[b], _timed(lambda b=b: run(probe, b)))
    best = min(probe_s, key=probe_s.__getitem__)
    return best, {str(b): s / probe for b, s in probe_s.items()}


def count_flops(run: Callable[[int, int], Any], n: int, batch: int) -> float:
    """Matmul-type FLOPs per pixel of ``run`` on ``n`` pixels (MATH attention, MHA fast path off, so all products count)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        counter = FlopCounterMode(display=False)
        with sdpa_kernel(SDPBackend.MATH), counter:
            run(n, batch)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() / n


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Float32 square matmul rate of this machine (GFLOP/s, best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    return 2 * size**3 / min(_timed(lambda: a @ b) for _ in range(repeats)) / 1e9


def run_peer_benchmark(n_pixels: int = 1024, threads: int = 2, repeats: int = 3, model: torch.nn.Module | None = None,
                       dense: bool = False, compile: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """All figures of the benchmark (see the module docstring) as a flat dict.

    Args:
        n_pixels: pixels (the same for every model and scenario).
        threads: torch intra-op threads.
        repeats: timed full passes per model (the best counts).
        model: an ecoembed ``FusedEmbeddingModel`` in eval mode (default the shipped fused model).
        dense: also time ``presto_dense`` (every token, nothing dropped) on the same dates.
        compile: time ecoembed with ``embed_series(..., compile=True)`` (FLOPs are still counted eagerly).
        log: called with progress lines (batch choice per model, each interleaved pass; e.g. ``print``).

    Returns:
        keys ``{name}_{scenario}_{figure}`` for the peers (``presto``, ``presto_dense``, ``ltae``;
        ``same``/``monthly``; ``s_per_pixel_year``, ``pixels_per_s``, ``flops_per_pixel``, ``gflops_per_s``,
        ``batch``), ``ecoembed_{figure}``, ``ratio_{peer}_{scenario}`` (peer s/pixel-year / ecoembed's),
        ``matmul_gflops_per_s``, the parameter counts ``params_{name}`` and the run's settings.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    loaded = load_fusion_model(None)
    if model is None:
        model = loaded.model.eval()
    s2_norm = loaded.input_normalisation("s2")
    series = synthetic_series(n_pixels, s2_norm)
    start = int(np.datetime64(YEAR_START, "D").astype(np.int64))
    query_days = start + np.arange(365, dtype=np.int64)
    inputs = peer_inputs(series, s2_norm)
    peers: dict[str, tuple[torch.nn.Module, str, int]] = {
        "presto": (PrestoEncoder(drop_masked=True).eval(), "presto", 128),
        "presto_dense": (PrestoEncoder(drop_masked=False).eval(), "presto", 128),
        "ltae": (LTAEPair().eval(), "ltae", 512),
    }
    res: dict[str, Any] = {"load_average_1min_start": os.getloadavg()[0], "n_pixels": n_pixels, "threads": threads, "repeats": repeats, "synthetic_inputs": True,
                           "s2_dates": len(series["s2"].days), "s1_dates": len(series["s1"].days), "query_days": len(query_days),
                           "s2_invalid_fraction": float(1 - series["s2"].valid.mean()),
                           "modalities": list(model.fusion.modalities), "ecoembed_compile": compile, "matmul_gflops_per_s": matmul_gflops()}
    res["params_ecoembed"] = n_parameters(model)
    for name, (peer, _, _) in peers.items():
        res[f"params_{name}"] = n_parameters(peer)

    runs: dict[str, Callable[[int, int], Any]] = {"ecoembed": ecoembed_runner(model, series, query_days, compile=compile)}
    for scenario in ("same", "monthly"):
        for name, (peer, kind, width) in peers.items():
            if name == "presto_dense" and (scenario == "monthly" or not dense):
                continue  # monthly composites are gap-free: nothing to drop, the same as "presto"
            runs[f"{name}_{scenario}"] = peer_runner(peer, inputs[scenario][kind], width)
    batch: dict[str, int] = {}
    t0 = time.perf_counter()
    for key, run in runs.items():  # warm-up and batch choice, model by model
        batch[key], res[f"{key}_probe_s_per_pixel"] = pick_batch(run, n_pixels, BATCHES[_model_name(key)])
        if log is not None:
            log(f"  {key}: batch {batch[key]} (probe ms/pixel-year: "
                + ", ".join(f"{b} {v * 1e3:.2f}" for b, v in res[f"{key}_probe_s_per_pixel"].items()) + f"), at {time.perf_counter() - t0:.0f} s")
    seconds = dict.fromkeys(runs, math.inf)
    for r in range(repeats):  # interleaved, so that a slow spell of a shared machine does not fall on one model only
        for key, run in runs.items():
            seconds[key] = min(seconds[key], _timed(lambda run=run, key=key: run(n_pixels, batch[key])))
        if log is not None:
            log(f"  pass {r + 1}/{repeats}: " + ", ".join(f"{k} {seconds[k] / n_pixels * 1e3:.2f}" for k in runs)
                + f" ms/pixel-year (best so far), at {time.perf_counter() - t0:.0f} s")
    for key, run in runs.items():
        res[f"{key}_batch"] = batch[key]
        res[f"{key}_s_per_pixel_year"] = seconds[key] / n_pixels
        res[f"{key}_pixels_per_s"] = n_pixels / seconds[key]
        n_count = min(n_pixels, batch[key], FLOP_COUNT_PIXELS)
        count_run = ecoembed_runner(model, series, query_days) if key == "ecoembed" else run
        res[f"{key}_flops_per_pixel"] = count_flops(count_run, n_count, batch[key])
        res[f"{key}_gflops_per_s"] = res[f"{key}_flops_per_pixel"] * res[f"{key}_pixels_per_s"] / 1e9
    res["load_average_1min_end"] = os.getloadavg()[0]
    if log is not None:
        log(f"  FLOPs counted, at {time.perf_counter() - t0:.0f} s")
    for key in runs:
        if key != "ecoembed":
            res[f"ratio_{key}"] = res[f"{key}_s_per_pixel_year"] / res["ecoembed_s_per_pixel_year"]
    return res


def report(res: dict[str, Any]) -> str:
    """The printed table of :func:`run_peer_benchmark`'s figures."""
    loaded = max(res["load_average_1min_start"], res["load_average_1min_end"]) > res["threads"] + 0.5
    lines = [
        f"pixels {res['n_pixels']} (SYNTHETIC values and S2 cloud mask: {res['s2_invalid_fraction']:.0%} of S2 pixel-dates invalid), "
        f"{res['s2_dates']} S2 + {res['s1_dates']} S1 dates in one year; torch threads {res['threads']}; best of {res['repeats']}",
        f"float32 matmul 2048x2048: {res['matmul_gflops_per_s']:.1f} GFLOP/s; 1-min load average {res['load_average_1min_start']:.1f} "
        f"at the start, {res['load_average_1min_end']:.1f} at the end"
        + (" (above the thread count: the machine is shared, the figures are noisy)" if loaded else ""),
        f"parameters: ecoembed {res['params_ecoembed']:,} (modalities {'+'.join(res['modalities'])}), presto {res['params_presto']:,}, "
        f"ltae (S2 + S1) {res['params_ltae']:,}",
        "",
        f"{'model':<22}{'output':<22}{'batch':>6}{'pixels/s':>11}{'ms/pixel-year':>15}{'MFLOP/pixel':>13}{'GFLOP/s':>9}{'peer/ecoembed':>15}",
    ]
    outputs = {"ecoembed": "365 x 64 daily", "presto": "1 x 128 annual", "presto_dense": "1 x 128 annual", "ltae": "1 x 512 annual"}
    for key in ("ecoembed", "presto_same", "presto_dense_same", "ltae_same", "presto_monthly", "ltae_monthly"):
        if f"{key}_batch" not in res:
            continue
        name = key if key == "ecoembed" else key.rsplit("_", 1)[0]
        label = f"{name} ({key.rsplit('_', 1)[1]})" if key != "ecoembed" else "ecoembed (compiled)" if res["ecoembed_compile"] else key
        ratio = f"{res[f'ratio_{key}']:.2f}" if f"ratio_{key}" in res else "1"
        lines.append(f"{label:<22}{outputs[name]:<22}{res[f'{key}_batch']:>6}{res[f'{key}_pixels_per_s']:>11.1f}"
                     f"{res[f'{key}_s_per_pixel_year'] * 1e3:>15.3f}{res[f'{key}_flops_per_pixel'] / 1e6:>13.1f}"
                     f"{res[f'{key}_gflops_per_s']:>9.1f}{ratio:>15}")
    lines += [
        "",
        f"same dates:        presto / ecoembed = {res['ratio_presto_same']:.2f} (target >= 2), ltae / ecoembed = {res['ratio_ltae_same']:.2f}",
        f"monthly composites: presto / ecoembed = {res['ratio_presto_monthly']:.2f} (target >= 1), ltae / ecoembed = {res['ratio_ltae_monthly']:.2f}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pixels", type=int, default=1024, help="pixels (the same for all models)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed full passes per model (best counts)")
    parser.add_argument("--dense", action="store_true", help="also time presto_dense (Presto fed every token; adds about a third to the run)")
    parser.add_argument("--compile", action="store_true", help="ecoembed with embed_series(..., compile=True)")
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    res = run_peer_benchmark(n_pixels=args.pixels, threads=args.threads, repeats=args.repeats, dense=args.dense, compile=args.compile, log=print)
    res["wall_s"] = time.perf_counter() - t0
    print(report(res))
    print(f"wall time {res['wall_s']:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
