"""Benchmark: ``ecoembed demo`` end to end in a temporary folder, with its own per-phase wall times.

Runs :func:`ecoembed.pipelines.demo.run_demo` (6 SYNTHETIC towers, 16x16 px, every head; the
defaults of ``ecoembed demo``) in a subprocess and prints the demo's phase timings (its
``demo_summary.json``), the total, the interpretation / fit-gpp ratio and the pooled r2 of every
model, so a speed-up that changes a result shows. With ``--baseline-rev`` the same demo runs
with the code of an earlier commit (``git worktree`` in a temporary folder, same machine, one
after the other) and the two are printed side by side:

    .venv/bin/python experiments/bench_demo.py                        # the code of this checkout
    .venv/bin/python experiments/bench_demo.py --baseline-rev 47c30cb  # and a commit before it
    .venv/bin/python experiments/bench_demo.py --workers 1            # every step in one process

Target of issue 21 (part 5): under 60 s on an idle 2-core machine, interpretation at most 0.2
of fit-gpp's wall time. Absolute seconds vary with machine load (other jobs on a shared
machine slow every phase): compare runs made one after the other, and read ``load`` (the
1-minute load average before and after each run) next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RUNNER = r"""
import json, sys, threading, time
if len(sys.argv) > 3 and sys.argv[3]:  # another checkout: its folder first, the editable install's finder out of the way
    sys.meta_path = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", repr(f)).lower()]
    sys.path.insert(0, sys.argv[3])
import inspect
import ecoembed
from ecoembed.pipelines.demo import run_demo
try:
    import psutil
except ImportError:
    psutil = None
samples = []  # (wall, CPU seconds of this process, its workers and its finished children)
stop = threading.Event()
def cpu_now():
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            pass
    return total
def sample():
    while not stop.wait(0.25):
        samples.append((time.perf_counter(), cpu_now()))
kwargs = {"progress": False}
if sys.argv[2] and "workers" in inspect.signature(run_demo).parameters:
    kwargs["workers"] = int(sys.argv[2])
if psutil is not None:
    threading.Thread(target=sample, daemon=True).start()
t0 = time.perf_counter()
res = run_demo(sys.argv[1], **kwargs)
stop.set()
if psutil is not None:
    samples.append((time.perf_counter(), cpu_now()))
pooled = res.pooled[["features", "head", "n", "r2"]].to_dict(orient="records")
interp = json.loads((res.run_dir / "provenance.json").read_text())["seconds"].get("interpret")
print(json.dumps({"seconds": res.seconds, "t0": t0, "samples": samples, "interpret": interp, "pooled": pooled,
                  "code": ecoembed.__file__}))
"""


def run_once(workers: int | None, checkout: str | None = None) -> dict[str, Any]:
    """One demo in a temporary folder (in a subprocess, with ``checkout``'s code when given); its timings and r2."""
    with tempfile.TemporaryDirectory(prefix="ecoembed_bench_demo_") as tmp:
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", RUNNER, str(Path(tmp) / "demo"), "" if workers is None else str(workers),
                              checkout or ""], capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
        if out.returncode:
            raise SystemExit(f"demo failed ({out.returncode}):\n{out.stderr[-4000:]}")
    res = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    res.update({"process_wall": wall, "load": (load0, os.getloadavg()[0])})
    return res


def phase_cpu(seconds: dict[str, float], t0: float, samples: list[tuple[float, float]]) -> dict[str, float]:
    """CPU seconds (all processes) spent in each sequential phase of the demo, from the sampled CPU clock.

    The phases are the demo's timings in order (``of which ...`` entries and ``total`` aside): phase i
    spans the sum of the earlier ones to that plus its own, from the start of ``run_demo``.
    """
    if not samples:
        return {}
    walls = np.array([w for w, _ in samples]) - t0
    cpus = np.array([c for _, c in samples])
    out, start = {}, 0.0
    for k, v in seconds.items():
        if k == "total" or k.startswith("of which"):
            continue
        lo, hi = np.interp([start, start + v], walls, cpus, left=cpus[0], right=cpus[-1])
        out[k] = float(hi - lo)
        start += v
    out["total"] = float(cpus[-1] - np.interp(0.0, walls, cpus, left=cpus[0]))
    return out


def interpretation_ratio(seconds: dict[str, float], interpret: float | None) -> float | None:
    """Interpretation seconds (fit-gpp's own timing, in provenance.json) / the demo's fit-gpp seconds."""
    fit = next((v for k, v in seconds.items() if k.startswith("fit-gpp")), None)
    return None if fit is None or interpret is None else interpret / fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=None, help="run_demo(workers=...) [default: the demo's own default].")
    ap.add_argument("--baseline-rev", help="Git revision whose demo is run too, for the comparison.")
    args = ap.parse_args()
    repo = Path(__file__).resolve().parents[1]
    results = {"current": run_once(args.workers)}
    if args.baseline_rev:
        with tempfile.TemporaryDirectory() as tmp:
            wt = Path(tmp) / "baseline"
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(wt), args.baseline_rev],
                           check=True, capture_output=True)
            try:
                results["baseline"] = run_once(args.workers, checkout=str(wt))
            finally:
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(wt)], check=True, capture_output=True)
    print(f"demo benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs; SYNTHETIC towers)")
    for name, r in results.items():
        seconds: dict[str, float] = r["seconds"]
        load = r["load"]
        print(f"\n{name} (code {r['code']}; load average {load[0]:.1f} before, {load[1]:.1f} after):")
        cpu = phase_cpu(seconds, r["t0"], r["samples"])
        print(f"  {'phase':45s} {'wall':>7s}   {'CPU (all processes)':>19s}")
        for k, v in seconds.items():
            print(f"  {k:45s} {v:7.1f} s" + (f"   {cpu[k]:17.1f} s" if k in cpu else ""))
        ratio = interpretation_ratio(seconds, r["interpret"])
        print(f"  interpretation / fit-gpp: {'-' if ratio is None else f'{ratio:.2f}'} (target <= 0.2)")
        print(f"  total {seconds['total']:.1f} s (target < 60 s idle, 2 cores)")
        if cpu:
            print(f"  CPU {cpu['total']:.1f} s in all: on an idle 2-core machine the wall time is at least "
                  f"{cpu['total'] / 2:.1f} s (half of it)")
    print("\npooled r2 (LOSO, paired site-days):")
    names = list(results)
    rows: dict[tuple[str, str], dict[str, float]] = {(p["features"], p["head"]): {} for r in results.values() for p in r["pooled"]}
    for name, r in results.items():
        for p in r["pooled"]:
            rows[(p["features"], p["head"])][name] = p["r2"]
    print(f"  {'features / head':40s} " + " ".join(f"{n:>10s}" for n in names))
    for (fs, h), vals in rows.items():
        print(f"  {fs + ' / ' + h:40s} " + " ".join(f"{vals.get(n, float('nan')):10.4f}" for n in names))


if __name__ == "__main__":
    main()
