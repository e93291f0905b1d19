"""Fault injection and concurrent writers (issue 19), on SYNTHETIC inputs.

* kill -9 at random points of ``embed``, ``predict-gpp`` and ``fit-gpp``, in a
  loop of trials: after each kill, re-running the same command either resumes
  to a result identical to an uninterrupted run, or (commands that do not
  resume) starts afresh and publishes the same result; nothing half-written is
  ever visible under the output name.
* two writers on one output: the second is refused at once, naming the first's PID.

The commands run in child processes forked from a ``forkserver`` that imported
the package once, so a trial costs the command's work, not Python's start-up.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from support.cli_child import run_cli
from support.fusion_fakes import write_tiny_scene

from ecoembed.cli import main
from ecoembed.outputs import output_lock
from ecoembed.sources.synthetic import write_embedding_sites

QUICK_TRIALS = {"embed": 1, "predict-gpp": 1, "fit-gpp": 1}
"""Trials per command in the default test run (one kill each, to keep the default run short)."""
FULL_TRIALS = {"embed": 8, "predict-gpp": 6, "fit-gpp": 6}
"""Trials per command of the slow run: 20 kills in all (about 4 minutes on 2 cores)."""


@pytest.fixture(scope="module")
def ctx() -> mp.context.BaseContext:
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(["support.cli_child", "ecoembed.cli", "ecoembed.embed.pipeline", "ecoembed.pipelines.fit_gpp",
                                    "ecoembed.pipelines.predict_gpp"])
    return context


def _run(ctx: mp.context.BaseContext, argv: list[str], kill_after: float | None = None) -> int | None:
    """Run the CLI in a child; with ``kill_after`` send SIGKILL after that many seconds (None: it finished first)."""
    p = ctx.Process(target=run_cli, args=(argv,))  # type: ignore[attr-defined]
    p.start()
    if kill_after is None:
        p.join(300)
        return p.exitcode
    p.join(kill_after)
    if p.is_alive():
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
        return None
    return p.exitcode


def _digest(path: Path, variable: str) -> str:
    with xr.open_dataset(path) as ds:
        return hashlib.sha256(np.ascontiguousarray(ds[variable].values).tobytes()).hexdigest()


def _timed(ctx: mp.context.BaseContext, argv: list[str]) -> float:
    t = time.perf_counter()
    assert _run(ctx, argv) == 0
    return time.perf_counter() - t


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("faults")
    csv = write_embedding_sites(root / "sites", n_sites=3, days=120)
    return {**write_tiny_scene(root), "sites": csv, "cube": csv.parent / "ZZ-T1_emb.nc"}


def _files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_kill_9_at_random_points_then_rerun_gives_the_uninterrupted_result(ctx: mp.context.BaseContext,
                                                                           inputs: dict[str, Path], tmp_path: Path) -> None:
    _fault_loop(ctx, inputs, tmp_path, QUICK_TRIALS, seed=19)


@pytest.mark.slow
def test_kill_9_in_twenty_trials(ctx: mp.context.BaseContext, inputs: dict[str, Path], tmp_path: Path) -> None:
    _fault_loop(ctx, inputs, tmp_path, FULL_TRIALS, seed=20)


def _fault_loop(ctx: mp.context.BaseContext, inputs: dict[str, Path], tmp_path: Path, trials: dict[str, int], *,
                seed: int) -> None:
    rng = random.Random(seed)
    before = _files(inputs["sites"].parent) | {k: _files(inputs["s2"].parent)[k] for k in ("s2_synthetic.nc", "s1_synthetic.nc")}
    embed_args = ["embed", "--s2", str(inputs["s2"]), "--s1", str(inputs["s1"]), "--model", str(inputs["model"]),
                  "--start", "2019-03-01", "--end", "2019-05-10", "--chunk-px", "2"]
    run = tmp_path / "run"
    fit_args = ["fit-gpp", "--sites", str(inputs["sites"]), "--features", "embeddings+potrad", "--head", "linear",
                "--no-interpret", "--no-baselines", "--quiet"]
    t_fit = _timed(ctx, [*fit_args, "--out", str(run)])
    predict_args = ["predict-gpp", "--run", str(run), "--cube", str(inputs["cube"]), "--chunk-px", "3", "--quiet"]
    commands = {
        "embed": (embed_args, "embedding", ".nc"),
        "predict-gpp": (predict_args, "gpp", ""),
        "fit-gpp": (fit_args, "", ""),
    }
    outcomes: list[str] = []
    for name, (args, variable, suffix) in commands.items():
        reference = tmp_path / f"{name}_reference{suffix}"
        t_full = t_fit if name == "fit-gpp" else _timed(ctx, [*args, "--out", str(reference)])
        if name == "fit-gpp":
            reference = run
        for trial in range(trials[name]):
            out = tmp_path / f"{name}_{trial}{suffix}"
            code = _run(ctx, [*args, "--out", str(out)], kill_after=rng.uniform(0.05, 0.95) * t_full)
            if code is None:
                # killed: whatever is under the output name must be complete or absent, never half-written
                outcomes.append("killed")
                if name == "fit-gpp":
                    assert not out.exists() or (out / "provenance.json").is_file()
                elif name == "predict-gpp":
                    assert not out.exists() or (out / "index.html").is_file()
                else:
                    assert not out.exists() or _digest(out, variable) == _digest(reference, variable)
            else:
                outcomes.append("finished")
                assert code == 0
            if out.exists():  # published before the kill: it must equal the reference; a re-run refuses cleanly
                rerun = _run(ctx, [*args, "--out", str(out)])
                assert rerun == 2, (name, trial, rerun)
            else:
                assert _run(ctx, [*args, "--out", str(out)]) == 0, (name, trial)
            if name == "fit-gpp":
                a = (out / "metrics_pooled.csv").read_text()
                assert a == (reference / "metrics_pooled.csv").read_text(), (name, trial)
            elif name == "predict-gpp":
                assert _digest(out / "gpp.nc", "gpp") == _digest(reference / "gpp.nc", "gpp"), (name, trial)
            else:
                assert _digest(out, variable) == _digest(reference, variable), (name, trial)
            assert not list(tmp_path.glob(f".{out.name}.lock"))  # the kernel released the dead writer's lock
    print(f"\nfault injection: {len(outcomes)} trials, {outcomes.count('killed')} killed mid-run")
    assert len(outcomes) == sum(trials.values()) and outcomes.count("killed") >= len(outcomes) // 2
    after = _files(inputs["sites"].parent) | {k: _files(inputs["s2"].parent)[k] for k in ("s2_synthetic.nc", "s1_synthetic.nc")}
    assert after == before  # no input touched by any trial


def test_a_second_writer_on_the_same_output_is_refused_with_the_holders_pid(inputs: dict[str, Path], tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "emb.zarr"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from ecoembed.outputs import output_lock\n"
                               f"with output_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code = main(["embed", "--s2", str(inputs["s2"]), "--model", str(inputs["model"]), "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1
        assert f"PID {holder.pid}" in err[0] and "being written by another ecoembed process" in err[0]
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without cleaning up: its lock went with it, the next writer runs
    with output_lock(out):
        pass


def _cli_subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m ecoembed.cli`` with a timeout: a reader that blocked on a FIFO would hang, not fail."""
    return subprocess.run([sys.executable, "-m", "ecoembed.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])


def test_fifos_are_refused_before_any_reader_blocks_on_them(inputs: dict[str, Path], tmp_path: Path) -> None:
    fifo = tmp_path / "s2_cube.nc"
    os.mkfifo(fifo)
    res = _cli_subprocess(["embed", "--s2", str(fifo), "--out", str(tmp_path / "e.zarr")], tmp_path)
    assert res.returncode == 2 and "is a FIFO (named pipe)" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    sites = tmp_path / "sites"
    sites.mkdir()
    os.mkfifo(sites / "flux.csv")
    (sites / "sites.csv").write_text("site_id,lat,lon,flux_path\nZZ-Fifo,45.0,9.0,flux.csv\n", encoding="utf-8")
    res = _cli_subprocess(["fit-gpp", "--sites", str(sites / "sites.csv"), "--out", str(tmp_path / "run"), "--quiet"], tmp_path)
    assert res.returncode == 2 and "flux_path" in res.stderr and "FIFO" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


def test_disk_full_while_publishing_is_one_line_and_leaves_nothing(inputs: dict[str, Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    def full(self: xr.Dataset, path: object = None, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    from support.cli_child import FakeEncoder  # noqa: F401  (the child module registers the fake encoder)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
    out = tmp_path / "e.nc"
    code = main(["embed", "--s2", str(inputs["s2"]), "--model", str(inputs["model"]), "--out", str(out),
                 "--start", "2019-03-01", "--end", "2019-03-20", "--chunk-px", "6"])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("embed:")]  # progress bar
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: ") and "No space left on device" in err[0] and "free disk space" in err[0]
    assert not out.exists() and not list(tmp_path.glob(".e.nc.*.tmp"))  # nothing half-written under the output name
