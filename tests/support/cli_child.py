"""Entry point of forked CLI children in fault-injection tests: register the test fakes, run ``main``, exit with its code."""

from __future__ import annotations

import contextlib
import io
import os
import sys

from ecoembed.cli import main
from ecoembed.weights.builders import register_encoder_builder
from support.fusion_fakes import FakeEncoder

register_encoder_builder("FakeEncoder", lambda cfg: FakeEncoder(**cfg))  # the fake checkpoints' encoders, as in the parent


def run_cli(argv: list[str]) -> None:
    """Run ``ecoembed argv`` quietly; a failure's stderr is passed through; the process exits with main's code."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    if code and sys.__stderr__ is not None:
        sys.__stderr__.write(err.getvalue())
    os._exit(code)
