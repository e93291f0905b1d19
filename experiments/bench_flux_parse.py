"""Benchmark: read_flux on one full-width synthetic HH site-year vs a bare pyarrow read.

Writes a synthetic FLUXNET FULLSET HH file (17,520 half-hours of 2019, 267
columns, labelled ``synthetic`` in its name) into a temporary folder, then
times

- ``fluxnet.read_flux`` (parse the needed columns, checks, daily aggregation);
- ``pyarrow.csv.read_csv`` of the same file: the columns read_flux reads (the
  issue's comparison) and, for reference, all columns.

and prints the best-of-N times and their ratio (target: <= 1.5).

The column layout is the header of the real CH-Cha ONEFlux file in
``../shared/data`` when present; otherwise a documented fallback: the columns
read_flux uses plus numbered filler columns ``FILLER_001`` ... to 267.

Run: ``.venv/bin/python experiments/bench_flux_parse.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv

from fluxnet import read_flux

REAL_HEADER_FILE = (
    Path(__file__).resolve().parents[1].parent
    / "shared" / "data" / "fluxnet" / "FLX_CH-Cha_FLUXNET2015_FULLSET_HH_2005-2020_beta-3.csv"
)
N_COLUMNS = 267
FALLBACK_CORE = [
    "TIMESTAMP_START", "TIMESTAMP_END", "TA_F", "SW_IN_F", "VPD_F", "P_F", "PPFD_IN",
    "NEE_VUT_REF", "NEE_VUT_REF_QC", "GPP_NT_VUT_REF", "GPP_DT_VUT_REF",
]


def column_names() -> tuple[list[str], str]:
    """The 267 column names and where they came from."""
    if REAL_HEADER_FILE.is_file():
        with REAL_HEADER_FILE.open() as stream:
            return stream.readline().strip().split(","), f"header of {REAL_HEADER_FILE.name}"
    fillers = [f"FILLER_{i:03d}" for i in range(1, N_COLUMNS - len(FALLBACK_CORE) + 1)]
    return FALLBACK_CORE + fillers, "fallback list (real header absent)"


def synthetic_site_year(columns: list[str], seed: int = 0) -> pd.DataFrame:
    """Physically plausible synthetic half-hourly values for 2019 (labelled synthetic by the file name)."""
    rng = np.random.default_rng(seed)
    start = pd.date_range("2019-01-01", periods=17_520, freq="30min")
    hour = start.hour.to_numpy() + start.minute.to_numpy() / 60
    doy = start.day_of_year.to_numpy()
    season = np.sin(2 * np.pi * (doy - 105) / 365)  # peaks in summer
    sun = np.clip(np.sin(np.pi * (hour - 6) / 12), 0, None)
    sw_in = 800 * sun * (0.6 + 0.4 * season) * rng.uniform(0.5, 1.0, len(start))
    gpp = np.clip(25 * sun * (0.5 + 0.5 * season) + rng.normal(0, 1, len(start)), -2, None)
    known = {
        "TIMESTAMP_START": start.strftime("%Y%m%d%H%M").astype(np.int64),
        "TIMESTAMP_END": (start + pd.Timedelta(minutes=30)).strftime("%Y%m%d%H%M").astype(np.int64),
        "TA_F": 10 + 10 * season + 5 * sun,
        "SW_IN_F": sw_in,
        "VPD_F": np.clip(5 + 5 * season + 8 * sun, 0, None),
        "P_F": np.where(rng.uniform(size=len(start)) < 0.05, rng.exponential(0.8, len(start)), 0.0),
        "PPFD_IN": sw_in * 2.1,
        "NEE_VUT_REF_QC": rng.choice([0, 1, 2, 3], size=len(start), p=[0.5, 0.25, 0.15, 0.1]),
        "GPP_NT_VUT_REF": gpp,
        "GPP_DT_VUT_REF": gpp * rng.uniform(0.85, 1.15, len(start)),
    }
    data = {}
    for name in columns:
        if name in known:
            data[name] = known[name]
        elif name.endswith(("_QC", "_N", "_METHOD")):
            data[name] = rng.integers(0, 4, len(start))
        else:
            data[name] = np.round(rng.normal(0, 10, len(start)), 4)
    return pd.DataFrame(data)


def read_columns(path: Path) -> list[str]:
    """The columns read_flux parses from ``path`` (timestamps + its column plan), in file order."""
    from fluxnet.read import _column_plan, detect_format

    fmt = detect_format(path)
    wanted = set(_column_plan(fmt, path, "mean").values()) | {"TIMESTAMP_START", "TIMESTAMP_END"}
    return [c for c in fmt.columns if c in wanted]


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each reader (best is kept)")
    args = parser.parse_args()
    columns, origin = column_names()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "FLX_ZZ-Bch_FLUXNET2015_FULLSET_HH_2019-2019_synthetic.csv"
        synthetic_site_year(columns).to_csv(path, index=False, float_format="%.4f")
        size_mb = path.stat().st_size / 1e6
        table = read_flux(path)  # warm-up and sanity check
        assert len(table) == 365, len(table)
        bare = best_time(lambda: pacsv.read_csv(path), args.repeats)
        same = pacsv.ConvertOptions(include_columns=read_columns(path))  # the comparison: same columns
        bare_same = best_time(lambda: pacsv.read_csv(path, convert_options=same), args.repeats)
        ours = best_time(lambda: read_flux(path), args.repeats)
    print(f"file: 17520 rows x {len(columns)} columns ({origin}), {size_mb:.1f} MB, synthetic")
    print(f"pyarrow.csv.read_csv (all columns): {bare * 1000:.1f} ms (best of {args.repeats})")
    print(f"fluxnet.read_flux (-> 365 days):    {ours * 1000:.1f} ms (best of {args.repeats})")
    print(f"pyarrow.csv.read_csv (the {len(same.include_columns)} columns read_flux reads): {bare_same * 1000:.1f} ms")
    print(f"ratio read_flux / pyarrow, same columns: {ours / bare_same:.2f} (target <= 1.5)")
    print(f"ratio read_flux / pyarrow, all columns:  {ours / bare:.2f}")


if __name__ == "__main__":
    main()
