"""Render a run's ``index.html`` in headless Chromium and save a full-page PNG (``ecoembed report-screenshot``).

Checks that the self-contained report really displays in a browser (figures
embedded as base64, no network). Needs a Chromium binary on PATH (Debian:
``apt-get install chromium``); without one the command says so in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ecoembed.errors import EcoembedError, InputError, OutputExistsError
from ecoembed.io_utils import atomic_path

BROWSERS: tuple[str, ...] = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome")
"""Executable names tried, in order."""


def find_chromium() -> str | None:
    """Path of a Chromium binary (one of :data:`BROWSERS`) or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def render(html: str | os.PathLike[str], png: str | os.PathLike[str], *, width: int = 1400, height: int = 4000,
           timeout_s: float = 120.0, overwrite: bool = False) -> Path:
    """Screenshot ``html`` (a file, or a run folder holding ``index.html``) into ``png``.

    Raises:
        InputError: no ``html`` file, or no Chromium on PATH.
        OutputExistsError: ``png`` exists and not ``overwrite``.
        EcoembedError: Chromium failed or wrote no PNG (its stderr tail is in the message).
    """
    src = Path(html).resolve()
    if src.is_dir():
        src = src / "index.html"
    if not src.is_file():
        raise InputError(f"{src} does not exist; pass a run folder with index.html or the HTML file")
    exe = find_chromium()
    if exe is None:
        raise InputError("no chromium binary on PATH (Debian: apt-get install chromium); the screenshot needs a browser")
    out = Path(png).resolve()
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        tmp = Path(profile) / "shot.png"
        # no background networking: the report is self-contained and the machine may have no network at all
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
               f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={tmp}", src.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise EcoembedError(f"chromium did not finish within {timeout_s:.0f} s; try again or a smaller --height") from exc
        if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise EcoembedError(f"chromium exited {proc.returncode} without a screenshot: {proc.stderr[-800:]}")
        with atomic_path(out) as target:
            shutil.move(str(tmp), str(target))
    return out
