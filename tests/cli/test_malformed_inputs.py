"""Malformed-input suite (issue #7): one table of bad inputs, one runner, two promises.

Every case builds one bad input in ``tmp_path`` and calls a reader, a loader or
the ``ecoembed`` CLI. The runner asserts

1. the message: the expected error class and every expected fragment (the
   file or field at fault and what to do), on one line;
2. nothing lost: the tree of files (paths and sha256 of every file) under
   the case's folder and the shared scene folder is byte-identical before and
   after, i.e. no partial output left behind and no existing output
   overwritten without ``--overwrite``;
3. for CLI cases: ``main()`` returns 2 and prints one ``error: ...`` line on
   stderr, and ``click.testing.CliRunner`` on ``ecoembed.cli.cli`` exits
   non-zero with the same exception.

One case runs ``python -m ecoembed.cli`` in a subprocess and checks exit
status 2. Interrupted runs (Ctrl-C / a crash mid-write) have their own tests
at the end.

What the room tests already assert is not repeated as a message-only check:
tests/test_fluxnet_read.py and tests/test_fluxnet_sites.py (every reader
message), tests/test_training_stage1.py (checkpoint loading mismatches,
resume refusals), tests/test_embed_pipeline.py (resume after a crash,
existing output). Here those inputs gain the "nothing lost" and CLI-exit
checks; cube cases skip until ``ecoembed.sources`` ships ``open_cube``.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecoembed.errors import CheckpointError, CubeError, EcoembedError, InputError, OutputExistsError
from ecoembed.sources.local import open_cube
from fluxnet import FluxDataError, read_flux, read_sites_csv, write_fluxnet_dd

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DD = "FLX_ZZ-Bad_FLUXNET2015_SUBSET_DD_2020-2020_synthetic.csv"
HH = "FLX_ZZ-Bad_FLUXNET2015_FULLSET_HH_2020-2020_synthetic.csv"


# --- helpers that write small (synthetic) inputs ----------------------------------------------


def hh_frame(start: str = "2020-06-01", n_days: int = 1, step_minutes: int = 30) -> pd.DataFrame:
    """A FLUXNET-convention HH table (synthetic, plausible values)."""
    times = pd.date_range(start, periods=n_days * 1440 // step_minutes, freq=f"{step_minutes}min")
    return pd.DataFrame({
        "TIMESTAMP_START": times.strftime("%Y%m%d%H%M"),
        "TIMESTAMP_END": (times + pd.Timedelta(minutes=step_minutes)).strftime("%Y%m%d%H%M"),
        "TA_F": 15.0, "NEE_VUT_REF_QC": 0, "GPP_NT_VUT_REF": 5.0, "GPP_DT_VUT_REF": 6.0,
    })


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_sites(folder: Path, text: str) -> Path:
    return write_text(folder / "sites.csv", text)


def tree_state(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots``: relative path -> sha256 (files) or 'dir'."""
    state: dict[str, str] = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            key = f"{root.name}/{p.relative_to(root)}"
            state[key] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return state


def assert_nothing_lost(before: dict[str, str], after: dict[str, str]) -> None:
    created = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not created, f"partial output left behind: {created}"
    assert not removed, f"files removed: {removed}"
    assert not changed, f"existing files changed: {changed}"


# --- the shared scene: tiny synthetic cubes, a fake fusion checkpoint, a stage-1 checkpoint ----


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import torch
    from support.fusion_fakes import fake_fusion_checkpoint, tiny_cubes, write_cube

    from ecoembed.models.encoders import S2Encoder
    from ecoembed.weights.encoder_checkpoint import save_encoder_checkpoint as save_checkpoint

    root = tmp_path_factory.mktemp("scene")
    s2, s1 = tiny_cubes(size_y=6, size_x=6, n_days=60)
    write_cube(s2, root / "s2_synthetic.nc")
    write_cube(s1, root / "s1_synthetic.nc")
    fake_fusion_checkpoint(root / "fusion.safetensors")
    torch.manual_seed(0)
    save_checkpoint(root / "stage1_s2.safetensors", S2Encoder(d_model=16, embed_dim=8, n_heads=2), {"note": "synthetic test"})
    return {"root": root, "s2": root / "s2_synthetic.nc", "s1": root / "s1_synthetic.nc",
            "model": root / "fusion.safetensors", "stage1": root / "stage1_s2.safetensors"}


# --- the table --------------------------------------------------------------------------------

