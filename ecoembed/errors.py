"""User-facing errors.

Every error a user can cause with bad input derives from :class:`EcoembedError`.
The CLI prints its message (no traceback) and exits with status 2. Messages
name the file or field at fault and say what to do.
"""

from __future__ import annotations


class EcoembedError(Exception):
    """Base class for errors caused by user input or environment."""


class InputError(EcoembedError, ValueError):
    """An input file, table or cube does not meet its contract."""


class CubeError(InputError):
    """A sensor, feature or embedding cube violates the cube contract."""


class CheckpointError(EcoembedError):
    """A checkpoint is missing, corrupt, or does not match what is asked of it."""


class OutputExistsError(EcoembedError):
    """An output exists and ``overwrite`` was not requested."""
