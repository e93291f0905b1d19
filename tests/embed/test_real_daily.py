"""The shipped model on real Sentinel data: real exports embed; daily embeddings are smooth, year-stationary, flagged.

Reads ../shared/data (skips with a reason when absent): the held-out WorldCereal patch
0000280849BAC91C (never seen in pretraining) and the Spain cube (B04/B08 only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from ecoembed.cli import main as cli_main
from ecoembed.dates import to_days
from ecoembed.embed.infer import embed_series
from ecoembed.errors import InputError
from ecoembed.sources.chips import encoder_series
from ecoembed.sources.embedding_cube import NO_OBSERVATION, open_embeddings
from ecoembed.sources.local import open_cube
from ecoembed.weights import load_fusion_model

PATCH = "0000280849BAC91C"


def _patch(shared_data: Path) -> tuple[list[Path], list[Path]]:
    folder = shared_data / "worldcereal" / PATCH
    return sorted(folder.glob("S2_L2A_*.nc")), sorted(folder.glob("S1_*.nc"))


@pytest.fixture(scope="module")
def block(shared_data: Path) -> dict[str, object]:
    """Daily fused embeddings of a 10 x 10 px block of the held-out patch over its whole period."""
    s2_files, s1_files = _patch(shared_data)
    s2 = open_cube(s2_files, "s2").isel(y=slice(20, 30), x=slice(20, 30)).load()
    s1 = open_cube(s1_files, "s1", like=open_cube(s2_files, "s2")).isel(y=slice(20, 30), x=slice(20, 30)).load()
    series = {"s2": encoder_series(s2, "s2"), "s1": encoder_series(s1, "s1")}
    days = np.arange(int(to_days(s2["time"].values).min()), int(to_days(s2["time"].values).max()) + 1)
    model = load_fusion_model().model
    emb, empty = embed_series(model, series, days)
    return {"model": model, "series": series, "days": days, "emb": emb, "empty": empty}


def test_cli_embeds_the_real_patch_from_its_three_files(shared_data: Path, tmp_path: Path) -> None:
    s2_files, s1_files = _patch(shared_data)
    out = tmp_path / "emb.zarr"
    args = ["embed", *[a for f in s2_files for a in ("--s2", str(f))], *[a for f in s1_files for a in ("--s1", str(f))],
            "--out", str(out), "--start", "2019-05-01", "--end", "2019-05-20"]
    assert cli_main(args) == 0
    ds = open_embeddings(out)
    assert ds.attrs["bands_s2"] == "B02,B03,B04,B05,B06,B07,B08,B8A,B11,B12" and ds.attrs["bands_s1"] == "VV,VH"
    emb = ds["embedding"].values
    assert emb.shape == (20, 64, 64, ds.sizes["feature"]) and np.isfinite(emb).all()
    gap = ds["days_to_s2"].values
    assert gap.min() == 0 and (gap < NO_OBSERVATION).all() and ds["days_to_s1"].values.max() <= 12


def test_cli_embeds_the_spain_cube_with_two_bands(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "spain.zarr"
    assert cli_main(["embed", "--s2", str(shared_data / "sentinel2" / "raw_s2_ndvi_field.nc"), "--out", str(out),
                     "--start", "2019-06-01", "--end", "2019-06-30"]) == 0
    ds = open_embeddings(out)
    assert ds.attrs["bands_s2"] == "B04,B08" and ds.attrs["modalities"] == "s2"
    emb = ds["embedding"].values
    has_obs = ds["days_to_s2"].values < NO_OBSERVATION  # (time, y, x)
    assert np.isfinite(emb[has_obs]).all()
    # the export is masked to a field (27 % of its pixels are NaN on every date): exactly those have no observation
    with xr.open_dataset(shared_data / "sentinel2" / "raw_s2_ndvi_field.nc") as raw:
        footprint = np.isfinite(raw["B04"].values).any(axis=0)
    assert (has_obs == footprint[None]).mean() > 0.99 and not has_obs[:, ~footprint].any()


def test_queries_far_from_any_observation_are_refused_unless_allowed(shared_data: Path, tmp_path: Path) -> None:
    s2_files, _ = _patch(shared_data)
    args = ["embed", *[a for f in s2_files for a in ("--s2", str(f))], "--start", "2016-01-01", "--end", "2016-01-05"]
    assert cli_main([*args, "--out", str(tmp_path / "far.zarr")]) == 2
    assert not (tmp_path / "far.zarr").exists()
    with pytest.raises(InputError, match="allow-extrapolation"):
        from ecoembed.embed.pipeline import embed

        embed(s2_files, tmp_path / "far2.zarr", start="2016-01-01", end="2016-01-05", progress=False)
    near = ["embed", *[a for f in s2_files for a in ("--s2", str(f))], "--start", "2018-06-01", "--end", "2018-06-03"]
    assert cli_main([*near, "--out", str(tmp_path / "near.zarr"), "--allow-extrapolation"]) == 0
    assert open_embeddings(tmp_path / "near.zarr")["days_to_s2"].values.min() > 60  # flagged: far from the first date


def test_day_to_day_changes_have_no_sub_weekly_spectral_peak(block: dict[str, object]) -> None:
    """Power spectrum of daily embedding differences: no peak at periods < 16 days above 3x its neighbours,
    except at the revisit intervals (S2 5 days, S1 6 and 12 days) and their harmonics."""
    emb = np.asarray(block["emb"])[~np.asarray(block["empty"])]
    diff = np.diff(emb, axis=1)
    power = (np.abs(np.fft.rfft(diff - diff.mean(1, keepdims=True), axis=1)) ** 2).mean(axis=(0, 2))
    freq = np.fft.rfftfreq(diff.shape[1], d=1.0)  # cycles per day
    revisit = [1 / p for p in (5.0, 2.5, 6.0, 3.0, 12.0)]
    peaks = []
    for i in range(3, len(freq) - 3):
        if freq[i] <= 1 / 16:
            continue
        if any(abs(freq[i] - r) < 2 * (freq[1] - freq[0]) for r in revisit):
            continue
        neighbours = np.r_[power[i - 3:i - 1], power[i + 2:i + 4]]
        if power[i] > 3 * np.median(neighbours):
            peaks.append((round(1 / freq[i], 2), float(power[i] / np.median(neighbours))))
    assert not peaks, f"spectral peaks (period days, ratio to neighbours): {peaks}"


def test_shifting_every_date_by_whole_years_barely_moves_the_embedding(block: dict[str, object]) -> None:
    model, series, days = block["model"], block["series"], np.asarray(block["days"])
    shift = 1461  # four calendar years, one leap day included: every day-of-year is kept
    moved = {k: type(v)(**{**v.__dict__, "days": v.days + shift}) for k, v in series.items()}  # type: ignore[attr-defined]
    base = np.asarray(block["emb"])
    emb_moved, _ = embed_series(model, moved, days + shift)
    ok = ~np.asarray(block["empty"])
    change = np.abs(emb_moved[ok] - base[ok]).mean()
    seasonal = np.abs(base[ok][:, 30:] - base[ok][:, :-30]).mean()
    assert change < 0.10 * seasonal, (change, seasonal)