Builder = Callable[[Path, dict[str, Path]], Any]


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
        id: short name (the pytest id).
        build: writes the bad input under the case folder; returns a zero-argument
            callable (library case) or the CLI argument list (``cli=True``).
        error: expected exception class.
        fragments: substrings the message must contain (``{tmp}`` = the case folder).
        cli: run through ``main()`` and ``CliRunner`` instead of calling.
    """

    id: str
    build: Builder
    error: type[BaseException]
    fragments: tuple[str, ...]
    cli: bool = False


CASES: list[Case] = []


def case(id: str, error: type[BaseException], *fragments: str, cli: bool = False) -> Callable[[Builder], Builder]:
    def register(build: Builder) -> Builder:
        CASES.append(Case(id, build, error, fragments, cli))
        return build
    return register


# flux readers ------------------------------------------------------------------------------------


@case("flux-missing-gpp-column", FluxDataError, DD, "no GPP column", "GPP_NT_VUT_REF")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_text(tmp / DD, "TIMESTAMP,TA_F\n20200601,12.0\n")
    return lambda: read_flux(path)


@case("flux-all-minus-9999", FluxDataError, DD, "is missing")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_text(tmp / DD, "TIMESTAMP,GPP_NT_VUT_REF,GPP_DT_VUT_REF\n20200601,-9999,-9999\n20200602,-9999,-9999\n")
    return lambda: read_flux(path)


@case("flux-duplicated-timestamps", FluxDataError, DD, "duplicated timestamp", "line 4")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_text(tmp / DD, "TIMESTAMP,GPP_NT_VUT_REF\n20200601,1\n20200602,2\n20200602,3\n")
    return lambda: read_flux(path)


@case("flux-unsorted-timestamps", FluxDataError, HH, "not sorted", "line")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    frame = hh_frame()
    frame.iloc[[3, 4]] = frame.iloc[[4, 3]].to_numpy()
    path = tmp / HH
    frame.to_csv(path, index=False)
    return lambda: read_flux(path)


@case("flux-hh-and-dd-mixed", FluxDataError, "cannot mix resolutions", HH, DD)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    hh = tmp / HH
    hh_frame().to_csv(hh, index=False)
    dd = write_text(tmp / DD, "TIMESTAMP,GPP_NT_VUT_REF\n20200701,1.0\n")
    return lambda: read_flux([hh, dd])


@case("flux-tab-delimited", FluxDataError, HH, "separated by tabs")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = tmp / HH
    hh_frame().to_csv(path, index=False, sep="\t")
    return lambda: read_flux(path)


@case("flux-non-utf8-bytes", FluxDataError, DD, "not UTF-8", "line 2")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = tmp / DD
    path.write_bytes(b"TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\xe9\n")
    return lambda: read_flux(path)


@case("flux-gzip-named-csv", FluxDataError, DD, "gzip-compressed", "decompress")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    import gzip

    path = tmp / DD
    path.write_bytes(gzip.compress(b"TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\n"))
    return lambda: read_flux(path)


@case("flux-zip-archive-named-csv", FluxDataError, DD, "ZIP archive", "extract")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """FLUXNET distributes zips; a zip given as the CSV."""
    import zipfile

    path = tmp / DD
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner.csv", "TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\n")
    return lambda: read_flux(path)


@case("flux-truncated-last-line", FluxDataError, HH, "Expected 6 columns, got 5", "truncated download")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = tmp / HH
    text = hh_frame().to_csv(index=False)
    path.write_text(text[: text.rstrip("\n").rfind(",")] + "\n")  # the download stopped mid-row
    return lambda: read_flux(path)


@case("flux-path-is-a-folder", FluxDataError, "flux_dir", "not a file")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    (tmp / "flux_dir").mkdir()
    return lambda: read_flux(tmp / "flux_dir")


# sites file ------------------------------------------------------------------------------------


@case("sites-lat-lon-swapped", FluxDataError, "sites.csv", "'ZZ-Bbb'", "swapped")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, "site_id,lat,lon\nZZ-Aaa,46.8,9.9\nZZ-Bbb,151.2,-33.5\n")
    return lambda: read_sites_csv(path)




@case("sites-empty-site-id", FluxDataError, "sites.csv", "site_id is empty on line 3")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, "site_id,lat,lon\nZZ-Aaa,46.8,9.9\n ,40.0,10.0\n")
    return lambda: read_sites_csv(path)


@case("sites-missing-flux-file", FluxDataError, "flux_path", "'ZZ-Aaa'", "does not exist")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, "site_id,lat,lon,flux_path\nZZ-Aaa,46.8,9.9,flux/a.csv; flux/gone.csv\n")
    write_text(tmp / "flux" / "a.csv", "TIMESTAMP,GPP_NT_VUT_REF\n20200601,1\n")
    return lambda: read_sites_csv(path)


# site identifiers (issue 19): checked once by read_sites_csv; fit-gpp turns them into one-line InputErrors


def _fit_gpp_on(tmp: Path, rows: str, header: str = "site_id,lat,lon,flux_path") -> list[str]:
    """fit-gpp on a hand-written sites.csv in tmp/sites (flux files a.csv, b.csv beside it); --out tmp/run."""
    for name in ("a.csv", "b.csv"):
        write_text(tmp / "sites" / "flux" / name, "TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\n")
    csv = write_text(tmp / "sites" / "sites.csv", f"{header}\n{rows}")
    return ["fit-gpp", "--sites", str(csv), "--out", str(tmp / "run"), "--quiet"]


@case("sites-ids-differ-only-in-case", InputError, "sites.csv", "'ZZ-Aaa' (line 2)", "'zz-aaa' (line 3)",
      "differ only in case", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """Two spellings of one tower would be two sites of leave-one-site-out: the tower would be tested on itself."""
    return _fit_gpp_on(tmp, "ZZ-Aaa,46.8,9.9,flux/a.csv\nzz-aaa,46.8,9.9,flux/b.csv\n")


@case("sites-id-duplicated-names-both-lines", FluxDataError, "duplicated site_id 'ZZ-Aaa' (lines 2 and 4)", "appear once")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, "site_id,lat,lon\nZZ-Aaa,46.8,9.9\nZZ-Bbb,40,10\nZZ-Aaa,46.9,9.8\n")
    return lambda: read_sites_csv(path)


@case("sites-id-with-slash", InputError, "sites.csv", "line 3", "'ZZ/Bbb'", "path separator '/'", "letters", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """An id with '/' would become a sub-folder in every file named after it."""
    return _fit_gpp_on(tmp, "ZZ-Aaa,46.8,9.9,flux/a.csv\nZZ/Bbb,46.8,9.9,flux/b.csv\n")


@case("sites-id-with-backslash", FluxDataError, "line 2", "path separator '\\'")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, "site_id,lat,lon\nZZ\\Aaa,46.8,9.9\n")
    return lambda: read_sites_csv(path)


@case("sites-id-dotdot", InputError, "sites.csv", "line 2", "'..'", "starts or ends with '.'", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return _fit_gpp_on(tmp, "..,46.8,9.9,flux/a.csv\n")


@case("sites-id-dotdot-path", FluxDataError, "line 2", "'../../escape'", "starts or ends with '.'")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, "site_id,lat,lon\n../../escape,46.8,9.9\n")
    return lambda: read_sites_csv(path)


@case("sites-id-with-space", InputError, "sites.csv", "line 2", "'ZZ Aaa'", "whitespace", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return _fit_gpp_on(tmp, "ZZ Aaa,46.8,9.9,flux/a.csv\n")


@case("sites-id-with-html", InputError, "sites.csv", "'<b>x</b>'", "the character '<'", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """Markup in an id would reach index.html, report.md and every CSV."""
    return _fit_gpp_on(tmp, "<b>x</b>,46.8,9.9,flux/a.csv\n")


@case("sites-id-spreadsheet-formula", FluxDataError, "line 2", "'=HYPERLINK(1)'", "the character '='")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, 'site_id,lat,lon\n"=HYPERLINK(1)",46.8,9.9\n')
    return lambda: read_sites_csv(path)


@case("sites-id-too-long", FluxDataError, "line 2", "has 65 characters (at most 64)")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, f"site_id,lat,lon\n{'A' * 65},46.8,9.9\n")
    return lambda: read_sites_csv(path)


@case("sites-row-with-extra-field", InputError, "sites.csv", "line 3 has 5 fields but the header has 4",
      "decimal comma", "write decimals with '.' or quote the cell", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """A decimal comma (45,1) splits lat in two: pandas would shift the row's cells or raise a traceback."""
    return _fit_gpp_on(tmp, "ZZ-Aaa,46.8,9.9,flux/a.csv\nZZ-Bbb,45,1,9.9,flux/b.csv\n")


