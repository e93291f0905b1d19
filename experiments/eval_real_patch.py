"""Real-data evaluations on the held-out WorldCereal patch 0000280849BAC91C (Belgium, 2018-2019, S2 + S1).

    .venv/bin/python experiments/eval_real_patch.py --data ../shared/data [--json out.json]

The patch was never seen by the shipped weights (``experiments/pretrain_real.py`` holds it out).

1. **Cloud-gap reconstruction** (issue "real models", 4a): runs of 10-40 days of *clear* S2
   dates (patch-wide clear fraction >= 0.8) are hidden, one run every ~70 days; the S2
   bands on the hidden dates are predicted from what is left by
   * the fusion network's S2 decoder on the daily embedding (S1 + S2, and S2 only),
   * linear interpolation of each band between the pixel's remaining valid dates,
   * the stage-1 approach: the S2 encoder's code of the remaining dates, decoded at the
     hidden days by its pretraining decoder (``--stage1-checkpoint``, the work checkpoint
     of the pretraining run; skipped when absent).
   Scores on every hidden pixel-date whose observation is valid: RMSE per band
   (reflectance), and NDVI MAE.
2. **Crop-type probe** (4b): WorldCereal crop-type labels (``OUTPUT_POLY-110``, classes
   with >= 50 pixels), features per pixel from 13 days spaced 30 days apart over the
   season: the daily fused embedding (S1 + S2, and S2 only), the raw bands and NDVI
   interpolated to those days, and the embedding of a B04 + B08-only copy of the patch
   (issue "real cubes": band subsets must stay useful). Multinomial logistic regression
   (standardised features), 4 folds of spatially blocked 16 x 16 px groups; overall
   accuracy and macro F1.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecoembed.dates import to_days
from ecoembed.embed.infer import embed_series
from ecoembed.embed.reconstruct import decode_s2
from ecoembed.models.decoders import TemporalDecoder
from ecoembed.sensors.indices import ndvi_of
from ecoembed.sensors.registry import get_sensor
from ecoembed.sources.chips import PixelSeries, encoder_series
from ecoembed.sources.local import open_cube
from ecoembed.weights import load_fusion_model
from ecoembed.weights.encoder_checkpoint import read_encoder_checkpoint
from ecoembed.weights.format import prefixed

PATCH = "0000280849BAC91C"
S2 = get_sensor("s2")
BLOCK_PX = 16


def load_patch(data: Path, bands: tuple[str, ...] | None = None) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """S2 (merged 10 m + 20 m, optionally a band subset), S1 on its grid, and the labels of the test patch."""
    folder = data / "worldcereal" / PATCH
    s2 = open_cube(sorted(folder.glob("S2_L2A_*.nc")), "s2")
    if bands is not None:
        s2 = s2.drop_vars([b for b in S2.band_names if b in s2 and b not in bands])
    s1 = open_cube(sorted(folder.glob("S1_*.nc")), "s1", like=s2)
    labels = xr.open_dataset(next(folder.glob("OUTPUT_POLY*.nc")))
    return s2.load(), s1.load(), labels


def hidden_runs(s2: xr.Dataset, seed: int = 0) -> np.ndarray:
    """Bool ``[T]``: S2 dates hidden in runs of 10-40 days of clear dates, one run every ~70 days."""
    rng = np.random.default_rng(seed)
    days = to_days(s2["time"].values)
    clear = np.asarray(s2["valid"].mean(("y", "x")).values) >= 0.8
    hide = np.zeros(len(days), bool)
    start = days[0] + 20
    while start < days[-1] - 40:
        candidates = np.flatnonzero(clear & (days >= start))
        if candidates.size == 0:
            break
        t0 = days[candidates[0]]
        length = int(rng.integers(10, 41))
        hide |= (days >= t0) & (days < t0 + length)
        start = t0 + length + 70
    return hide


def with_hidden(series: PixelSeries, hide: np.ndarray) -> PixelSeries:
    """A copy of the series whose ``hide`` dates are invalid (as if clouded)."""
    from dataclasses import replace

    return replace(series, valid=series.valid & ~hide[None, :])


def interpolate(series: PixelSeries, days: np.ndarray) -> np.ndarray:
    """Per pixel and band, linear interpolation of the valid observations at ``days`` (normalised units)."""
    out = np.full((series.values.shape[0], len(days), series.values.shape[-1]), np.nan, np.float32)
    for n in range(series.values.shape[0]):
        ok = series.valid[n]
        if ok.sum() < 1:
            continue
        for c in range(series.values.shape[-1]):
            out[n, :, c] = np.interp(days, series.days[ok], series.values[n, ok, c])
    return out


def stage1_reconstruction(path: Path, series: PixelSeries, days: np.ndarray) -> np.ndarray | None:
    """The stage-1 encoder's code of the valid dates decoded at ``days`` by its pretraining decoder (normalised)."""
    if not path.is_file():
        return None
    tensors, meta = read_encoder_checkpoint(path)
    from ecoembed.weights.encoder_checkpoint import build_from_metadata

    enc = build_from_metadata(meta, path)
    enc.load_state_dict(prefixed(tensors, "encoder."))
    dec = TemporalDecoder(enc.embed_dim, enc.n_channels, int(meta["train_config"]["decoder_hidden"]), enc.n_conditions)
    dec.load_state_dict(prefixed(tensors, "decoder."))
    enc.eval()
    dec.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, series.values.shape[0], 512):
            sl = slice(lo, lo + 512)
            x = torch.from_numpy(series.values[sl])
            mask = torch.from_numpy(series.valid[sl])
            o = enc(x, torch.from_numpy(series.days), mask, band_mask=torch.from_numpy(series.band_mask))
            q = torch.from_numpy(days).unsqueeze(0).expand(x.shape[0], -1)
            out.append(dec(o.embedding, q, o.ref_days).numpy())
    return np.concatenate(out)


