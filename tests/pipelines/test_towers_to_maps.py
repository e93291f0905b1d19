"""Offline, end to end on SYNTHETIC towers: local STAC -> `pipeline --fetch` (fetch, embed, fit-gpp) -> `predict-gpp`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from support.cli_run import digests as _digests
from support.cli_run import run_cli as _run

pytest.importorskip("pystac", reason="the STAC extra (pystac, odc-stac) is needed to fetch from a catalog")
pytest.importorskip("odc.stac", reason="the STAC extra (pystac, odc-stac) is needed to fetch from a catalog")

from support.stac_catalog import write_catalog

from ecoembed.gpp.saved import load_model
from ecoembed.sources.chips import tower_pixel

pytestmark = [pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning:odc.geo")]


def test_fetch_embed_fit_predict_from_a_local_catalog(tmp_path: Path) -> None:
    dates = pd.date_range("2021-01-10", "2021-12-20", freq="14D")
    catalog, towers = write_catalog(tmp_path / "inputs", {"AA-One": 500_000.0, "BB-Two": 520_000.0}, dates, n_px=12)
    before = _digests(tmp_path / "inputs")
    out = tmp_path / "pipe"
    args = ["pipeline", "--sites", str(towers), "--out", str(out), "--fetch", "--start", "2021-01-01", "--end", "2021-12-31",
            "--catalog", str(catalog), "--size-px", "12", "--sensor", "s2", "--features", "embeddings+potrad",
            "--head", "linear", "--quiet"]
    rc, stdout, err = _run(args)
    assert rc == 0, stdout + err
    assert "embedded 2 site(s)" in stdout and "SYNTHETIC DATA" in stdout
    for name in ("imagery/AA-One_s2.nc", "imagery/BB-Two_s2.nc", "imagery/sites.csv", "embeddings/AA-One_emb.zarr",
                 "sites_embedded.csv", "run/index.html", "run/models/embeddings_potrad__linear/model.json"):
        assert (out / name).exists(), name
    pooled = pd.read_csv(out / "run" / "metrics_pooled.csv")
    assert pooled["n"].min() > 300  # both towers' daily GPP joined with daily embeddings

    rc, stdout, err = _run(args)  # a finished pipeline is kept, not redone
    assert rc == 0, err
    assert "embedded 0 site(s), kept 2 finished cube(s)" in stdout and "already complete" in stdout

    cube = out / "embeddings" / "AA-One_emb.zarr"
    rc, stdout, err = _run(["predict-gpp", "--run", str(out / "run"), "--cube", str(cube), "--out", str(tmp_path / "map"),
                            "--quiet"])
    assert rc == 0, stdout + err
    model = load_model(out / "run" / "models" / "embeddings_potrad__linear")
    joined = pd.read_parquet(out / "run" / "joined.parquet")
    site = joined[joined["site_id"] == "AA-One"]
    sites = pd.read_csv(towers).set_index("site_id")
    with xr.open_zarr(cube, consolidated=False) as emb:
        row, col = tower_pixel(emb, float(sites.loc["AA-One", "lat"]), float(sites.loc["AA-One", "lon"]))
    with xr.open_dataset(tmp_path / "map" / "gpp.nc") as g:
        got = g["gpp"].isel(y=row, x=col).sel(time=pd.to_datetime(site["date"]).to_numpy()).values
    np.testing.assert_allclose(got, model.predict(site[model.columns].to_numpy(float)), atol=2e-3)
    assert _digests(tmp_path / "inputs") == before  # nothing of the inputs changed


def test_pipeline_without_imagery_and_without_fetch_is_one_line(tmp_path: Path) -> None:
    dates = pd.date_range("2021-01-10", "2021-03-20", freq="14D")
    _, towers = write_catalog(tmp_path / "inputs", {"AA-One": 500_000.0}, dates, n_px=8)
    rc, _, err = _run(["pipeline", "--sites", str(towers), "--out", str(tmp_path / "pipe"), "--quiet"])
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no s2_path" in lines[0] and "--fetch" in lines[0], err
