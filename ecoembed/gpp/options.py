"""Choices and defaults of the GPP workflow, in one place and importable without heavy libraries.

The command line builds its ``--help`` from these names, so importing this
module must stay cheap (no torch, sklearn or xarray).
"""

from __future__ import annotations

HEADS: tuple[str, ...] = ("linear", "ridge", "xgboost", "mlp")
"""Regression heads a user chooses (:func:`ecoembed.gpp.heads.make_head` also builds ``fixed``)."""
FIXED_HEAD = "fixed"
"""The head of fixed-parameter baselines (``mod17``): predicts its single input column, fits nothing."""
BASELINES: tuple[tuple[str, str, str], ...] = (
    ("LUE", "indices_x_par+meteo", "linear"),
    ("LUE (meteo-free)", "indices_x_potrad", "linear"),
    ("MOD17", "mod17", FIXED_HEAD),
)
"""(label, feature set, head) of the light-use-efficiency baselines ``fit-gpp`` adds by default: index x tower PAR with
TA and VPD, fitted; index x potential radiation, fitted (for towers without meteorology); the MOD17 model with its
biome parameters, not fitted. The first one every site supports is the reference the report ranks models against."""
DEFAULT_HEADS: tuple[str, ...] = ("linear", "xgboost", "mlp")
"""Heads fitted when none is asked for (``ridge`` on request: its inner site-grouped CV costs 13 x 5 fits)."""
CV_SCHEMES: tuple[str, ...] = ("loso", "groupkfold", "year", "month", "holdout")
"""Cross-validation schemes of :func:`ecoembed.gpp.cv.cv_splits`."""
FEATURE_SETS: tuple[str, ...] = ("embeddings", "bands", "indices", "meteo", "indices_x_par", "potrad", "indices_x_potrad",
                                  "mod17")
"""Feature-set components of :mod:`ecoembed.gpp.features`, combinable with ``+``."""
DEFAULT_WINDOW_PX = 5
"""Edge (pixels) of the Gaussian-weighted tower window."""
DEFAULT_MAX_GAP_DAYS = 30
"""Longest gap (days) between two observations that daily interpolation bridges."""
DEFAULT_FOLDS = 5
"""K of ``--cv groupkfold``."""
