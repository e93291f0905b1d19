"""Errors raised for malformed flux files and site tables, and where in a file they point."""

from __future__ import annotations

from dataclasses import dataclass


class FluxDataError(ValueError):
    """A flux file or site table is malformed; the message names the file and the problem."""


class FluxQCWarning(UserWarning):
    """A flux table has no QC information, so :func:`~fluxnet.table.qc_pass` would drop every day."""


@dataclass(frozen=True)
class Location:
    """Where the records of a flux table are, for messages.

    Attributes:
        label: The file (``path`` or ``archive.zip!member``).
        first_line: 1-based line (or row) number of the first record.
        row_word: ``"line"`` (text files) or ``"row"`` (Parquet/Feather).
    """

    label: str
    first_line: int = 1
    row_word: str = "line"

    def at(self, row: int) -> str:
        """``"line 7"`` for the record at 0-based position ``row``."""
        return f"{self.row_word} {row + self.first_line}"

    def error(self, message: str) -> FluxDataError:
        """``FluxDataError("flux file <label>: <message>")``."""
        return FluxDataError(f"flux file {self.label}: {message}")
