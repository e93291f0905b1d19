"""Presto fuel-moisture benchmark with the frozen shipped encoders (site-held-out split).

    .venv/bin/python experiments/eval_fuel_moisture.py --data ../shared/data [--json out.json]

Data (``presto_fuel_moisture``): 2313 samples at 150 sites in the western US, three
monthly steps of S1 (VV, VH dB), S2 (11 bands, reflectance x 10000; B09 is dropped: the
encoders do not use it), ERA5 (temperature, precipitation) and SRTM (elevation, slope);
target live fuel moisture (%). ``is_test.npy`` is the published site-level split.

Features compared with the same heads (ridge with CV over alphas; xgboost):

* the fused daily embedding (S1 + S2, S2 only, S1 only) queried at the three sample days
  (the 15th of each month; the year is not given and the date encoding needs none);
* the raw S1 + S2 bands of the three steps, and all raw inputs (S1, S2, ERA5, SRTM, NDVI,
  as Presto's "raw inputs" baselines use them), and the fused embedding plus the raw
  ERA5/SRTM (as Presto's embeddings carry weather and topography).

Published on this split (Presto, Tseng et al. 2023, Table 10, RMSE in % fuel moisture):
linear regression on raw inputs 28.20, random forest on raw inputs 23.84, Presto
fine-tuned 25.28, Presto embeddings + random forest 25.98.

Caveat printed with the results: the S2 values were exported from Earth Engine by the
Presto pipeline; their processing level (L1C vs L2A) is not stated, while the encoders
were pretrained on L2A surface reflectance.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import xgboost as xgb
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecoembed.embed.infer import embed_series
from ecoembed.sensors.registry import get_sensor
from ecoembed.training.fusion_data import ArraySeries
from ecoembed.weights import load_fusion_model

PUBLISHED = {"linear regression, raw inputs": 28.20, "random forest, raw inputs": 23.84, "Presto fine-tuned": 25.28,
             "Presto embeddings + random forest": 25.98}
S2_ORDER = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
"""Channels 2..12 of ``s1_s2_era5_srtm.npy`` (Presto's S1_S2_ERA5_SRTM order)."""


def sample_days(month: np.ndarray, year: int = 2018) -> np.ndarray:
    """int64 ``[N, 3]`` days since 1970 of the 15th of each step's month (0-based), rolling into the next year."""
    out = np.zeros(month.shape, np.int64)
    for i, ms in enumerate(month):
        y = year
        prev = -1
        for j, m in enumerate(ms):
            if m < prev:
                y += 1
            prev = int(m)
            out[i, j] = (np.datetime64(f"{y}-{int(m) + 1:02d}-15") - np.datetime64("1970-01-01")).astype(int)
    return out


def series(x: np.ndarray, days: np.ndarray) -> tuple[dict[str, ArraySeries], np.ndarray]:
    """Encoder input series (S2 and S1) of the samples, grouped by their day triple; returns (series per group, order)."""
    s2, s1 = get_sensor("s2"), get_sensor("s1")
    refl = x[:, :, 2:13] / 10000.0
    s2_vals = np.stack([refl[:, :, S2_ORDER.index(b)] for b in s2.band_names], -1)
    s2_norm = ((s2_vals - s2.mean()) / s2.std()).astype(np.float32)
    s1_norm = ((x[:, :, [0, 1]] - s1.mean()) / s1.std()).astype(np.float32)  # channels 0, 1 are VV, VH in dB
    ok2 = np.isfinite(s2_norm).all(-1)
    ok1 = np.isfinite(s1_norm).all(-1)
    return ({"s2": (np.nan_to_num(s2_norm), ok2), "s1": (np.nan_to_num(s1_norm), ok1)}, days)  # type: ignore[return-value]


def embed_samples(model: torch.nn.Module, x: np.ndarray, days: np.ndarray, modalities: tuple[str, ...]) -> np.ndarray:
    """``[N, 3 * E]``: the fused embedding of each sample at its three days."""
    arrays, _ = series(x, days)
    out = np.zeros((len(x), 3, model.fusion.embed_dim), np.float32)
    for key in {tuple(d) for d in days.tolist()}:
        idx = np.flatnonzero((days == np.array(key)).all(1))
        d = np.array(key, np.int64)
        ser = {}
        for m in modalities:
            vals, ok = arrays[m]
            ser[m] = ArraySeries(vals[idx], d, ok[idx], np.zeros(3, np.int8) if m == "s1" else None)
        emb, _ = embed_series(model, ser, d)
        out[idx] = emb
    return out.reshape(len(x), -1)


def fit_score(name: str, X: np.ndarray, y: np.ndarray, test: np.ndarray, seed: int = 0) -> dict[str, dict[str, float]]:
    X = np.nan_to_num(X.astype(np.float64))
    res = {}
    for head, model in (("ridge", make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 4, 15)))),
                        ("xgboost", xgb.XGBRegressor(n_estimators=400, max_depth=4, learning_rate=0.05, subsample=0.8,
                                                     colsample_bytree=0.8, random_state=seed, n_jobs=2))):
        model.fit(X[~test], y[~test])
        p = model.predict(X[test])
        res[head] = {"rmse": float(np.sqrt(mean_squared_error(y[test], p))), "r2": float(r2_score(y[test], p))}
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    folder = args.data / "presto_fuel_moisture"
    x = np.load(folder / "s1_s2_era5_srtm.npy", allow_pickle=False)
    y = np.load(folder / "target.npy", allow_pickle=False)
    test = np.load(folder / "is_test.npy", allow_pickle=False).astype(bool)
    days = sample_days(np.load(folder / "month.npy", allow_pickle=False))
    loaded = load_fusion_model(args.model)
    model = loaded.model
    weather = x[:, :, 13:17].reshape(len(x), -1)
    sets = {
        "fused S1+S2 embedding": embed_samples(model, x, days, ("s2", "s1")),
        "fused S2-only embedding": embed_samples(model, x, days, ("s2",)),
        "fused S1-only embedding": embed_samples(model, x, days, ("s1",)),
        "raw S1+S2 bands": x[:, :, :13].reshape(len(x), -1),
        "raw inputs (S1, S2, ERA5, SRTM, NDVI)": x.reshape(len(x), -1),
    }
    sets["fused S1+S2 embedding + raw ERA5/SRTM"] = np.concatenate([sets["fused S1+S2 embedding"], weather], 1)
    results = {name: fit_score(name, X, y, test) for name, X in sets.items()}
    print(f"Presto fuel moisture, site-held-out split: {int((~test).sum())} train / {int(test.sum())} test samples; "
          f"target sd {y[test].std():.1f} %")
    print(f"{'features':42s} {'ridge RMSE':>10s} {'r2':>6s} {'xgb RMSE':>9s} {'r2':>6s}")
    for name, res in results.items():
        print(f"{name:42s} {res['ridge']['rmse']:10.2f} {res['ridge']['r2']:6.3f} {res['xgboost']['rmse']:9.2f} {res['xgboost']['r2']:6.3f}")
    print("published on the same split (Presto Table 10, RMSE %):")
    for name, v in PUBLISHED.items():
        print(f"  {name:40s} {v:.2f}")
    print("caveat: the S2 values' processing level (L1C vs L2A) is not stated; the encoders were pretrained on L2A.")
    print(f"model {loaded.path.name} sha256 {loaded.sha256[:16]}; {time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"model_sha256": loaded.sha256, "results": results, "published": PUBLISHED}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
