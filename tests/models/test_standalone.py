"""The single-file encoders in experiments/standalone equal the package encoders exactly."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import torch

from ecoembed.models.encoders import S1Encoder, S2Encoder

STANDALONE = Path(__file__).resolve().parents[2] / "experiments" / "standalone"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, STANDALONE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("file", "cls", "pkg_cls"), [("ecoembed_s2_encoder", "S2Encoder", S2Encoder), ("ecoembed_s1_encoder", "S1Encoder", S1Encoder)])
def test_standalone_equals_package_model(file, cls, pkg_cls):
    module = _load(file)
    torch.manual_seed(0)
    pkg = pkg_cls(d_model=32, embed_dim=16, n_heads=4, n_context_layers=2).eval()
    with torch.no_grad():
        pkg.no_observation_embedding.normal_()
    alone = getattr(module, cls)(d_model=32, embed_dim=16, n_heads=4, n_context_layers=2).eval()
    alone.load_state_dict(pkg.state_dict())  # strict: same keys and shapes
    assert tuple(module.BANDS) == pkg_cls.BANDS
    c = len(pkg_cls.BANDS)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 30, c, generator=g)
    days = (17000 + torch.cumsum(torch.randint(1, 12, (6, 30), generator=g), 1)).to(torch.int64)
    mask = torch.rand(6, 30, generator=g) > 0.4
    mask[2] = False
    x[~mask] = float("nan")
    orbit = torch.randint(0, 2, (6, 30), generator=g)
    a, b = pkg(x, days, mask, orbit), alone(x, days, mask, orbit)
    keep = torch.rand(6, c, generator=g) > 0.3
    keep[:, 0] = True
    a2, b2 = pkg(x, days, mask, orbit, band_mask=keep), alone(x, days, mask, orbit, band_mask=keep)
    assert torch.equal(a2.embedding, b2.embedding) and torch.equal(a2.ref_days, b2.ref_days)
    assert torch.equal(a.embedding, b.embedding)
    assert torch.equal(a.tokens, b.tokens)
    assert torch.equal(a.attn, b.attn)


@pytest.mark.parametrize("file", ["ecoembed_s2_encoder", "ecoembed_s1_encoder"])
def test_standalone_imports_only_torch_and_math(file):
    tree = ast.parse((STANDALONE / f"{file}.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots == {"torch", "math"}