@case("sites-every-row-with-extra-field", FluxDataError, "sites.csv", "line 2 has 4 fields but the header has 3")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """One more field on every row: pandas would silently make site_id the index and shift every column left."""
    path = write_sites(tmp, "site_id,lat,lon\nZZ-Aaa,46,8,9.9\nZZ-Bbb,45,1,9.9\n")
    return lambda: read_sites_csv(path)


@case("sites-quoted-decimal-comma", FluxDataError, "line 2", "lat of site 'ZZ-Aaa' is '46,8'", "write 46.8")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, 'site_id,lat,lon\nZZ-Aaa,"46,8",9.9\n')
    return lambda: read_sites_csv(path)


@case("sites-repeated-column", FluxDataError, "sites.csv", "column(s) lat more than once")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_sites(tmp, "site_id,lat,lon,lat\nZZ-Aaa,46.8,9.9,46.8\n")
    return lambda: read_sites_csv(path)


@case("sites-shared-flux-file", InputError, "sites.csv", "'ZZ-Aaa' (line 2)", "'ZZ-Bbb' (line 3)", "share the flux file",
      "a.csv", "--allow-shared-flux", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """Two rows on one tower's records: leave-one-site-out would train on the tower it tests."""
    return _fit_gpp_on(tmp, "ZZ-Aaa,46.8,9.9,flux/a.csv\nZZ-Bbb,40.0,10.0,flux/b.csv; flux/a.csv\n")


@case("sites-shared-flux-other-spelling", FluxDataError, "'ZZ-Aaa' (line 2)", "'ZZ-Bbb' (line 3)", "share the flux file")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """The same file through a symlink and a detour is still the same file."""
    write_text(tmp / "flux" / "a.csv", "TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\n")
    (tmp / "flux" / "alias.csv").symlink_to(tmp / "flux" / "a.csv")
    path = write_sites(tmp, "site_id,lat,lon,flux_path\nZZ-Aaa,46.8,9.9,flux/a.csv\nZZ-Bbb,40,10,flux/../flux/alias.csv\n")
    return lambda: read_sites_csv(path)


# cubes ------------------------------------------------------------------------------------------


def _cube(tmp: Path, name: str, edit: Callable[[Any], Any]) -> Path:
    from support.fusion_fakes import tiny_cubes, write_cube

    s2, _ = tiny_cubes(size_y=4, size_x=4, n_days=30)
    path = tmp / name
    write_cube(edit(s2), path)
    return path


@case("cube-empty-time", CubeError, "empty_s2.nc")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = _cube(tmp, "empty_s2.nc", lambda ds: ds.isel(time=slice(0, 0)))
    return lambda: open_cube(path, sensor="sentinel-2-l2a")


@case("cube-unknown-crs", CubeError, "nocrs_s2.nc", "crs")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    def drop_crs(ds: Any) -> Any:
        ds = ds.copy()
        ds.attrs = {k: v for k, v in ds.attrs.items() if k != "crs"}
        return ds
    path = _cube(tmp, "nocrs_s2.nc", drop_crs)
    return lambda: open_cube(path, sensor="sentinel-2-l2a")


@case("cube-missing-band", CubeError, "noNIR_s2.nc", "B08/B8A", "needs at least")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = _cube(tmp, "noNIR_s2.nc", lambda ds: ds.drop_vars(["B08", "B8A"]))
    return lambda: open_cube(path, sensor="sentinel-2-l2a")


@case("cube-not-netcdf", CubeError, "text_s2.nc")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    path = write_text(tmp / "text_s2.nc", "this is not a cube\n")
    return lambda: open_cube(path, sensor="sentinel-2-l2a")


@case("cube-nan-only-embed", EcoembedError, "nan_s2.nc", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    def all_nan(ds: Any) -> Any:
        ds = ds.copy()
        for band in [v for v in ds.data_vars if v != "valid"]:
            ds[band] = ds[band] * np.nan
        ds["valid"] = ds["valid"] & False
        return ds
    path = _cube(tmp, "nan_s2.nc", all_nan)
    return ["embed", "--s2", str(path), "--model", str(scene["model"]), "--out", str(tmp / "out.zarr")]


@case("cube-s1-given-as-s2", CubeError, "s1_as_s2.nc", "sentinel-1-grd", "sentinel-2-l2a", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    from support.fusion_fakes import tiny_cubes, write_cube

    _, s1 = tiny_cubes(size_y=4, size_x=4, n_days=30)
    write_cube(s1, tmp / "s1_as_s2.nc")
    return ["embed", "--s2", str(tmp / "s1_as_s2.nc"), "--model", str(scene["model"]), "--out", str(tmp / "e.zarr")]


@case("cube-degree-grid", CubeError, "deg_s2.nc", "10 m", "resample")
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """A cube on a lat/lon grid (degrees) instead of the projected 10 m grid of the contract."""
    def to_degrees(ds: Any) -> Any:
        ds = ds.assign_coords(x=-3.0 + 1e-4 * np.arange(ds.sizes["x"]), y=40.0 - 1e-4 * np.arange(ds.sizes["y"]))
        ds.attrs = {**ds.attrs, "crs": "EPSG:4326"}
        return ds
    path = _cube(tmp, "deg_s2.nc", to_degrees)
    return lambda: open_cube(path, sensor="sentinel-2-l2a")


# checkpoints -----------------------------------------------------------------------------------


class _Boom:
    """An object whose unpickling would run code (os.system); must never be unpickled."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch PWNED",))


@case("ckpt-pickle-pt-as-model", CheckpointError, "model.pt", "pickle/torch.save", "use an ecoembed .safetensors", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    (tmp / "model.pt").write_bytes(pickle.dumps({"state_dict": _Boom()}))
    return ["embed", "--s2", str(scene["s2"]), "--model", str(tmp / "model.pt"), "--out", str(tmp / "e.zarr")]


@case("ckpt-truncated-fusion", CheckpointError, "trunc.safetensors", "corrupt or truncated", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    (tmp / "trunc.safetensors").write_bytes(scene["model"].read_bytes()[:-64])
    return ["embed", "--s2", str(scene["s2"]), "--model", str(tmp / "trunc.safetensors"), "--out", str(tmp / "e.zarr")]


@case("ckpt-stage1-given-as-fusion", CheckpointError, "stage1_s2.safetensors", "expected", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["stage1"]), "--out", str(tmp / "e.nc")]


@case("ckpt-other-band-order-resume", CheckpointError, "resume.safetensors", "band order", "--no-resume", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """An existing --out from an encoder with another band order: refused, and the file kept."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ecoembed.training.stage1 import Stage1Config

    with safe_open(str(scene["stage1"]), framework="pt") as f:
        meta = json.loads(f.metadata()["ecoembed"])
    meta["bands"] = list(reversed(meta["bands"]))
    meta["train_config"] = {**dict(vars(Stage1Config()).items()), "d_model": 16, "embed_dim": 8, "n_heads": 2}
    save_file(load_file(str(scene["stage1"])), str(tmp / "resume.safetensors"), metadata={"ecoembed": json.dumps(meta)})
    return ["pretrain", "--sensor", "s2", "--data", str(scene["s2"]), "--out", str(tmp / "resume.safetensors"),
            "--epochs", "1", "--d-model", "16", "--embed-dim", "8", "--heads", "2", "--quiet"]


@case("ckpt-corrupt-resume-target", CheckpointError, "old.safetensors", "corrupt", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """A damaged checkpoint at --out with --resume: refused, not silently replaced."""
    (tmp / "old.safetensors").write_bytes(b"\x00" * 40)
    return ["pretrain", "--sensor", "s2", "--data", str(scene["s2"]), "--out", str(tmp / "old.safetensors"), "--epochs", "1",
            "--quiet"]


# CLI -------------------------------------------------------------------------------------------


@case("cli-embed-existing-output", OutputExistsError, "existing.zarr", "--overwrite", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    write_text(tmp / "existing.zarr" / "zarr.json", '{"precious": true}\n')
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "existing.zarr")]


@case("cli-embed-existing-nc", OutputExistsError, "existing.nc", "--overwrite", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    write_text(tmp / "existing.nc", "precious\n")
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "existing.nc")]


@case("cli-embed-output-not-writable", EcoembedError, "blocker", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """--out under a path whose parent is a regular file (not writable, even as root)."""
    write_text(tmp / "blocker", "a file, not a folder\n")
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "blocker" / "e.zarr")]


@case("cli-embed-end-before-start", InputError, "--end", "before", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "e.zarr"),
            "--start", "2019-04-01", "--end", "2019-03-01"]