def gap_reconstruction(model: Any, s2: xr.Dataset, s1: xr.Dataset, stage1: Path) -> dict[str, Any]:
    series2, series1 = encoder_series(s2, "s2"), encoder_series(s1, "s1")
    hide = hidden_runs(s2)
    qdays = series2.days[hide]
    target = series2.values[:, hide]  # normalised
    scored = series2.valid[:, hide]
    visible = with_hidden(series2, hide)
    mean, std = S2.mean(), S2.std()
    preds: dict[str, np.ndarray | None] = {}
    fused, _ = embed_series(model, {"s2": visible, "s1": series1}, qdays)
    preds["fused S1+S2 (decoded)"] = decode_s2(model.fusion, fused)
    fused2, _ = embed_series(model, {"s2": visible}, qdays)
    preds["fused S2-only (decoded)"] = decode_s2(model.fusion, fused2)
    preds["linear interpolation of S2"] = interpolate(visible, qdays)
    preds["stage-1 S2 code, decoded"] = stage1_reconstruction(stage1, visible, qdays)
    truth = target * std + mean
    red, nir = S2.band_names.index("B04"), S2.band_names.index("B08")
    ndvi_true = ndvi_of(truth[..., red], truth[..., nir])
    out: dict[str, Any] = {"hidden_dates": int(hide.sum()), "hidden_pixel_dates": int(scored.sum()),
                           "hidden_days": [str(np.datetime64(int(d), "D")) for d in qdays]}
    for name, pred in preds.items():
        if pred is None:
            out[name] = "skipped (no stage-1 work checkpoint)"
            continue
        refl = np.clip(pred * std + mean, 0, 1)
        ok = scored & np.isfinite(refl).all(-1)
        err = refl[ok] - truth[ok]
        nd = ndvi_of(refl[..., red], refl[..., nir])[ok] - ndvi_true[ok]
        out[name] = {"rmse_per_band": {b: float(np.sqrt(np.mean(err[:, i] ** 2))) for i, b in enumerate(S2.band_names)},
                     "rmse_mean": float(np.sqrt(np.mean(err**2))), "ndvi_mae": float(np.nanmean(np.abs(nd))),
                     "n": int(ok.sum())}
    return out


def probe_days(s2: xr.Dataset) -> np.ndarray:
    days = to_days(s2["time"].values)
    return np.arange(days[0] + 30, days[-1] - 15, 30)[:13]


