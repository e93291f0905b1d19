"""Downstream cost of the compact embedding cube: fit-gpp skill on the demo with the default encoding vs float32.

Run:  taskset -c 0,1 .venv/bin/python experiments/quantisation_r2.py [--work /tmp/quant_r2] [--encoding int16]

Writes the demo's SYNTHETIC sites once (``write_demo_sites``: 6 towers, 16x16 px, 2019-2020), embeds each
site's fused S1+S2 scene twice with the shipped model (``embed(..., encoding=E)``: the default and
``float32``), runs the same ``fit-gpp`` (LOSO, paired, the demo's embedding feature sets, every head, seed
0, interpretation and baselines off: they do not read the cube) on each, and prints the pooled r2 of every
(features, head) side by side with the difference. Issue 21's target: |r2(default) - r2(float32)| <= 0.005.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ecoembed.embed.pipeline import embed
from ecoembed.gpp.options import DEFAULT_HEADS
from ecoembed.pipelines.fit_gpp import run_fit_gpp
from ecoembed.sources.embedding_cube import DEFAULT_ENCODING, open_embeddings
from ecoembed.sources.synthetic import write_demo_sites

FEATURE_SETS = ("embeddings", "embeddings+meteo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/quant_r2"))
    parser.add_argument("--encoding", default=DEFAULT_ENCODING, help=f"the compact encoding to compare (default {DEFAULT_ENCODING})")
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    data = args.work / "data"
    sites_csv = Path(write_demo_sites(data, n_sites=6, size_px=16, seed=0, progress=False))
    sites = pd.read_csv(sites_csv)
    pooled: dict[str, pd.DataFrame] = {}
    errors: list[float] = []
    for encoding in (args.encoding, "float32"):
        paths = []
        for _, row in sites.iterrows():
            out = Path(f"{row['site_id']}_embedding_{encoding}_synthetic.zarr")
            embed(data / str(row["s2_path"]), data / out, s1=data / str(row["s1_path"]), encoding=encoding, progress=False)
            paths.append(str(out))
        table = sites.assign(features_path=paths)
        csv = data / f"sites_{encoding}.csv"
        table.to_csv(csv, index=False)
        run = args.work / f"run_{encoding}"
        run_fit_gpp(csv, run, feature_sets=list(FEATURE_SETS), heads=list(DEFAULT_HEADS), cv="loso", seed=0, progress=False,
                    interpret=False, baselines=False, keep_models=False)
        pooled[encoding] = pd.read_csv(run / "metrics_pooled.csv")
    for site in sites["site_id"]:
        ea = open_embeddings(data / f"{site}_embedding_{args.encoding}_synthetic.zarr")["embedding"].values
        eb = open_embeddings(data / f"{site}_embedding_float32_synthetic.zarr")["embedding"].values
        finite = np.isfinite(eb)
        errors.append(float(np.abs(ea[finite] - eb[finite]).max()))
    keys = ["features", "head"]
    merged = pooled[args.encoding][[*keys, "r2"]].merge(pooled["float32"][[*keys, "r2"]], on=keys, suffixes=(f"_{args.encoding}", "_float32"))
    merged["d_r2"] = merged[f"r2_{args.encoding}"] - merged["r2_float32"]
    print(f"SYNTHETIC demo sites (6 x 16x16 px, 2019-2020), LOSO pooled r2, {args.encoding} cube vs float32 cube:")
    print(merged.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"max |d r2| = {merged['d_r2'].abs().max():.4f} (target <= 0.005); max abs decode difference of the cubes "
          f"{max(errors):.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
