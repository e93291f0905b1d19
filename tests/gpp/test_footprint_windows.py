"""fit-gpp --footprint ffp on SYNTHETIC towers: FFP weights from half-hourly turbulence, fallback with reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecoembed.pipelines.fit_gpp import run_fit_gpp
from ecoembed.sources.synthetic import write_embedding_sites
from fluxnet import FluxDataError
from fluxnet.turbulence import read_turbulence


def _halfhourly(path: Path, *, wind_from: float, days: int = 20, seed: int = 0) -> Path:
    """SYNTHETIC half-hourly turbulence records (FLUXNET names, -9999 gaps) with the wind mostly from ``wind_from``."""
    rng = np.random.default_rng(seed)
    t = pd.date_range("2019-06-01", periods=48 * days, freq="30min")
    hour = t.hour.to_numpy() + t.minute.to_numpy() / 60
    day = (hour > 7) & (hour < 19)
    table = pd.DataFrame({
        "TIMESTAMP_START": t.strftime("%Y%m%d%H%M"),
        "USTAR": np.clip(rng.normal(0.45, 0.1, len(t)), 0.12, None),
        "WD": (wind_from + rng.normal(0, 15, len(t))) % 360,
        "WS_F": np.clip(rng.normal(3.0, 0.6, len(t)), 0.5, None),
        "H_F_MDS": np.where(day, 150.0, -20.0) + rng.normal(0, 10, len(t)),
        "TA_F": 18 + 5 * np.sin((hour - 9) / 24 * 2 * np.pi),
        "PA_F": 98.0,
    })
    table.loc[::97, "USTAR"] = -9999
    table.to_csv(path, index=False)
    return path


def test_read_turbulence_names_missing_and_daily_refusal(tmp_path: Path) -> None:
    hh = read_turbulence(_halfhourly(tmp_path / "FLX_ZZ-T0_FLUXNET2015_FULLSET_HH_2019-2019_synthetic.csv", wind_from=270))
    assert {"USTAR", "WD", "WS", "H", "TA", "PA"} <= set(hh.columns) and hh["USTAR"].isna().sum() == 10
    assert (hh["TIMESTAMP_START"].diff().dropna() == pd.Timedelta("30min")).all()
    daily = tmp_path / "dd.csv"
    pd.DataFrame({"TIMESTAMP": [20190101, 20190102], "GPP_NT_VUT_REF": [1.0, 2.0]}).to_csv(daily, index=False)
    with pytest.raises(FluxDataError, match="daily file"):
        read_turbulence(daily)


def test_ffp_weights_sites_and_falls_back_with_reasons(tmp_path: Path) -> None:
    csv = write_embedding_sites(tmp_path / "d", n_sites=3, days=120, size_px=21)
    sites = pd.read_csv(csv)
    sites["measurement_height"] = [3.0, 3.0, np.nan]
    sites["canopy_height"] = [0.3, 0.3, 0.3]
    sites["halfhourly_path"] = [_halfhourly(tmp_path / "d" / f"hh{i}_synthetic.csv", wind_from=w, seed=i).name
                                for i, w in enumerate((270, 90, 180))]
    sites.to_csv(csv, index=False)
    res = run_fit_gpp(csv, tmp_path / "run", feature_sets=["embeddings"], heads=["linear"], progress=False, interpret=False,
                      footprint="ffp")
    fp = pd.read_csv(tmp_path / "run" / "footprint.csv").set_index("site_id")
    assert list(fp.loc[["ZZ-T0", "ZZ-T1"], "method"]) == ["ffp", "ffp"]
    assert (fp.loc[["ZZ-T0", "ZZ-T1"], "n_halfhours"] > 500).all()
    assert np.isfinite(fp.loc[["ZZ-T0", "ZZ-T1"], "extent_80_m"]).all()
    assert fp.loc["ZZ-T2", "method"] == "window" and "measurement_height" in fp.loc["ZZ-T2", "fallback_reason"]
    both = pd.read_csv(tmp_path / "run" / "footprint_vs_window.csv")
    assert {"r2_ffp", "r2_window", "r2_change"} <= set(both.columns) and len(both) == 1
    assert both["n_ffp"].iloc[0] == both["n_window"].iloc[0] == res.pooled["n"].iloc[0]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Footprint weighting per site" in report and "footprint vs Gaussian-window" in report
    # the footprint lies upwind: wind from the west weights the western half of the chip more than the eastern half
    from ecoembed.gpp.footprint import tower_window
    from ecoembed.sources.embedding_cube import open_embeddings

    site = pd.read_csv(csv).iloc[0]
    site["flux_path"] = str(tmp_path / "d" / site["flux_path"])
    site["halfhourly_path"] = str(tmp_path / "d" / site["halfhourly_path"])
    with open_embeddings(str(tmp_path / "d" / site["features_path"])) as ds:
        tw = tower_window(ds, site, method="ffp")
    w = tw.weights
    mid = w.shape[1] // 2
    assert tw.method == "ffp" and w[:, :mid].sum() > 3 * w[:, mid + 1:].sum()