def crop_probe(model: Any, data: Path) -> dict[str, Any]:
    s2, s1, labels = load_patch(data)
    ct = np.asarray(labels["CT"].values, np.float64).reshape(-1)
    qdays = probe_days(s2)
    s2_series, s1_series = encoder_series(s2, "s2"), encoder_series(s1, "s1")
    feats: dict[str, np.ndarray] = {}
    fused, _ = embed_series(model, {"s2": s2_series, "s1": s1_series}, qdays)
    feats["fused S1+S2 embedding (13 days)"] = fused.reshape(len(fused), -1)
    fused2, _ = embed_series(model, {"s2": s2_series}, qdays)
    feats["fused S2-only embedding (13 days)"] = fused2.reshape(len(fused2), -1)
    raw = interpolate(s2_series, qdays)
    feats["raw S2 bands (13 days, interpolated)"] = raw.reshape(len(raw), -1)
    mean, std = S2.mean(), S2.std()
    refl = raw * std + mean
    feats["NDVI (13 days, interpolated)"] = ndvi_of(refl[..., 2], refl[..., 6])
    sub2, sub1, _ = load_patch(data, bands=("B04", "B08"))
    sub_series = encoder_series(sub2, "s2")
    sub, _ = embed_series(model, {"s2": sub_series, "s1": encoder_series(sub1, "s1")}, qdays)
    feats["fused S1+S2 embedding, B04+B08-only copy"] = sub.reshape(len(sub), -1)
    sub_s2, _ = embed_series(model, {"s2": sub_series}, qdays)
    feats["fused S2-only embedding, B04+B08-only copy"] = sub_s2.reshape(len(sub_s2), -1)
    raw_sub = interpolate(sub_series, qdays)[..., [2, 6]]
    feats["raw B04+B08 (13 days, interpolated)"] = raw_sub.reshape(len(raw_sub), -1)
    classes, counts = np.unique(ct[np.isfinite(ct) & (ct > 0)], return_counts=True)
    keep_classes = classes[counts >= 50]
    ny, nx = s2.sizes["y"], s2.sizes["x"]
    yy, xx = np.divmod(np.arange(ny * nx), nx)
    groups = (yy // BLOCK_PX) * (nx // BLOCK_PX + 1) + xx // BLOCK_PX
    out: dict[str, Any] = {"classes": {str(int(c)): int(n) for c, n in zip(classes, counts, strict=True) if c in keep_classes},
                           "folds": "4 x GroupKFold over 16 x 16 px blocks"}
    for name, X in feats.items():
        ok = np.isin(ct, keep_classes) & np.isfinite(X).all(1)
        y, Xo, g = ct[ok].astype(int), X[ok], groups[ok]
        pred = np.zeros_like(y)
        for tr, te in GroupKFold(n_splits=4).split(Xo, y, g):
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=3000))
            clf.fit(Xo[tr], y[tr])
            pred[te] = clf.predict(Xo[te])
        out[name] = {"accuracy": float(accuracy_score(y, pred)), "macro_f1": float(f1_score(y, pred, average="macro")),
                     "n_pixels": int(ok.sum()), "n_features": int(X.shape[1])}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", type=Path, default=None, help="fusion checkpoint (default: the shipped one)")
    parser.add_argument("--stage1-checkpoint", type=Path, default=Path("/tmp/ecoembed_pretrain_real/s2_stage1.safetensors"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    loaded = load_fusion_model(args.model)
    s2, s1, _ = load_patch(args.data)
    gaps = gap_reconstruction(loaded.model, s2, s1, args.stage1_checkpoint)
    print(f"cloud-gap reconstruction on held-out patch {PATCH}: {gaps['hidden_dates']} hidden dates, "
          f"{gaps['hidden_pixel_dates']} valid hidden pixel-dates")
    print(f"{'method':36s} {'RMSE (mean of bands)':>20s} {'NDVI MAE':>9s}  RMSE B02 B04 B08 B11")
    for name, res in gaps.items():
        if isinstance(res, dict) and "rmse_mean" in res:
            r = res["rmse_per_band"]
            print(f"{name:36s} {res['rmse_mean']:20.4f} {res['ndvi_mae']:9.4f}  {r['B02']:.4f} {r['B04']:.4f} {r['B08']:.4f} {r['B11']:.4f}")
        elif isinstance(res, str):
            print(f"{name:36s} {res}")
    probe = crop_probe(loaded.model, args.data)
    print(f"\ncrop-type probe on held-out patch {PATCH} ({probe['folds']}; classes {probe['classes']})")
    print(f"{'features':46s} {'accuracy':>9s} {'macro F1':>9s} {'dims':>6s}")
    for name, res in probe.items():
        if isinstance(res, dict) and "accuracy" in res:
            print(f"{name:46s} {res['accuracy']:9.3f} {res['macro_f1']:9.3f} {res['n_features']:6d}")
    print(f"\nmodel {loaded.path.name} sha256 {loaded.sha256[:16]}; {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"model_sha256": loaded.sha256, "gaps": gaps, "crop_probe": probe}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
