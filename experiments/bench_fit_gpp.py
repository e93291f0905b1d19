"""Time ``fit-gpp`` leave-one-site-out on 50 SYNTHETIC site-years x 64 embedding features, one head at a time.

Writes 50 synthetic towers (one year of daily FLUXNET-DD GPP each, a 9x9 px
daily embedding cube of 64 features whose first feature is fAPAR-like; the
fixture ``ecoembed.sources.synthetic.write_embedding_sites``), then for each head runs the real
``run_fit_gpp`` (join + LOSO CV + metrics + report, interpretation off) and
prints the wall time split into join, cross-validation and total, with the
pooled out-of-fold r2 so a fast-but-broken head shows.

    taskset -c 0,1 .venv/bin/python experiments/bench_fit_gpp.py [--sites 50] [--features 64] [--head xgboost]

Target of issue 7: LOSO with xgboost < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=50, help="synthetic towers (one site-year each)")
    parser.add_argument("--features", type=int, default=64, help="embedding features")
    parser.add_argument("--head", dest="heads", action="append", choices=["linear", "xgboost", "mlp"],
                        help="head(s) to time [default: all three]")
    parser.add_argument("--n-jobs", type=int, default=2, help="threads per head fit")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args(argv)
    heads = args.heads or ["linear", "xgboost", "mlp"]

    import torch

    from ecoembed.pipelines.fit_gpp import run_fit_gpp
    from ecoembed.sources.synthetic import write_embedding_sites

    torch.set_num_threads(args.n_jobs)
    work = args.work or Path(tempfile.mkdtemp(prefix="ecoembed_bench_fit_gpp_"))
    t0 = time.perf_counter()
    csv = write_embedding_sites(work / "data", n_sites=args.sites, n_feat=args.features, days=365)
    print(f"SYNTHETIC inputs: {args.sites} sites x 365 days, embedding cube 9x9 px x {args.features} features "
          f"(written in {time.perf_counter() - t0:.1f} s) under {work}")
    print(f"threads per fit: {args.n_jobs}; torch {torch.__version__}")
    print(f"{'head':8s} {'join s':>7s} {'LOSO CV s':>10s} {'total s':>8s} {'rows':>7s} {'pooled r2':>9s}")
    for head in heads:
        t = time.perf_counter()
        res = run_fit_gpp(csv, work / f"run_{head}", feature_sets=["embeddings"], heads=[head], cv="loso",
                          overwrite=True, progress=False, n_jobs=args.n_jobs, interpret=False)
        total = time.perf_counter() - t
        cv_s = res.seconds[f"cv embeddings / {head}"]
        row = res.pooled.iloc[0]
        print(f"{head:8s} {res.seconds['join']:7.1f} {cv_s:10.1f} {total:8.1f} {int(row['n']):7d} {row['r2']:9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
