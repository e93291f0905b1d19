"""Where pixels come from; every source returns the sensor cube contract.

* :mod:`ecoembed.sources.local`: NetCDF/Zarr cubes (``open_cube``, ``save_cube``), the default.
* :mod:`ecoembed.sources.stac`: STAC catalogs (optional extra ``ecoembed[stac]``), ``load_stac``.
* :mod:`ecoembed.sources.synthetic`: labelled synthetic scenes (``make_scene``, ``write_demo_sites``).
* :mod:`ecoembed.sources.chips`: tower chips and per-pixel series (``tower_chip``, ``cube_to_series``).
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {"open_cube": "local", "save_cube": "local", "cube_to_series": "chips", "tower_chip": "chips",
            "make_scene": "synthetic", "write_demo_sites": "synthetic", "load_stac": "stac"}


def __getattr__(name: str) -> Any:
    """Lazy re-exports (importing the package stays cheap)."""
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"ecoembed.sources.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ecoembed.sources' has no attribute {name!r}")
