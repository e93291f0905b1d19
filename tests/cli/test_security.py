"""Security (issue #7): checkpoints never unpickle; crafted files are refused; sites.csv paths stay put.

* Every checkpoint loader (stage-1 ``read_checkpoint`` / ``load_encoder_checkpoint``,
  fusion ``read_fusion_checkpoint`` / ``load_fusion_model``) reads safetensors
  only: a pickle-bearing ``.pt`` (plain pickle or ``torch.save`` zip) is
  refused with :class:`CheckpointError` and its payload never runs; loading a
  good checkpoint works with ``pickle``/``torch.load`` disabled.
* Crafted safetensors headers (huge length, out-of-bounds offsets, unknown
  dtype, non-JSON or non-object metadata, class names that are not
  registered modules, malformed configs) are refused with ``CheckpointError``.
* ``sites.csv`` paths: absolute, ``~``, ``..`` and symlink escapes are refused
  unless ``allow_absolute_paths=True`` (tests/test_fluxnet_sites.py covers the
  plain absolute and ``../`` cases; these are the sneakier spellings).
"""

from __future__ import annotations

import json
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from ecoembed.errors import CheckpointError
from ecoembed.weights.encoder_checkpoint import load_encoder_checkpoint, read_encoder_checkpoint, save_encoder_checkpoint
from ecoembed.weights.format import STAGE1_FORMAT
from ecoembed.weights.fusion_checkpoint import read_fusion_checkpoint
from fluxnet import FluxDataError, read_sites_csv


class _Payload:
    """Unpickling this creates ``marker`` (a harmless stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _load_fusion(path: Path) -> Any:
    from ecoembed.weights import load_fusion_model

    return load_fusion_model(path)


LOADERS: dict[str, Callable[[Path], Any]] = {
    "read_encoder_checkpoint": read_encoder_checkpoint,
    "load_encoder_checkpoint": load_encoder_checkpoint,
    "read_fusion_checkpoint": read_fusion_checkpoint,
    "load_fusion_model": _load_fusion,
}


def _pickle_plain(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))


def _pickle_torch_zip(path: Path, marker: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}, "evil": _Payload(marker)}, path)


def _pickle_renamed_safetensors(path: Path, marker: Path) -> None:
    _pickle_plain(path, marker)


@pytest.mark.parametrize("loader", list(LOADERS), ids=list(LOADERS))
@pytest.mark.parametrize(
    ("name", "write"),
    [("model.pt", _pickle_plain), ("model_zip.pt", _pickle_torch_zip), ("model.safetensors", _pickle_renamed_safetensors)],
    ids=["pickle", "torch-save-zip", "pickle-named-safetensors"],
)
def test_pickle_checkpoints_are_refused_and_never_run(
    loader: str, name: str, write: Callable[[Path, Path], None], tmp_path: Path
) -> None:
    marker = tmp_path / "PAYLOAD_RAN"
    path = tmp_path / name
    write(path, marker)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")) as info:
        LOADERS[loader](path)
    assert "corrupt" in str(info.value) and "never loads" in str(info.value) and ".safetensors" in str(info.value)
    assert not marker.exists(), "unpickling ran the payload"


def test_good_checkpoints_load_with_pickle_disabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof that loading uses no pickle at all: both pickle and torch.load are booby-trapped."""
    from support.fusion_fakes import fake_fusion_checkpoint

    from ecoembed.models.encoders import S2Encoder

    torch.manual_seed(0)
    save_encoder_checkpoint(tmp_path / "enc.safetensors", S2Encoder(d_model=16, embed_dim=8, n_heads=2), {"note": "synthetic test"})
    fake_fusion_checkpoint(tmp_path / "fusion.safetensors")

    def trap(*args: object, **kwargs: object) -> None:
        raise AssertionError("a checkpoint loader called pickle/torch.load")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, trap)
    assert load_encoder_checkpoint(tmp_path / "enc.safetensors", sensor="s2").encoder.embed_dim == 8
    assert _load_fusion(tmp_path / "fusion.safetensors").model.fusion.embed_dim == 8


# --- crafted safetensors files ---------------------------------------------------------------


