"""Errors raised for malformed flux files and site tables."""

from __future__ import annotations


class FluxDataError(ValueError):
    """A flux file or site table is malformed; the message names the file and the problem."""
