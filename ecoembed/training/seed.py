"""Reproducibility: one call seeds every random number generator the training loops use."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA).

    Training loops additionally derive per-step generators from ``(seed, step)``
    so that a resumed run draws the same batches as an uninterrupted one.

    Args:
        seed: non-negative integer.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the global generator is what third-party code draws from
    torch.manual_seed(seed)
