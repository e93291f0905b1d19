"""Benchmark: the interpretation step of fit-gpp (``write_interpretation``) on a demo run's joined table.

Times the current code and, with ``--baseline-rev``, the same call with the code of an
earlier commit (checked out with ``git worktree`` into a temporary folder and run in a
subprocess on the same table, same machine, one after the other), and prints the ratio:

    .venv/bin/ecoembed demo --out /tmp/demo                      # any demo run folder
    .venv/bin/python experiments/bench_interpret.py --run /tmp/demo/run --baseline-rev 40117ca

Absolute seconds vary with machine load; the ratio between the two in one run is the figure.
SYNTHETIC DATA (the demo's towers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMER = r"""
import json, sys, tempfile, time
if len(sys.argv) > 3:  # time another checkout: its folder first, and the editable install's finder out of the way
    sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", repr(f)).lower()]
    sys.path.insert(0, sys.argv[3])
import pandas as pd
from ecoembed.pipelines.fit_gpp import write_interpretation
run = sys.argv[1]
prov = json.load(open(f"{run}/provenance.json"))
fs = prov["interpreted_feature_set"]
cols = prov["feature_columns"][fs]
table = pd.read_parquet(f"{run}/joined.parquet")
sub = table.dropna(subset=cols)
best = float("inf")
for _ in range(int(sys.argv[2])):
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        write_interpretation(d, sub, cols, seed=0)
        best = min(best, time.perf_counter() - t)
import ecoembed
print(json.dumps({"seconds": best, "features": fs, "n_columns": len(cols), "n_rows": len(sub), "code": ecoembed.__file__}))
"""


def time_code(run: Path, repeats: int, pythonpath: str | None = None) -> dict[str, object]:
    """Run :data:`TIMER` in a subprocess (with ``pythonpath`` first on the path, to time another checkout)."""
    out = subprocess.run([sys.executable, "-c", TIMER, str(run), str(repeats), *([pythonpath] if pythonpath else [])],
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="A fit-gpp run folder (joined.parquet, provenance.json).")
    ap.add_argument("--baseline-rev", help="Git revision whose write_interpretation is timed for the ratio.")
    ap.add_argument("--repeats", type=int, default=2, help="Timings per code version (the fastest is kept).")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    results = {"current": time_code(args.run, args.repeats)}
    if args.baseline_rev:
        with tempfile.TemporaryDirectory() as tmp:
            wt = Path(tmp) / "baseline"
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(wt), args.baseline_rev],
                           check=True, capture_output=True)
            try:
                results["baseline"] = time_code(args.run, args.repeats, pythonpath=str(wt))
            finally:
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(wt)], check=True, capture_output=True)
    t0 = time.strftime("%Y-%m-%d %H:%M")
    print(f"interpretation benchmark ({t0}), run {args.run} (SYNTHETIC demo towers)")
    for name, r in results.items():
        print(f"  {name:9s} {r['seconds']:7.2f} s  ({r['features']}, {r['n_columns']} columns, {r['n_rows']} rows; code {r['code']})")
    if "baseline" in results:
        ratio = float(results["baseline"]["seconds"]) / float(results["current"]["seconds"])  # type: ignore[arg-type]
        print(f"  speed-up vs {args.baseline_rev}: {ratio:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
