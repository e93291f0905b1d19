"""Inference shortcuts change work, not numbers: dropped unusable dates, vectorised days-to-nearest."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from ecoembed.dates import days_to_nearest as nearest_one
from ecoembed.embed.infer import days_to_nearest, embed_series, series_batch
from ecoembed.models.encoders import S1Encoder, S2Encoder
from ecoembed.models.fusion import FusedEmbeddingModel, FusionNetwork, ModalityConfig
from ecoembed.training.fusion_data import ArraySeries


def _model() -> FusedEmbeddingModel:
    torch.manual_seed(0)
    encoders = {"s2": S2Encoder(d_model=16, embed_dim=8, n_heads=2), "s1": S1Encoder(d_model=16, embed_dim=8, n_heads=2)}
    fusion = FusionNetwork({"s2": ModalityConfig(16, 10), "s1": ModalityConfig(16, 2, 2)}, d_model=16, embed_dim=8, n_heads=2)
    return FusedEmbeddingModel(encoders, fusion).eval()


def _series(n: int = 20, seed: int = 0) -> dict[str, ArraySeries]:
    rng = np.random.default_rng(seed)
    valid2 = rng.random((n, 15)) > 0.4
    valid2[:, [3, 9]] = False  # dates no pixel can use (a scene-wide cloudy acquisition)
    valid2[5] = False  # a pixel with S1 only
    s2 = ArraySeries(rng.standard_normal((n, 15, 10)).astype(np.float32), 18000 + 7 * np.arange(15), valid2)
    s1 = ArraySeries(rng.standard_normal((n, 12, 2)).astype(np.float32), 18001 + 9 * np.arange(12),
                 rng.random((n, 12)) > 0.1, orbit=np.arange(12) % 2)
    s2.values[~valid2] = np.nan  # what is at an unusable step must not matter
    return {"s2": s2, "s1": s1}


def test_dropping_dates_no_pixel_can_use_leaves_embeddings_unchanged() -> None:
    model, series = _model(), _series()
    batch = series_batch(series, np.arange(20))
    assert batch["s2"].values.shape[1] == 13 and batch["s2"].days.tolist()[3] == 18000 + 7 * 4
    full = series_batch(series, np.arange(20), drop_unusable=False)
    days = torch.arange(17990, 18120, 3)
    with torch.no_grad():
        a = model.fusion(model.tokens(batch), days)
        b = model.fusion(model.tokens(full), days)
    torch.testing.assert_close(a, b, rtol=0, atol=2e-6)
    out, empty = embed_series(model, series, days.numpy(), pixel_batch=7, days_per_slab=11)
    assert out.shape == (20, len(days), 8) and not empty.any() and np.isfinite(out).all()
    torch.testing.assert_close(torch.as_tensor(out), b, rtol=0, atol=2e-6)


def test_days_to_nearest_matches_the_per_pixel_search() -> None:
    rng = np.random.default_rng(4)
    q = np.arange(-30, 260)
    for _ in range(50):
        t = int(rng.integers(1, 25))
        s = ArraySeries(np.zeros((9, t, 1), np.float32), np.sort(rng.choice(240, t, replace=False)), rng.random((9, t)) < rng.random())
        got = days_to_nearest(s, q)
        for n in range(9):
            want = nearest_one(s.days[s.valid[n]], q) if s.valid[n].any() else np.full(len(q), 32767)
            assert np.array_equal(got[n], np.minimum(want, 32767)), (t, n)


def test_compiled_query_falls_back_to_eager_with_a_warning(monkeypatch, caplog) -> None:
    import ecoembed.embed.infer as infer

    def broken(fn, **kwargs):  # what a machine without a C++ compiler gives: the first call fails
        def call(*args, **kw):
            raise RuntimeError("InductorError: no working C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    infer._COMPILED.clear()
    model, series = _model(), _series(9)
    days = np.arange(17995, 18100, 2)
    with caplog.at_level("WARNING", logger="ecoembed.embed.infer"):
        got, _ = embed_series(model, series, days, pixel_batch=4, days_per_slab=16, compile=True)
    want, _ = embed_series(model, series, days, pixel_batch=4, days_per_slab=16)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)  # eager on the padded shapes: float rounding only
    assert sum("queries run eagerly" in r.getMessage() for r in caplog.records) == 1
    infer._COMPILED.clear()


@pytest.mark.slow
def test_compiled_query_equals_eager() -> None:
    """torch.compile of the query (padded to one shape: last pixel batch and last slab) gives the eager numbers."""
    import ecoembed.embed.infer as infer

    infer._COMPILED.clear()
    model, series = _model(), _series(9)
    days = np.arange(17995, 18100, 2)
    got, _ = embed_series(model, series, days, pixel_batch=4, days_per_slab=16, compile=True)
    want, _ = embed_series(model, series, days, pixel_batch=4, days_per_slab=16)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    infer._COMPILED.clear()


@pytest.mark.parametrize("encoding", ["int16", "int8", "float32"])
def test_marker_digest_of_written_values_equals_the_store_read_back(tmp_path, encoding) -> None:
    """The digest a block's marker records (hashed as written) is the one a resume computes by re-reading the store."""
    from support.fusion_fakes import write_tiny_scene

    from ecoembed.embed import pipeline

    paths = write_tiny_scene(tmp_path)
    out = tmp_path / "emb.zarr"
    seen: list[pipeline.BlockResult] = []
    pipeline.embed(paths["s2"], out, s1=paths["s1"], model=paths["model"], chunk_px=5, days_per_chunk=16, encoding=encoding,
                   progress=False, on_block_done=seen.append)
    n_days = len(pipeline.query_range(pipeline.open_sensor_cube(pipeline.CubeRequest.of(paths["s2"], "s2")), None, None))
    assert len(seen) > 1
    for res in seen:
        job = pipeline._BlockJob(iy=res.iy, ix=res.ix, y0=5 * res.iy, y1=5 * res.iy + 5, x0=5 * res.ix, x1=5 * res.ix + 5,
                                 s2=pipeline.CubeRequest.of(paths["s2"], "s2"), s1=None, model_path=str(paths["model"]),
                                 store=str(out), markers="", first_day=0, n_days=n_days, days_per_chunk=16, pixel_batch=1,
                                 encoding=encoding)
        sizes = xr.open_zarr(out, consolidated=False).sizes
        job = pipeline._BlockJob(**{**job.__dict__, "y1": min(job.y1, sizes["y"]), "x1": min(job.x1, sizes["x"])})
        assert res.sha256 == pipeline.block_digest(job), (res.iy, res.ix)
