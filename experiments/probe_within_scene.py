"""Daily LAI probe inside one held-out SYNTHETIC scene: does Sentinel-1 help where S2 is blind?

``experiments/probe_daily.py`` fits the ridge probe on other scenes and tests on
a held-out one (transfer across scenes). This script asks the narrower
question: with the probe fitted on the west half of the held-out scene (seed
304, 32 px, 2019) and scored on the east half, is the fused S1+S2 daily
embedding better than the same network fed S2 only, inside long cloudy gaps
(>= 20 days between valid S2 dates) and on grassland inside those gaps (the
fields are mown on their own dates, events S1 sees through clouds)?

    .venv/bin/python experiments/probe_within_scene.py [--model FUSION.safetensors]
"""

from __future__ import annotations

import argparse

import numpy as np


def main(argv: list[str] | None = None) -> int:
    import torch
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score

    from ecoembed.embed.probe import PROBE_TEST_SEED, scene_features, synthetic_series_scene
    from ecoembed.sources.synthetic import make_scene
    from ecoembed.weights import load_fusion_model

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="fusion checkpoint (default: shipped)")
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    model = load_fusion_model(args.model).model
    scene = synthetic_series_scene(args.size, PROBE_TEST_SEED, "2019-01-01", "2019-12-31")
    landcover = make_scene(size_px=args.size, start="2019-01-01", end="2019-12-31", seed=PROBE_TEST_SEED).truth["landcover"].values
    feats = scene_features(model, scene)
    yx = np.asarray(scene.yx)
    west = yx[:, 1] < args.size // 2
    grass = landcover[yx[:, 0], yx[:, 1]] == 1
    n_days = feats["lai"].shape[1]
    print(f"SYNTHETIC scene seed {PROBE_TEST_SEED}, {args.size} px, 2019; probe fitted on the west half, scored on the east half; "
          f"grassland {grass.mean():.0%} of pixels")
    print(f"{'features':26s} {'R2 all':>7s} {'R2 gaps':>8s} {'R2 grass gaps':>14s} {'n grass gap px-days':>20s}")
    for name in ("fused S1+S2", "fused S2-only", "stage-1 S2 interpolated"):
        x, y, gaps = feats[name], feats["lai"], feats["gaps"]
        x_tr, y_tr = x[west].reshape(-1, x.shape[-1]), y[west].ravel()
        ok = np.isfinite(x_tr).all(1) & np.isfinite(y_tr)
        probe = RidgeCV(alphas=np.logspace(-3, 3, 7)).fit(x_tr[ok][::3], y_tr[ok][::3])
        x_te, y_te = x[~west].reshape(-1, x.shape[-1]), y[~west].ravel()
        g = gaps[~west].ravel()
        gr = np.repeat(grass[~west], n_days)
        ok = np.isfinite(x_te).all(1) & np.isfinite(y_te)
        pred, y_te, g, gr = probe.predict(x_te[ok]), y_te[ok], g[ok], gr[ok]
        print(f"{name:26s} {r2_score(y_te, pred):7.3f} {r2_score(y_te[g], pred[g]):8.3f} "
              f"{r2_score(y_te[g & gr], pred[g & gr]):14.3f} {int((g & gr).sum()):20d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
