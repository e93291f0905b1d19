"""Render a run's ``index.html`` in headless Chromium and save a full-page PNG screenshot.

Checks that the self-contained report really displays in a browser (figures
embedded as base64, no network). Look at the PNG afterwards.

Usage::

    python experiments/render_report.py RUN_DIR_OR_INDEX_HTML [--out reports/report_screenshot.png]
        [--width 1400] [--height 4000]

Needs Debian's ``chromium`` (``apt-get install chromium``); exits with status 2
and a one-line message when it is absent.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def find_chromium() -> str | None:
    """Path of a Chromium binary (``chromium``, ``chromium-browser``, ``chromium-headless-shell``) or None."""
    for name in ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def render(html: str | Path, png: str | Path, *, width: int = 1400, height: int = 4000, timeout_s: float = 120.0) -> Path:
    """Screenshot ``html`` (a file) into ``png`` with headless Chromium; returns ``png``.

    Raises:
        FileNotFoundError: no Chromium binary or no ``html`` file.
        RuntimeError: Chromium failed or wrote no PNG (its stderr tail is in the message).
    """
    src = Path(html).resolve()
    if src.is_dir():
        src = src / "index.html"
    if not src.is_file():
        raise FileNotFoundError(f"{src} does not exist; pass a run folder with index.html or the HTML file")
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no chromium binary on PATH (Debian: apt-get install chromium)")
    out = Path(png).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={out}", src.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium exited {proc.returncode} without a screenshot: {proc.stderr[-800:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="run folder (with index.html) or an HTML file")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "report_screenshot.png", help="PNG to write")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=4000)
    args = ap.parse_args(argv)
    try:
        png = render(args.report, args.out, width=args.width, height=args.height)
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {png} ({png.stat().st_size / 1024:.0f} kB); look at it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