def _safetensors_bytes(header: dict[str, Any], data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


CRAFTED_HEADERS: dict[str, bytes] = {
    "huge-header-length": struct.pack("<Q", 2**60) + b"{}",
    "offsets-past-the-end": _safetensors_bytes({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, b"\0" * 16),
    "unknown-dtype": _safetensors_bytes({"w": {"dtype": "O", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),
    "metadata-not-json": _safetensors_bytes({"__metadata__": {"ecoembed": "{not json"}}),
    "metadata-a-list": _safetensors_bytes({"__metadata__": {"ecoembed": "[1, 2]"}}),
    "header-not-json": struct.pack("<Q", 9) + b"cos\nsystem",
    "empty-file": b"",
}


@pytest.mark.parametrize("loader", list(LOADERS), ids=list(LOADERS))
@pytest.mark.parametrize("crafted", list(CRAFTED_HEADERS), ids=list(CRAFTED_HEADERS))
def test_crafted_safetensors_headers_are_refused(loader: str, crafted: str, tmp_path: Path) -> None:
    path = tmp_path / f"{crafted}.safetensors"
    path.write_bytes(CRAFTED_HEADERS[crafted])
    with pytest.raises(CheckpointError, match=crafted):
        LOADERS[loader](path)


def _stage1_with(tmp_path: Path, meta: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    path = tmp_path / "crafted.safetensors"
    save_file({"encoder.x": torch.zeros(1)}, str(path), metadata={"ecoembed": json.dumps({"format": STAGE1_FORMAT, **meta})})
    return path


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({"encoder": "os.system"}, "not an object"),
        ({"encoder": {"class": "eval", "config": {}}}, "unknown encoder class 'eval'"),
        ({"encoder": {"class": "os.system", "config": {}}}, "unknown encoder class 'os.system'"),
        ({"encoder": {"class": "S2Encoder", "config": "rm -rf /"}}, "config"),
        ({"encoder": {"class": "S2Encoder", "config": {"__class__": 1}}}, "config"),
    ],
    ids=["spec-string", "builtin-name", "dotted-name", "config-string", "config-unknown-key"],
)
def test_stage1_metadata_cannot_name_arbitrary_code(tmp_path: Path, meta: dict[str, Any], fragment: str) -> None:
    with pytest.raises(CheckpointError, match=rf"crafted\.safetensors.*{fragment}"):
        load_encoder_checkpoint(_stage1_with(tmp_path, meta))


@pytest.fixture(scope="module")
def fusion_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a valid (fake-encoder) fusion checkpoint, to be altered."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    from support.fusion_fakes import fake_fusion_checkpoint

    path = tmp_path_factory.mktemp("fusion") / "fusion.safetensors"
    fake_fusion_checkpoint(path)
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["ecoembed"])
    return load_file(str(path)), meta


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"encoders": {"s2": {"class": "builtins.eval", "config": {}}}}, "not registered"),
        ({"encoders": {"s2": {"class": "FakeEncoder", "config": "x"}}}, "cannot be rebuilt"),
        ({"encoders": ["s2"]}, "cannot be rebuilt"),
        ({"fusion_config": {"__init__": 1}}, "cannot be rebuilt"),
        ({"fusion_config": None}, "cannot be rebuilt"),
    ],
    ids=["encoder-class-builtin", "encoder-config-string", "encoders-a-list", "fusion-config-unknown-key", "fusion-config-null"],
)
def test_fusion_metadata_cannot_name_arbitrary_code(
    tmp_path: Path, fusion_parts: tuple[dict[str, torch.Tensor], dict[str, Any]], change: dict[str, Any], fragment: str
) -> None:
    """The weights hash is recomputable by anyone, so only the loader's own checks stand between a file and a crash."""
    from safetensors.torch import save_file

    tensors, meta = fusion_parts
    path = tmp_path / "crafted.safetensors"
    save_file(tensors, str(path), metadata={"ecoembed": json.dumps({**meta, **change})})
    with pytest.raises(CheckpointError, match=rf"crafted\.safetensors.*{fragment}"):
        _load_fusion(path)


# --- sites.csv paths ---------------------------------------------------------------------------


@pytest.fixture()
def layout(tmp_path: Path) -> dict[str, Path]:
    """project/sites.csv with project/flux/a.csv inside and outside/secret.csv beside the project."""
    project, outside = tmp_path / "project", tmp_path / "outside"
    (project / "flux").mkdir(parents=True)
    outside.mkdir()
    for f in (project / "flux" / "a.csv", outside / "secret.csv"):
        f.write_text("TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\n")
    return {"project": project, "outside": outside}


def _sites(project: Path, cell: str) -> Path:
    path = project / "sites.csv"
    path.write_text(f"site_id,lat,lon,flux_path\nZZ-Aaa,46.8,9.9,{cell}\n")
    return path


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ("flux/../../outside/secret.csv", "leaves the CSV's folder"),
        ("./flux/./../../outside/secret.csv", "leaves the CSV's folder"),
        ("flux/a.csv; ../outside/secret.csv", "leaves the CSV's folder"),
        ("{outside}/secret.csv", "absolute path"),
        ("flux/a.csv;{outside}/secret.csv", "absolute path"),
        ("~/secret.csv", "absolute path"),
        ("link/secret.csv", "leaves the CSV's folder"),
    ],
    ids=["dotdot-inside-a-folder", "dot-and-dotdot", "second-of-a-list", "absolute", "absolute-second-of-a-list",
         "home-tilde", "symlink-out"],
)
def test_sites_paths_cannot_escape_the_csv_folder(layout: dict[str, Path], cell: str, fragment: str) -> None:
    project, outside = layout["project"], layout["outside"]
    (project / "link").symlink_to(outside, target_is_directory=True)
    path = _sites(project, cell.format(outside=outside))
    with pytest.raises(FluxDataError, match=rf"sites\.csv: flux_path of site 'ZZ-Aaa' .*{fragment}.*allow_absolute_paths=True"):
        read_sites_csv(path)
    if not cell.startswith("~"):
        allowed = read_sites_csv(path, allow_absolute_paths=True)
        assert str(outside.resolve() / "secret.csv") in allowed["flux_path"].iloc[0]


def test_sites_paths_inside_the_folder_are_accepted_even_via_dotdot(layout: dict[str, Path]) -> None:
    project = layout["project"]
    (project / "sub").mkdir()
    path = _sites(project, "sub/../flux/a.csv")
    assert read_sites_csv(path)["flux_path"].iloc[0] == str((project / "flux" / "a.csv").resolve())


def test_sites_csv_given_through_a_symlinked_folder_resolves_against_the_real_folder(layout: dict[str, Path], tmp_path: Path) -> None:
    """The CSV's folder is its resolved folder: a symlink to the project does not widen what it may reach."""
    project = layout["project"]
    _sites(project, "flux/a.csv")
    alias = tmp_path / "alias"
    alias.symlink_to(project, target_is_directory=True)
    assert read_sites_csv(alias / "sites.csv")["flux_path"].iloc[0] == str((project / "flux" / "a.csv").resolve())
    _sites(project, "../outside/secret.csv")
    with pytest.raises(FluxDataError, match="leaves the CSV's folder"):
        read_sites_csv(alias / "sites.csv")
