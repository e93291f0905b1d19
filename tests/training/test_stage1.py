"""Stage-1 pretraining loop and checkpoints: learning, resuming, safe loading, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from support.fusion_fakes import tiny_cubes

from ecoembed.errors import CheckpointError, InputError
from ecoembed.models.encoders import S1Encoder, S2Encoder
from ecoembed.training.stage1 import Stage1Config, log_path_for, pretrain_stage1
from ecoembed.weights.encoder_checkpoint import load_encoder_checkpoint, read_encoder_checkpoint, save_encoder_checkpoint
from ecoembed.weights.format import weights_sha256

TINY = Stage1Config(epochs=2, batch_size=32, d_model=16, embed_dim=8, n_heads=2, decoder_hidden=16, lr=5e-3, checkpoint_every=2)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest (and reproducibly) on one thread, even on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cubes():
    return tiny_cubes(size_y=8, size_x=10, n_days=120, seed=0)


def test_reconstruction_error_on_masked_valid_dates_decreases(cubes, tmp_path):
    s2, _ = cubes
    res = pretrain_stage1("s2", [s2], tmp_path / "s2.safetensors", replace(TINY, epochs=6), progress=False)
    errors = [row["recon_mse_masked_valid"] for row in res.epoch_log]
    assert len(errors) == 6
    assert errors[-1] < 0.7 * errors[0], errors
    logged = log_path_for(res.checkpoint).read_text().splitlines()
    assert logged[0].startswith("epoch,step") and len(logged) == 7
    assert len(res.weights_sha256) == 64


def test_s1_pretraining_runs_with_orbits(cubes, tmp_path):
    _, s1 = cubes
    res = pretrain_stage1("s1", [s1], tmp_path / "s1.safetensors", TINY, progress=False)
    assert isinstance(res.encoder, S1Encoder)
    loaded = load_encoder_checkpoint(res.checkpoint, sensor="s1")
    assert loaded.weights_sha256 == res.weights_sha256
    assert loaded.metadata["synthetic"] is True and loaded.metadata["bands"] == ["VV", "VH"]


def test_resume_equals_uninterrupted_run(cubes, tmp_path):
    s2, _ = cubes
    straight = pretrain_stage1("s2", [s2], tmp_path / "a.safetensors", replace(TINY, epochs=3), progress=False)
    pretrain_stage1("s2", [s2], tmp_path / "b.safetensors", replace(TINY, epochs=1), progress=False)
    _, meta = read_encoder_checkpoint(tmp_path / "b.safetensors")
    assert meta["step"] == meta["steps_per_epoch"]
    resumed = pretrain_stage1("s2", [s2], tmp_path / "b.safetensors", replace(TINY, epochs=3), progress=False)
    assert resumed.weights_sha256 == straight.weights_sha256
    assert [r["step"] for r in resumed.epoch_log] == [r["step"] for r in straight.epoch_log]
    # re-running a finished command does no more steps and keeps the weights
    again = pretrain_stage1("s2", [s2], tmp_path / "b.safetensors", replace(TINY, epochs=3), progress=False)
    assert again.weights_sha256 == straight.weights_sha256


def test_resume_refuses_another_architecture_or_sensor(cubes, tmp_path):
    s2, s1 = cubes
    out = tmp_path / "s2.safetensors"
    pretrain_stage1("s2", [s2], out, replace(TINY, epochs=1), progress=False)
    with pytest.raises(CheckpointError, match="architecture"):
        pretrain_stage1("s2", [s2], out, replace(TINY, epochs=2, d_model=32), progress=False)
    with pytest.raises(CheckpointError, match="sensor"):
        pretrain_stage1("s1", [s1], out, replace(TINY, epochs=2), progress=False)
    # --no-resume starts afresh
    fresh = pretrain_stage1("s2", [s2], out, replace(TINY, epochs=1, d_model=32), resume=False, progress=False)
    assert fresh.encoder.d_model == 32


def _saved(tmp_path, cls=S2Encoder):
    torch.manual_seed(0)
    enc = cls(d_model=16, embed_dim=8, n_heads=2)
    path = tmp_path / "enc.safetensors"
    sha = save_encoder_checkpoint(path, enc, {"note": "test"})
    return enc, path, sha


def test_checkpoint_round_trip_is_safetensors_and_hashed(tmp_path):
    enc, path, sha = _saved(tmp_path)
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])  # a safetensors header, not a pickle
    assert json.loads(header["__metadata__"]["ecoembed"])["weights_sha256"] == sha
    loaded = load_encoder_checkpoint(path, sensor="s2")
    assert sha == weights_sha256(enc.state_dict()) == loaded.weights_sha256
    assert not loaded.encoder.training and not any(p.requires_grad for p in loaded.encoder.parameters())
    x, days, mask = torch.randn(2, 5, 10), torch.arange(18000, 18005).expand(2, 5), torch.ones(2, 5, dtype=torch.bool)
    enc.eval()
    assert torch.equal(loaded.encoder(x, days, mask).embedding, enc(x, days, mask).embedding)


def test_missing_truncated_and_mismatched_checkpoints_raise_checkpoint_error(tmp_path):
    _, path, _ = _saved(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder_checkpoint(tmp_path / "nope.safetensors")
    truncated = tmp_path / "trunc.safetensors"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"trunc\.safetensors.*corrupt"):
        load_encoder_checkpoint(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage"):
        load_encoder_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="'s2' encoder checkpoint, but a 's1'"):
        load_encoder_checkpoint(path, sensor="s1")
    with pytest.raises(CheckpointError, match="band order"):
        load_encoder_checkpoint(path, bands=["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"])
    # weights of another shape under the same metadata
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    tensors["encoder.value_proj.weight"] = torch.zeros(16, 9)
    bad = tmp_path / "shape.safetensors"
    save_file(tensors, str(bad), metadata=meta)
    with pytest.raises(CheckpointError, match=r"shape\.safetensors: weights do not fit.*value_proj"):
        load_encoder_checkpoint(bad)
    tensors["encoder.value_proj.weight"] = load_file(str(path))["encoder.value_proj.weight"] + 1
    altered = tmp_path / "altered.safetensors"
    save_file(tensors, str(altered), metadata=meta)
    with pytest.raises(CheckpointError, match="hash"):
        load_encoder_checkpoint(altered)


def test_bad_inputs(cubes, tmp_path):
    s2, _ = cubes
    with pytest.raises(InputError, match="sensor"):
        pretrain_stage1("s3", [s2], tmp_path / "x.safetensors", TINY, progress=False)
    with pytest.raises(InputError, match="no cube"):
        pretrain_stage1("s2", [], tmp_path / "x.safetensors", TINY, progress=False)
    with pytest.raises(InputError, match="divisible"):
        pretrain_stage1("s2", [s2], tmp_path / "x.safetensors", replace(TINY, n_heads=3), progress=False)
    with pytest.raises(InputError, match="does not exist"):
        pretrain_stage1("s2", [tmp_path / "missing.nc"], tmp_path / "x.safetensors", TINY, progress=False)


def test_cli_pretrain_end_to_end(cubes, tmp_path):
    from support.fusion_fakes import write_cube

    from ecoembed.cli import main

    s2, _ = cubes
    cube = tmp_path / "s2_synthetic.nc"
    write_cube(s2, cube)
    out = tmp_path / "ck" / "s2.safetensors"
    args = ["pretrain", "--sensor", "s2", "--data", str(cube), "--out", str(out), "--epochs", "1", "--batch-size", "64",
            "--embed-dim", "8", "--d-model", "16", "--heads", "2", "--quiet"]
    assert main(args) == 0
    assert load_encoder_checkpoint(out, sensor="s2").encoder.embed_dim == 8
    # an S2 cube given to the S1 encoder, and a missing cube: one-line errors, exit 2
    assert main(["pretrain", "--sensor", "s1", "--data", str(cube), "--out", str(tmp_path / "s1.safetensors"), "--quiet"]) == 2
    assert main(["pretrain", "--sensor", "s2", "--data", str(tmp_path / "nope.nc"), "--out", str(out), "--quiet"]) == 2


def test_cli_help_mentions_units_and_defaults():
    from click.testing import CliRunner

    from ecoembed.cli import cli

    res = CliRunner().invoke(cli, ["pretrain", "--help"])
    assert res.exit_code == 0
    for word in ("--sensor", "--resume", "--epochs", "--stage", "default", "safetensors"):
        assert word in res.output


def test_export_encoder_is_small_and_loadable(cubes, tmp_path):
    from ecoembed.weights.encoder_checkpoint import export_encoder
    from ecoembed.weights.format import file_sha256

    s2, _ = cubes
    res = pretrain_stage1("s2", [s2], tmp_path / "train.safetensors", replace(TINY, epochs=1), progress=False)
    sha, meta = export_encoder(res.checkpoint, tmp_path / "ship" / "s2_encoder.safetensors", {"synthetic": True})
    shipped = tmp_path / "ship" / "s2_encoder.safetensors"
    assert sha == file_sha256(shipped)
    assert shipped.stat().st_size < (tmp_path / "train.safetensors").stat().st_size  # no optimizer/decoder
    sidecar = json.loads((tmp_path / "ship" / "s2_encoder.json").read_text())
    assert sidecar["file_sha256"] == sha and sidecar["synthetic"] is True and sidecar["normalisation"]["bands"][0] == "B02"
    loaded = load_encoder_checkpoint(shipped, sensor="s2")
    assert loaded.weights_sha256 == res.weights_sha256 == meta["weights_sha256"]
    assert not any(k.startswith(("optim.", "decoder.")) for k in read_encoder_checkpoint(shipped)[0])


def test_in_memory_cubes_are_named_in_the_training_metadata() -> None:
    import xarray as xr

    from ecoembed.training.stage1 import cube_label

    assert cube_label(xr.Dataset(attrs={"name": "field A"})) == "field A"
    assert cube_label(xr.Dataset(attrs={"synthetic": True, "sensor": "sentinel-2-l2a", "seed": 3})) == "synthetic sentinel-2-l2a seed 3"
    assert cube_label(xr.Dataset()) == "Dataset"  # nothing to go by
