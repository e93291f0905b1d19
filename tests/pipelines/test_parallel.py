"""Worker processes change the time a run takes, never what it computes (issue 21, part 5: the one-minute demo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from ecoembed.errors import InputError
from ecoembed.gpp.join import window_indices
from ecoembed.gpp.options import DEFAULT_WINDOW_PX
from ecoembed.pipelines.demo import TOWER_CHIP_MARGIN_PX, _tower_chip
from ecoembed.pipelines.fit_gpp import run_fit_gpp
from ecoembed.pipelines.parallel import run_calls
from ecoembed.sources.synthetic import write_demo_sites
from ecoembed.sources.synthetic import write_embedding_sites as make_sites


def _fails(x: int) -> int:
    if x == 2:
        raise InputError("site 2: no usable day")
    return x


@pytest.mark.filterwarnings("ignore:A worker stopped:UserWarning")  # joblib stops the workers after an error: expected
def test_run_calls_keeps_the_order_and_raises_the_callers_error() -> None:
    calls = [(pow, (x, 2), {}) for x in range(7)]
    assert run_calls(calls, workers=2) == run_calls(calls, workers=1) == [x * x for x in range(7)]
    with pytest.raises(InputError, match="site 2: no usable day"):
        run_calls([(_fails, (x,), {}) for x in range(4)], workers=2)


def test_fit_gpp_on_two_workers_writes_the_same_numbers(tmp_path: Path) -> None:
    csv = make_sites(tmp_path / "data", n_sites=4, days=200)
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"run{workers}"
        res = run_fit_gpp(csv, out, feature_sets=["embeddings", "meteo"], heads=["linear", "xgboost", "mlp"], progress=False,
                          workers=workers, keep_models=["embeddings"])
        runs[workers] = out
        assert res.seconds["interpret"] > 0 and (out / "index.html").is_file()
    for name in ("metrics_pooled.csv", "metrics_per_site.csv", "decomposition.csv", "phenology.csv", "lags.csv",
                 "daily_vs_8day.csv", "skill_differences.csv", "interpret_permutation_family.csv", "models/coverage.csv"):
        a, b = pd.read_csv(runs[1] / name), pd.read_csv(runs[2] / name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9, atol=1e-12, obj=name)
    pa, pb = pd.read_parquet(runs[1] / "predictions.parquet"), pd.read_parquet(runs[2] / "predictions.parquet")
    assert pa[["site_id", "features", "head"]].equals(pb[["site_id", "features", "head"]])
    np.testing.assert_allclose(pa["predicted"], pb["predicted"], rtol=1e-9, atol=1e-12)


def test_tower_chip_holds_the_whole_tower_window(tmp_path: Path) -> None:
    """The demo embeds unmapped sites from a crop: the tower window must be the same pixels, with the same weights."""
    csv = write_demo_sites(tmp_path, n_sites=3, size_px=16, progress=False)
    sites = pd.read_csv(csv)
    for _, site in sites.iterrows():
        s2, s1 = tmp_path / site["s2_path"], tmp_path / site["s1_path"]
        chip2, chip1 = _tower_chip(tmp_path, str(site["site_id"]), s2, s1, float(site["lat"]), float(site["lon"]))
        with xr.open_dataset(s2) as full, xr.open_dataset(chip2) as chip, xr.open_dataset(chip1) as chip_s1:
            edge = DEFAULT_WINDOW_PX + 2 * TOWER_CHIP_MARGIN_PX
            assert chip.sizes["y"] <= edge and chip.sizes["x"] <= edge and chip.sizes["time"] == full.sizes["time"]
            assert chip_s1.sizes["y"] == chip.sizes["y"] and chip.attrs["crs"] == full.attrs["crs"]
            rf, cf, wf = window_indices(full, site["lat"], site["lon"], DEFAULT_WINDOW_PX)
            rc, cc, wc = window_indices(chip, site["lat"], site["lon"], DEFAULT_WINDOW_PX)
            np.testing.assert_array_equal(full["x"].values[cf], chip["x"].values[cc])
            np.testing.assert_array_equal(full["y"].values[rf], chip["y"].values[rc])
            np.testing.assert_array_equal(wf, wc)
            np.testing.assert_array_equal(full["B08"].isel(y=rf, x=cf).values, chip["B08"].isel(y=rc, x=cc).values)