@case("cli-embed-start-not-a-date", InputError, "--start", "YYYY-MM-DD", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "e.zarr"),
            "--start", "01/03/2019"]


@case("cli-embed-bad-output-suffix", InputError, "e.tif", ".zarr or .nc", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "e.tif")]


@case("cli-embed-s1-off-grid", CubeError, "s1_shifted.nc", "does not nest", "grid", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    from support.fusion_fakes import tiny_cubes, write_cube

    _, s1 = tiny_cubes(size_y=6, size_x=6, n_days=60)
    write_cube(s1.assign_coords(x=s1["x"] + 5.0), tmp / "s1_shifted.nc")  # half a pixel: the grids do not nest
    return ["embed", "--s2", str(scene["s2"]), "--s1", str(tmp / "s1_shifted.nc"), "--model", str(scene["model"]),
            "--out", str(tmp / "e.zarr")]


def _fit_gpp_sites(tmp: Path) -> Path:
    from ecoembed.sources.synthetic import write_embedding_sites as make_sites

    return make_sites(tmp / "sites", n_sites=3, days=60)


@case("cli-fitgpp-no-date-overlap", InputError, "ZZ-T1", "do not overlap", "2015-01-01", "2019-01-01", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    csv = _fit_gpp_sites(tmp)
    sites = pd.read_csv(csv)
    old = csv.parent / sites.loc[1, "flux_path"]
    flux = pd.read_csv(old)
    flux["TIMESTAMP"] -= 40000  # the tower's days moved to 2015, the cube stays in 2019
    new = old.with_name(old.name.replace("2019-2019", "2015-2015"))
    flux.to_csv(new, index=False)
    old.unlink()
    sites.loc[1, "flux_path"] = new.name
    sites.to_csv(csv, index=False)
    return ["fit-gpp", "--sites", str(csv), "--out", str(tmp / "run"), "--quiet", "--strict"]  # without --strict: skipped


@case("cli-fitgpp-no-site-has-coordinates", InputError, "no usable site", "no lat", "ZZ-T0", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """An empty lat cell skips that site (the rest go on); when no site is left, the run stops with the reason."""
    csv = _fit_gpp_sites(tmp)
    sites = pd.read_csv(csv)
    sites["lat"] = np.nan
    sites.to_csv(csv, index=False)
    return ["fit-gpp", "--sites", str(csv), "--out", str(tmp / "run"), "--quiet"]


@case("cli-fitgpp-existing-output", OutputExistsError, "run", "--overwrite", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    csv = _fit_gpp_sites(tmp)
    write_text(tmp / "run" / "metrics_pooled.csv", "features,head,r2\nprecious,linear,0.9\n")
    return ["fit-gpp", "--sites", str(csv), "--out", str(tmp / "run"), "--quiet"]


@case("cli-pretrain-without-sensor", InputError, "--sensor", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return ["pretrain", "--data", str(scene["s2"]), "--out", str(tmp / "x.safetensors")]


@case("cli-reconstruct-missing-cube", FileNotFoundError, "nowhere.nc", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    """click's own check (exists=True): usage error, exit 2."""
    return ["reconstruct", "--s2", str(tmp / "nowhere.nc"), "--out", str(tmp / "r.nc")]


# output safety (issue 19): an output may never overlap an input, be a symlink, or carry an absurd date -------


@case("cli-embed-out-is-the-input", InputError, "is the input", "inputs are never replaced", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    cube = tmp / "s2_copy.nc"
    cube.write_bytes(scene["s2"].read_bytes())
    return ["embed", "--s2", str(cube), "--model", str(scene["model"]), "--out", str(cube), "--overwrite"]


@case("cli-embed-out-inside-an-input-store", InputError, "lies inside the input", "s2.zarr", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    import xarray as xr

    with xr.open_dataset(scene["s2"]) as ds:
        ds.load().to_zarr(tmp / "s2.zarr", consolidated=False)
    return ["embed", "--s2", str(tmp / "s2.zarr"), "--model", str(scene["model"]), "--out", str(tmp / "s2.zarr" / "e.zarr")]


@case("cli-fitgpp-overwrite-the-folder-of-its-sites", InputError, "contains the input", "sites.csv", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    csv = _fit_gpp_sites(tmp)
    return ["fit-gpp", "--sites", str(csv), "--out", str(csv.parent), "--overwrite", "--quiet"]


@case("cli-fitgpp-out-dot-above-the-inputs", InputError, "--out . contains the input", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    csv = _fit_gpp_sites(tmp)  # the runner works in the case's parent folder: "." holds the sites and flux files
    return ["fit-gpp", "--sites", str(csv), "--out", ".", "--overwrite", "--quiet"]


@case("cli-embed-out-is-a-symlink", InputError, "symbolic link", "give the real path", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    (tmp / "real.zarr").mkdir()
    (tmp / "link.zarr").symlink_to(tmp / "real.zarr")
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "link.zarr"), "--overwrite"]


@case("cli-embed-end-in-the-far-future", InputError, "--end 2919-01-01", "1970-01-01..2100-12-31", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / "e.zarr"),
            "--end", "2919-01-01"]


@case("cli-embed-name-too-long", OSError, "File name too long", "use a shorter path", cli=True)
def _(tmp: Path, scene: dict[str, Path]) -> Any:
    return ["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(tmp / ("e" * 300 + ".zarr"))]


# --- the runner ---------------------------------------------------------------------------------


def _check_message(message: str, fragments: tuple[str, ...], tmp: Path) -> None:
    for fragment in fragments:
        assert fragment.format(tmp=tmp) in message, f"{fragment!r} not in message {message!r}"


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_clearly_and_loses_nothing(
    bad: Case, scene: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a payload that escaped would land here and show up as a new file
    work = tmp_path / "case"
    work.mkdir()
    target = bad.build(work, scene)
    before = tree_state(tmp_path, scene["root"])
    if not bad.cli:
        with pytest.raises(bad.error) as info:
            target()
        message = str(info.value)
        assert "\n" not in message.strip(), f"message is not one line: {message!r}"
        _check_message(message, bad.fragments, work)
    else:
        from ecoembed.cli import cli, main

        code = main(list(target))
        captured = capsys.readouterr()
        assert code == 2, f"exit status {code}, stderr {captured.err!r}"
        lines = captured.err.strip().splitlines()
        if issubclass(bad.error, EcoembedError):
            assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
        _check_message(captured.err, bad.fragments, work)
        result = CliRunner().invoke(cli, list(target))
        assert result.exit_code != 0
        if issubclass(bad.error, EcoembedError):
            assert isinstance(result.exception, bad.error), repr(result.exception)
    assert_nothing_lost(before, tree_state(tmp_path, scene["root"]))


def test_suite_has_twenty_distinct_bad_inputs() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids) >= 20
    families = {i.split("-")[0] for i in ids}
    assert {"flux", "sites", "cube", "ckpt", "cli"} <= families


# --- a real subprocess: the console entry point's exit status --------------------------------


def test_subprocess_exit_status_is_2_with_one_line(tmp_path: Path) -> None:
    """`python -m ecoembed.cli embed --model <pickle>`: exit 2, one line, the pickle never runs."""
    (tmp_path / "model.pt").write_bytes(pickle.dumps({"w": _Boom()}))
    write_text(tmp_path / "s2.nc", "never opened\n")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "ecoembed.cli", "embed", "--s2", "s2.nc", "--model", "model.pt", "--out", "e.zarr"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "model.pt" in lines[0] and "corrupt" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "s2.nc"]  # nothing written, PWNED not touched


# --- interrupted runs ---------------------------------------------------------------------------


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while write_fluxnet_dd renames its temporary: the old file stays whole, no .tmp remains."""
    path = tmp_path / DD
    old = write_text(path, "TIMESTAMP,GPP_NT_VUT_REF\n20200601,1.0\n").read_bytes()
    table = pd.DataFrame({"site_id": "ZZ-Bad", "date": pd.to_datetime(["2020-06-01", "2020-06-02"]), "GPP": [2.0, 3.0]})

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_fluxnet_dd(table, path)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [DD]


def test_interrupted_embed_prints_resume_hint_and_publishes_nothing(
    scene: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during `ecoembed embed --out x.nc`: exit 130, a resume hint, and no x.nc (only the hidden partial store)."""
    import ecoembed.embed.pipeline as embed_module
    from ecoembed.cli import main

    def interrupted(jobs: list[Any]) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(embed_module, "_execute", interrupted)
    out = tmp_path / "e.nc"
    code = main(["embed", "--s2", str(scene["s2"]), "--model", str(scene["model"]), "--out", str(out)])
    assert code == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
    assert not out.exists()
    assert all(p.name.startswith(".") for p in tmp_path.iterdir()), list(tmp_path.iterdir())
