"""Daily LAI probe with the shipped fusion default (experiments/probe_daily.py at full size, ~80 s on 2 cores).

The ``--fast`` size (12-16 px, one or two training scenes) was too small for a
stable ridge probe (the interpolation baseline swung from R2 0.15 to -1.8
between sizes), so this slow test runs the full probe.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_probe_daily_fast(tmp_path: Path) -> None:
    out = tmp_path / "probe.json"
    subprocess.run([sys.executable, str(ROOT / "experiments" / "probe_daily.py"), "--json", str(out)], check=True, cwd=ROOT)
    res = json.loads(out.read_text())["results"]
    fused, s2_only, interp = res["fused S1+S2"], res["fused S2-only"], res["stage-1 S2 interpolated"]
    assert fused["n_gap_days"] > 100  # the synthetic scene has long cloudy gaps to test
    # Daily fused embeddings carry LAI linearly, also inside long cloudy gaps.
    assert fused["r2_all"] > 0.9 and fused["r2_gaps"] > 0.9
    # ... and beat linear interpolation of stage-1 S2 embeddings, most of all inside long cloudy gaps
    assert fused["r2_all"] > interp["r2_all"] and fused["r2_gaps"] > interp["r2_gaps"] + 0.05
    assert fused["r2_gaps"] - interp["r2_gaps"] > fused["r2_all"] - interp["r2_all"]
    # S1 must not cost anything beyond run-to-run noise in the gaps. (Measured with the shipped fusion:
    # 0.974 fused vs 0.970 S2-only on this test scene, 0.974 vs 0.975 on the validation scene 311.)
    assert fused["r2_gaps"] >= s2_only["r2_gaps"] - 0.01
    assert interp["r2_all"] > 0.5  # the baseline is a real contender, not a strawman
