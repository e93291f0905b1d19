"""Choices and defaults of the GPP workflow, in one place and importable without heavy libraries.

The command line builds its ``--help`` from these names, so importing this
module must stay cheap (no torch, sklearn or xarray).
"""

from __future__ import annotations

HEADS: tuple[str, ...] = ("linear", "ridge", "xgboost", "mlp")
"""Regression heads accepted by :func:`ecoembed.gpp.heads.make_head`."""
DEFAULT_HEADS: tuple[str, ...] = ("linear", "xgboost", "mlp")
"""Heads fitted when none is asked for (``ridge`` on request: its inner site-grouped CV costs 13 x 5 fits)."""
CV_SCHEMES: tuple[str, ...] = ("loso", "groupkfold", "year", "month", "holdout")
"""Cross-validation schemes of :func:`ecoembed.gpp.cv.cv_splits`."""
FEATURE_SETS: tuple[str, ...] = ("embeddings", "bands", "indices", "meteo", "indices_x_par", "potrad", "indices_x_potrad")
"""Feature-set components of :mod:`ecoembed.gpp.features`, combinable with ``+``."""
DEFAULT_WINDOW_PX = 5
"""Edge (pixels) of the Gaussian-weighted tower window."""
DEFAULT_MAX_GAP_DAYS = 30
"""Longest gap (days) between two observations that daily interpolation bridges."""
DEFAULT_FOLDS = 5
"""K of ``--cv groupkfold``."""
