"""How visible is a grassland cut to the SYNTHETIC Sentinel-1, per pixel and per field?

Why this exists: issue 5 asks fused S1+S2 embeddings to beat S2-only ones inside
long cloudy gaps. The one thing S2 cannot see there and S1 can is a change of the
canopy under the clouds; in ``make_scene`` that is a grassland cut (LAI drops to
20 % and regrows). This script measures, on the simulator's own truth, the size of
that signal against the two nuisances S1 carries at the same time:

* ``cut step``: the change of speckle-free sigma0 (dB) that the LAI drop alone causes,
  between the last S1 acquisition before the cut and the first after it (same
  soil moisture and incidence angle);
* ``speckle``: the standard deviation of observed minus speckle-free sigma0 (dB) of one
  pixel on one date, and of the mean of a mown field's pixels (linear mean, then dB);
* ``soil moisture + angle``: the standard deviation of the speckle-free sigma0 change
  between consecutive acquisitions of grassland pixels with no cut in between
  (rain, drying and the ascending/descending incidence angles).

Run from the repository root (about 2 s)::

    .venv/bin/python experiments/s1_change_snr.py [--seeds 101 102 ...] [--size-px 24]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def scene_stats(seed: int, size_px: int) -> dict[str, list[float]]:
    """Per-polarisation samples of cut steps, speckle, field-mean speckle and no-cut changes (dB) of one scene."""
    from ecoembed.dates import to_days
    from ecoembed.sensors.sentinel1 import db_to_linear
    from ecoembed.sensors.sentinel1 import linear_to_db as db
    from ecoembed.sources.synthetic import S1_INCIDENCE_DEG, WATER_CLOUD, make_scene, water_cloud_sigma0

    sc = make_scene(size_px=size_px, start="2019-01-01", end="2019-12-31", seed=seed)
    lai = sc.truth["lai"].values  # [day, y, x]
    sm = sc.truth["soil_moisture"].values
    grass = sc.truth["landcover"].values == 1
    forest = sc.truth["landcover"].values == 0
    days = to_days(sc.truth["time"].values)
    s1_days = to_days(sc.s1["time"].values)
    i1 = np.searchsorted(days, s1_days)
    theta = np.deg2rad([S1_INCIDENCE_DEG[o] for o in sc.s1["orbit"].values])[:, None, None]
    ratio = lai[1:] / np.maximum(lai[:-1], 1e-6)
    cut = np.zeros_like(lai, dtype=bool)
    cut[1:] = ratio < 0.5  # a cut leaves 20 % of the LAI overnight; nothing else drops that fast
    # fields = grassland pixels cut on the same days (make_scene mows each field on its own dates)
    signature: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for y, x in zip(*np.nonzero(grass), strict=False):
        signature.setdefault(tuple(np.flatnonzero(cut[:, y, x])), []).append((y, x))
    fields = [np.array(px).T for cuts, px in signature.items() if cuts and len(px) >= 2]  # (ys, xs) of mown fields
    cut_after = np.cumsum(cut, axis=0)[i1]  # [s1 date, y, x] number of cuts so far
    out: dict[str, list[float]] = {f"{k}_{pol}": [] for k in ("step", "speckle", "field_speckle", "nocut") for pol in WATER_CLOUD}
    out["field_px"] = [float(ys.size) for ys, _ in fields]
    for pol in WATER_CLOUD:
        clean = water_cloud_sigma0(pol, lai[i1], sm[i1], theta, forest)
        observed = db_to_linear(sc.s1[pol].values)
        out[f"speckle_{pol}"] += list((db(observed) - db(clean))[:, grass].ravel())
        # cut steps: LAI change alone between the S1 dates bracketing each cut
        for k in range(len(i1) - 1):
            newly = grass & (cut_after[k + 1] > cut_after[k])
            if newly.any():
                before = water_cloud_sigma0(pol, lai[i1[k]], sm[i1[k]], theta[k], forest)
                swapped = water_cloud_sigma0(pol, lai[i1[k + 1]], sm[i1[k]], theta[k], forest)
                out[f"step_{pol}"] += list((db(swapped) - db(before))[newly])
            quiet = grass & (cut_after[k + 1] == cut_after[k])
            out[f"nocut_{pol}"] += list((db(clean[k + 1]) - db(clean[k]))[quiet])
        for ys, xs in fields:
            out[f"field_speckle_{pol}"] += list(db(observed[:, ys, xs].mean(1)) - db(clean[:, ys, xs].mean(1)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(101, 109)), help="make_scene seeds")
    parser.add_argument("--size-px", type=int, default=24, help="scene edge (10 m pixels)")
    args = parser.parse_args(argv)
    from ecoembed.sources.synthetic import ENL, WATER_CLOUD

    stats: dict[str, list[float]] = {}
    for seed in args.seeds:
        for k, v in scene_stats(seed, args.size_px).items():
            stats.setdefault(k, []).extend(v)
    print(f"SYNTHETIC make_scene seeds {args.seeds}, {args.size_px} px, 2019: grassland cuts seen by S1 (all in dB; ENL {ENL})")
    print(f"{'pol':4s} {'n cuts':>7s} {'median cut step':>16s} {'speckle sd, 1 px':>17s} {'speckle sd, field':>18s} "
          f"{'no-cut change sd':>17s} {'cut/speckle 1 px':>17s} {'cut/speckle field':>18s}")
    for pol in WATER_CLOUD:
        step = np.abs(np.asarray(stats[f"step_{pol}"]))
        if len(step) == 0:
            print(f"{pol:4s} no cuts in these scenes")
            continue
        sp = float(np.std(stats[f"speckle_{pol}"]))
        fsp = float(np.std(stats[f"field_speckle_{pol}"])) if stats[f"field_speckle_{pol}"] else float("nan")
        nocut = float(np.std(stats[f"nocut_{pol}"]))
        med = float(np.median(step))
        # a step is read as the difference of two acquisitions: noise sd of a difference is sqrt(2) x sd
        print(f"{pol:4s} {len(step):7d} {med:16.2f} {sp:17.2f} {fsp:18.2f} {nocut:17.2f} "
              f"{med / (np.sqrt(2) * sp):17.2f} {med / (np.sqrt(2) * fsp):18.2f}")
    sizes = np.asarray(stats["field_px"])
    if len(sizes):
        print(f"(mown fields: {len(sizes)}, median {np.median(sizes):.0f} px; 'no-cut change' = speckle-free change between "
              f"consecutive acquisitions without a cut: soil moisture, phenology and the 38/42 deg incidence angles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
