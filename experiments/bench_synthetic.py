"""Time ``make_scene`` and check that its tower GPP follows the footprint S2 NIRv (SYNTHETIC data).

Prints the generation time of a size x size px x 2 years scene and the Pearson r
between daily tower GPP (gC m-2 d-1) and the footprint-mean S2 NIRv on the S2
dates where the footprint is cloud-free.

    .venv/bin/python experiments/bench_synthetic.py [--size 64] [--seed 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from ecoembed.sensors.indices import nirv
    from ecoembed.sources.synthetic import make_scene

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", default="2020-12-31")
    args = parser.parse_args(argv)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        scene = make_scene(size_px=args.size, start=args.start, end=args.end, seed=args.seed)
        times.append(time.perf_counter() - t0)
    r0, c0 = scene.tower_yx
    half = max(1, args.size // 8)
    window = {"y": slice(max(0, r0 - half), r0 + half + 1), "x": slice(max(0, c0 - half), c0 + half + 1)}
    v = nirv(scene.s2).isel(**window)
    clear = scene.s2["valid"].isel(**window).mean(("y", "x")).values >= 0.9
    fp = v.mean(("y", "x"), skipna=True).values
    days = scene.s2["time"].values.astype("datetime64[D]")
    gpp = scene.tower.set_index(scene.tower["date"].values.astype("datetime64[D]"))["GPP"].reindex(days).to_numpy()
    ok = clear & np.isfinite(fp) & np.isfinite(gpp)
    r = float(np.corrcoef(gpp[ok], fp[ok])[0, 1])
    print(f"SYNTHETIC scene {args.size}x{args.size} px, {args.start}..{args.end}, seed {args.seed}: "
          f"make_scene {min(times):.2f} s (best of {args.repeat}; all {', '.join(f'{t:.2f}' for t in times)})")
    print(f"S2 dates {scene.s2.sizes['time']}, S1 dates {scene.s1.sizes['time']}, valid S2 fraction {float(scene.s2['valid'].mean()):.2f}")
    print(f"r(tower GPP, footprint S2 NIRv) = {r:.3f} on {int(ok.sum())} clear S2 dates")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
