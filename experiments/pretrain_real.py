"""Pretrain the shipped S2 and S1 encoders and the fusion network on REAL Sentinel data (ONE command).

    .venv/bin/python experiments/pretrain_real.py --data ../shared/data        # ~25 min on 2 CPU cores

What it trains on (self-supervised: no label and no GPP is used):

* stage-1 S2 encoder: the WorldCereal patches 00002806639B424A, 000028085BF08E7E and
  2021_TZA_COPERNICUS-GEOGLAM_POLY_1101950 (S2 L2A 10 m + 20 m files merged on the 10 m
  grid, SCL validity), the openEO WorldCereal 101 x 101 px monthly composites (Flanders),
  the WorldCereal point extractions in long layout (France 2022 monthly, France 2023 10-day,
  Canada 2017 monthly, Flanders 2021: harmonised DN composites), the Sentinel-2 band means
  of the ICOS towers (``icos_towers/s2_bands``, one series per calendar year), and four
  small SYNTHETIC scenes (``make_scene`` seeds 0-3, so that the synthetic demo stays in
  distribution); with band dropout over the registry's typical band subsets;
* stage-1 S1 encoder: the Sentinel-1 GRD (ascending, dB) of the same three WorldCereal
  patches, resampled onto their 10 m S2 grids, and the synthetic scenes;
* fusion network (stage 2, encoders frozen): the S2 + S1 pairs of those three patches and
  the synthetic scenes.

The WorldCereal patch 0000280849BAC91C (Belgium, 2018-2019, both sensors, all bands, crop
labels) is **held out** of every stage: it is the test patch of
``experiments/eval_real_patch.py``. The Presto fuel-moisture samples and the ICOS GPP are
never used here.

Outputs ``ecoembed/weights/data/{s2_encoder,s1_encoder,fusion}.safetensors`` with JSON
sidecars naming the data and this command, and prints the file sha256 to put in
``ecoembed/weights/shipped.py``. Work checkpoints (with the stage-1 decoders, resumable)
stay in ``--work``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecoembed.io_utils import atomic_write_text
from ecoembed.sensors import normalisation_metadata
from ecoembed.sources.chips import encoder_series
from ecoembed.sources.local import open_cube
from ecoembed.sources.points import read_point_table
from ecoembed.sources.synthetic import make_scene
from ecoembed.training.fusion_data import ArraySeries, scene_from_cubes
from ecoembed.training.stage1 import Stage1Config, pretrain_stage1
from ecoembed.training.stage2 import FusionTrainConfig, pretrain_fusion
from ecoembed.weights.builders import encoder_spec
from ecoembed.weights.encoder_checkpoint import export_encoder, load_encoder_checkpoint
from ecoembed.weights.format import file_sha256
from ecoembed.weights.fusion_checkpoint import save_fusion_checkpoint

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "ecoembed" / "weights" / "data"
COMMAND = "python experiments/pretrain_real.py --data ../shared/data"
TRAIN_PATCHES = ("00002806639B424A", "000028085BF08E7E", "2021_TZA_COPERNICUS-GEOGLAM_POLY_1101950")
TEST_PATCH = "0000280849BAC91C"
POINT_TABLES = ("wc_fra_lpis2022_month.parquet", "wc_fra_lpis2023_dekad.parquet", "pwc_canada_aafc2017_month.parquet",
                "wc_private_dummy_flanders2021.parquet")
SYNTHETIC_SEEDS = (0, 1, 2, 3)
MIN_VALID_DATES = 6


def patch_cubes(data: Path, patch: str) -> tuple[Any, Any]:
    """The S2 (10 m + 20 m merged) and S1 (onto the S2 grid) cubes of a WorldCereal patch."""
    folder = data / "worldcereal" / patch
    s2 = open_cube(sorted(folder.glob("S2_L2A_*.nc")), "s2")
    s1 = open_cube(sorted(folder.glob("S1_*.nc")), "s1", like=s2)
    return s2, s1


def yearly(series: Any, name: str) -> list[ArraySeries]:
    """A long 1-pixel-per-row series cut into calendar years (each with >= MIN_VALID_DATES valid dates)."""
    years = (np.asarray(series.days) // 365.2425 + 1970).astype(int)
    out = []
    for y in np.unique(years):
        t = years == y
        if series.valid[:, t].sum(1).min() >= MIN_VALID_DATES:
            out.append(ArraySeries(series.values[:, t], series.days[t], series.valid[:, t], None, series.band_mask, series.bands))
    return out


def point_series(data: Path, progress: bool) -> tuple[list[ArraySeries], list[str]]:
    """S2 pixel series of the WorldCereal point tables and the ICOS tower band means."""
    groups: list[ArraySeries] = []
    names: list[str] = []
    tables = [data / "more_s2" / "worldcereal_points" / t for t in POINT_TABLES]
    for table in tables:
        if not table.is_file():
            continue
        t0 = time.perf_counter()
        cubes = read_point_table(table, sensor="s2", harmonized=True)  # WorldCereal extractions are harmonised composites
        by_dates: dict[tuple[int, ...], list[Any]] = {}
        for cube in cubes.values():
            s = encoder_series(cube, "s2")
            if s.valid.sum() >= MIN_VALID_DATES:
                by_dates.setdefault(tuple(s.days.tolist()), []).append(s)
        for ss in by_dates.values():
            groups.append(ArraySeries(np.concatenate([s.values for s in ss]), ss[0].days, np.concatenate([s.valid for s in ss]),
                                      None, ss[0].band_mask, ss[0].bands))
        names.append(f"{table.name} ({len(cubes)} samples)")
        if progress:
            print(f"  {table.name}: {len(cubes)} samples in {time.perf_counter() - t0:.0f} s")
    for table in sorted((data / "icos_towers" / "s2_bands").glob("*.csv")):
        cube = next(iter(read_point_table(table, lat=50.0, lon=10.0).values()))  # position irrelevant for pretraining
        parts = yearly(encoder_series(cube, "s2"), table.name)
        groups += parts
        names.append(f"icos_towers/s2_bands/{table.name} ({len(parts)} years)")
    return groups, names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="the shared real-data folder")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "ecoembed_pretrain_real",
                        help="work checkpoints (resumable)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the exported weights")
    parser.add_argument("--epochs-s2", type=int, default=6)
    parser.add_argument("--epochs-s1", type=int, default=6)
    parser.add_argument("--epochs-fusion", type=int, default=6)
    parser.add_argument("--max-pixels", type=int, default=3000, help="pixels drawn per patch/cube for stage 1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["s2", "s1"], default=None,
                        help="stop after this sensor's stage 1 (e.g. to re-create the S2 work checkpoint whose decoder "
                             "experiments/eval_real_patch.py --stage1-checkpoint needs); use with --out elsewhere")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    patches = {p: patch_cubes(args.data, p) for p in TRAIN_PATCHES}
    synthetic = [make_scene(size_px=16, start="2019-01-01", end="2020-12-31", seed=s) for s in SYNTHETIC_SEEDS]
    openeo = open_cube(args.data / "more_s2" / "worldcereal_points" / "belgium_patch_101x101_2020-08_2022-03_monthly.nc", "s2")
    points, point_names = point_series(args.data, progress=True)
    print(f"data read in {time.perf_counter() - t0:.0f} s: {len(patches)} patches, {len(points)} point-series groups")
    trained_on = {
        "s2": [f"worldcereal/{p} (S2 10 m + 20 m)" for p in TRAIN_PATCHES] + [
            "more_s2/worldcereal_points/belgium_patch_101x101_2020-08_2022-03_monthly.nc (openEO monthly composites)",
            *[f"more_s2/worldcereal_points/{n}" for n in point_names if "icos" not in n],
            *[n for n in point_names if "icos" in n],
            f"SYNTHETIC make_scene seeds {list(SYNTHETIC_SEEDS)} (16 px, 2019-2020)"],
        "s1": [f"worldcereal/{p} (S1 GRD ascending, dB, onto the S2 10 m grid)" for p in TRAIN_PATCHES]
        + [f"SYNTHETIC make_scene seeds {list(SYNTHETIC_SEEDS)}"],
        "fusion": [f"worldcereal/{p} (S2 + S1)" for p in TRAIN_PATCHES] + [f"SYNTHETIC make_scene seeds {list(SYNTHETIC_SEEDS)}"],
    }
    common = {"synthetic": False, "real_data": True, "held_out": f"worldcereal/{TEST_PATCH}", "command": COMMAND}
    s2_inputs = [s2 for s2, _ in patches.values()] + [openeo] + points + [sc.s2 for sc in synthetic]
    s1_inputs = [s1 for _, s1 in patches.values()] + [sc.s1 for sc in synthetic]
    encoders = {}
    for sensor, inputs, epochs in (("s2", s2_inputs, args.epochs_s2), ("s1", s1_inputs, args.epochs_s1)):
        if args.only and sensor != args.only:
            continue
        t = time.perf_counter()
        work = args.work / f"{sensor}_stage1.safetensors"
        cfg = Stage1Config(epochs=epochs, batch_size=256, max_pixels_per_cube=args.max_pixels, seed=0,
                           attention_top_fraction=1.0, contrastive_weight=0.0 if sensor == "s2" else 0.1, band_dropout=0.3)
        res = pretrain_stage1(sensor, inputs, work, cfg, extra_metadata={**common, "trained_on": trained_on[sensor]})
        print(f"{sensor}: stage 1 in {time.perf_counter() - t:.0f} s; masked-date MSE per epoch "
              f"{[round(e['recon_mse_masked_valid'], 4) for e in res.epoch_log]}")
        sha, _ = export_encoder(work, args.out / f"{sensor}_encoder.safetensors", {
            **common, "trained_on": trained_on[sensor],
            "reconstruction_mse_per_epoch": [e["recon_mse_masked_valid"] for e in res.epoch_log]})
        encoders[sensor] = load_encoder_checkpoint(args.out / f"{sensor}_encoder.safetensors", sensor=sensor).encoder
        print(f"  wrote {sensor}_encoder.safetensors sha256 {sha}")
        if args.only == sensor:
            return 0
    scenes = [scene_from_cubes(s2, s1, name=p) for p, (s2, s1) in patches.items()]
    scenes += [scene_from_cubes(sc.s2, sc.s1, name=f"synthetic-{seed}") for sc, seed in zip(synthetic, SYNTHETIC_SEEDS, strict=True)]
    specs = {k: encoder_spec(e) for k, e in encoders.items()}
    cfg2 = FusionTrainConfig(epochs=args.epochs_fusion, batch_size=128, lr=2e-3, contrastive_weight=0.5, band_dropout=0.3)
    meta = {**common, "trained_on": trained_on["fusion"], "normalisation": normalisation_metadata()}
    t = time.perf_counter()
    res2 = pretrain_fusion(scenes, encoders, args.work / "fusion_train.safetensors", cfg2, encoder_specs=specs, extra_metadata=meta)
    print(f"fusion: {len(res2.history)} steps in {time.perf_counter() - t:.0f} s; last losses "
          f"{ {k: round(v, 4) for k, v in res2.history[-1].items()} if res2.history else {} }")
    final = {**meta, "train_config": {**cfg2.__dict__, "gap_days": list(cfg2.gap_days)}, "steps": len(res2.history),
             "final_losses": res2.history[-1] if res2.history else {}}
    target = args.out / "fusion.safetensors"
    sha = save_fusion_checkpoint(target, res2.model, specs, extra=final)
    target.chmod(0o644)
    atomic_write_text(target.with_suffix(".json"), json.dumps({"weights_sha256": sha, "file": target.name, **final,
                                                               "encoders": specs}, indent=2, default=str) + "\n")
    print("file sha256 for ecoembed/weights/shipped.py:")
    for name in ("s2_encoder", "s1_encoder", "fusion"):
        print(f"  {name}: {file_sha256(args.out / f'{name}.safetensors')}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
