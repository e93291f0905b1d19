"""Fused (S1+S2) vs S2-only embeddings in fit-gpp LOSO over several draws of the SYNTHETIC demo.

One demo (6 towers) is a small sample: the sign of "fused minus S2-only" changes
between draws. This script reruns the demo's embeddings-only comparison for
several demo seeds (different synthetic towers each) and prints, per head, the
pooled LOSO r2 of both and their difference, then the mean difference.

    .venv/bin/python experiments/demo_fused_vs_s2only.py --seeds 0 1 2 3 [--model FUSION.safetensors]

About 1 minute per seed on 2 cores. Outputs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="demo seeds (towers differ per seed)")
    parser.add_argument("--model", default=None, help="fusion checkpoint (default: the shipped one)")
    args = parser.parse_args(argv)
    from ecoembed.pipelines.demo import run_demo

    parts = []
    with tempfile.TemporaryDirectory(prefix="ecoembed_fused_vs_s2only_") as tmp:
        for seed in args.seeds:
            res = run_demo(Path(tmp) / f"seed{seed}", seed=seed, feature_sets=("embeddings",), model=args.model, progress=False)
            assert res.fused_vs_s2only is not None
            parts.append(res.fused_vs_s2only[["head", "r2 fused S1+S2", "r2 S2-only"]].assign(seed=seed))
    table = pd.concat(parts, ignore_index=True)[["seed", "head", "r2 fused S1+S2", "r2 S2-only"]]
    table["fused - S2-only"] = table["r2 fused S1+S2"] - table["r2 S2-only"]
    print("SYNTHETIC demo towers, leave-one-site-out r2 pooled over 6 sites, embeddings only")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    mean = table.groupby("head")["fused - S2-only"].agg(["mean", "min", "max"])
    print("\nfused - S2-only r2 over seeds (mean, min, max):")
    print(mean.to_string(float_format=lambda v: f"{v:+.3f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
