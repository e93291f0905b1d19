"""Linear probe of daily LAI: fused daily embeddings vs interpolated stage-1 S2 embeddings.

Run (from the repository root)::

    .venv/bin/python experiments/probe_daily.py            # full: 3 train + 1 test scene, 32 px
    .venv/bin/python experiments/probe_daily.py --fast     # the test version (tiny)

Set-up (synthetic, so the daily truth is known):

* scenes from ``make_scene`` with seeds *not* used to train the shipped
  models (train seeds ``PROBE_TRAIN_SEEDS``, held-out test seeds ``PROBE_TEST_SEEDS``),
  one year (2019) of S2 (5-day revisit, clouds) and S1;
* target: the scene's true daily LAI of every pixel and day (``truth.lai``);
* probe: ridge regression (sklearn ``RidgeCV``, alphas 1e-3..1e3) fitted on
  pixel-days of the train scenes, scored (R2) on every pixel-day of the test
  scene, overall and on days *inside long cloudy gaps*: days with no valid S2
  acquisition where the interval between the pixel's previous and next valid
  S2 acquisitions is >= 20 days; each test scene and all of them pooled.
  RMSE (m2 m-2) is also given on the gap days *with changes*: where the true
  LAI departs by more than 0.3 m2 m-2 from a straight line through its values
  at the valid S2 dates (grassland cuts, fast green-up): what S2 cannot see.

Features compared (all from the same shipped model):

* ``fused S1+S2``: the fusion network's daily embedding (contextualised once on
  the whole year of both sensors, queried at each day);
* ``fused S2-only``: the same fusion network with S1 absent;
* ``stage-1 S2 interpolated``: for each *valid* S2 date t of a pixel, the
  frozen S2 encoder's ``embedding`` of that pixel's valid observations within
  [t - 30 d, t + 30 d] (a centred 61-day window, so it sees the season around
  t, including after t, as the fused model does); these per-date embeddings are
  linearly interpolated to daily, each feature separately, and held constant
  before the first / after the last valid date.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ecoembed.embed.probe import (
    CHANGE_LAI,
    GAP_DAYS,
    PROBE_TEST_SEEDS,
    PROBE_TRAIN_SEEDS,
    VALIDATION_SEED,
    change_days_mask,
    scene_features,
    synthetic_series_scene,
)


def _scores(y: np.ndarray, pred: np.ndarray, gaps: np.ndarray, change: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import r2_score

    def rmse(m: np.ndarray) -> float:
        return float(np.sqrt(np.mean((pred[m] - y[m]) ** 2))) if m.sum() > 10 else float("nan")

    changed = gaps & change
    return {
        "r2_all": float(r2_score(y, pred)),
        "r2_gaps": float(r2_score(y[gaps], pred[gaps])) if gaps.sum() > 10 else float("nan"),
        "rmse_all": rmse(np.ones_like(gaps)),
        "rmse_gaps": rmse(gaps),
        "rmse_gap_changes": rmse(changed),
        "n_test": len(y),
        "n_gap_days": int(gaps.sum()),
        "n_gap_change_days": int(changed.sum()),
    }


def run(size_px: int, train_seeds: tuple[int, ...], test_seeds: tuple[int, ...], model_path: str | None, max_train: int,
        recon: bool = False) -> dict:
    """Fit one ridge probe per feature set on ``train_seeds``; score it on each test scene and on all of them pooled."""
    from sklearn.linear_model import RidgeCV

    from ecoembed.weights import load_fusion_model

    torch.set_num_threads(2)
    loaded = load_fusion_model(model_path)
    model = loaded.model
    rng = np.random.default_rng(0)
    parts = [scene_features(model, synthetic_series_scene(size_px, s, "2019-01-01", "2019-12-31"), recon) for s in train_seeds]
    names = [k for k in parts[0] if k not in ("lai", "gaps")]
    y_train = np.concatenate([p["lai"] for p in parts]).ravel()
    probes = {}
    for name in names:
        x_train = np.concatenate([p[name] for p in parts]).reshape(len(y_train), -1)
        ok_train = np.isfinite(x_train).all(1) & np.isfinite(y_train)
        idx = rng.permutation(np.flatnonzero(ok_train))[:max_train]
        probes[name] = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(x_train[idx], y_train[idx])
    del parts
    pooled: dict[str, list[np.ndarray]] = {k: [] for k in ("y", "gaps", "change", *names)}
    per_scene: dict[str, dict[str, dict[str, float]]] = {}
    for seed in test_seeds:  # one scene at a time: only predictions are kept
        scene = synthetic_series_scene(size_px, seed, "2019-01-01", "2019-12-31")
        feats = scene_features(model, scene, recon)
        s2 = scene.series["s2"]
        y = feats["lai"].ravel()
        x = {name: feats[name].reshape(len(y), -1) for name in names}
        ok = np.isfinite(y) & np.logical_and.reduce([np.isfinite(v).all(1) for v in x.values()])
        change = change_days_mask(scene.lai, np.asarray(s2.valid), np.asarray(s2.days), scene.days).ravel()
        pooled["y"].append(y[ok])
        pooled["gaps"].append(feats["gaps"].ravel()[ok])
        pooled["change"].append(change[ok])
        per_scene[str(seed)] = {}
        for name in names:
            pred = probes[name].predict(x[name][ok])
            pooled[name].append(pred)
            per_scene[str(seed)][name] = _scores(y[ok], pred, pooled["gaps"][-1], pooled["change"][-1])
    cat = {k: np.concatenate(v) for k, v in pooled.items()}
    results = {name: _scores(cat["y"], cat[name], cat["gaps"], cat["change"]) for name in names}
    # ceiling of what S1 can add here: S2-only with every gap day *with a change* predicted exactly
    changed = cat["gaps"] & cat["change"]
    exact = np.where(changed, cat["y"], cat["fused S2-only"])
    results["fused S2-only"]["r2_gaps_changes_exact"] = _scores(cat["y"], exact, cat["gaps"], cat["change"])["r2_gaps"]
    return {"model_sha256": loaded.sha256, "scenes": "ecoembed.sources.synthetic.make_scene (SYNTHETIC)", "size_px": size_px, "train_seeds": list(train_seeds),
            "test_seeds": list(test_seeds), "gap_days_min": GAP_DAYS, "change_lai_min": CHANGE_LAI,
            "results": results, "per_scene": per_scene}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny version (12 px, 1 train scene) for the test suite")
    parser.add_argument("--model", default=None, help="fusion checkpoint (default: shipped)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--recon", action="store_true",
                        help="also probe the fusion's reconstructed S2 bands (does S1 improve the decoded S2 in gaps?)")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=list(PROBE_TRAIN_SEEDS),
                        help=f"make_scene seeds the probe is fitted on (default {list(PROBE_TRAIN_SEEDS)})")
    parser.add_argument("--test-seeds", "--test-seed", dest="test_seeds", type=int, nargs="+", default=list(PROBE_TEST_SEEDS),
                        help=f"held-out scenes the probe is scored on, each and pooled (default {list(PROBE_TEST_SEEDS)}; use "
                             f"other seeds, e.g. {VALIDATION_SEED}, to compare training choices without selecting on the test scenes)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.fast:
        res = run(12, tuple(args.train_seeds[:1]), tuple(args.test_seeds[:1]), args.model, max_train=20_000, recon=args.recon)
    else:
        res = run(32, tuple(args.train_seeds), tuple(args.test_seeds), args.model, max_train=60_000, recon=args.recon)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"daily LAI linear probe (ridge), SYNTHETIC scenes: {res['scenes']}, {res['size_px']} px, 2019; "
          f"probe fitted on seeds {res['train_seeds']}, scored on seeds {res['test_seeds']}")
    print(f"gaps = days inside >= {GAP_DAYS}-day gaps between valid S2 dates; changes = gap days where the true LAI departs "
          f"> {CHANGE_LAI} m2 m-2 from a straight line between valid S2 dates")
    header = f"{'features':28s} {'R2 all':>7s} {'R2 gaps':>8s} {'RMSE gaps':>10s} {'RMSE changes':>13s}"
    print(f"\nall test scenes pooled (RMSE in m2 m-2)\n{header}")
    for name, r in res["results"].items():
        print(f"{name:28s} {r['r2_all']:7.3f} {r['r2_gaps']:8.3f} {r['rmse_gaps']:10.3f} {r['rmse_gap_changes']:13.3f}")
    first = next(iter(res["results"].values()))
    print(f"(n: {first['n_test']} px-days, {first['n_gap_days']} in gaps, {first['n_gap_change_days']} gap days with changes)")
    print(f"ceiling for any S1 gain: S2-only R2 in gaps if every gap day with a change were exact = "
          f"{res['results']['fused S2-only']['r2_gaps_changes_exact']:.3f}")
    if len(res["per_scene"]) > 1:
        names = [n for n in ("fused S1+S2", "fused S2-only", "stage-1 S2 interpolated") if n in res["results"]]
        print("\nper test scene, R2 in gaps: " + ", ".join(names) + "; fused S1+S2 minus S2-only")
        diffs = []
        for seed, r in res["per_scene"].items():
            d = r["fused S1+S2"]["r2_gaps"] - r["fused S2-only"]["r2_gaps"]
            diffs.append(d)
            print(f"  seed {seed}: " + " ".join(f"{r[n]['r2_gaps']:.3f}" for n in names) + f"  {d:+.3f}")
        print(f"  fused S1+S2 ahead in {sum(d > 0 for d in diffs)} of {len(diffs)} scenes; mean difference {np.mean(diffs):+.4f}")
    print(f"({res['seconds']} s)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
