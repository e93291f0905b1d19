"""Landsat 8/9 Collection 2 Level-2 surface reflectance (OLI): bands, scaling, QA_PIXEL validity.

Digital numbers become surface reflectance as ``DN x 2.75e-5 - 0.2`` (USGS C2 L2
science product guide); DN 0 is fill. ``QA_PIXEL`` bits 0 (fill), 1 (dilated
cloud), 3 (cloud), 4 (cloud shadow) and 5 (snow) make an observation unusable.
No encoder is trained for Landsat yet: cubes open into the contract and give
indices and band features; embeddings need an encoder of their own.
"""

from __future__ import annotations

import numpy as np

from ecoembed.sensors.spec import BandSpec, SensorSpec

_BANDS = (  # canonical name, central wavelength (nm), aliases (Planetary Computer / Earth Engine names)
    ("SR_B1", 443.0, ("B01", "COASTAL")), ("SR_B2", 482.0, ("B02", "BLUE")), ("SR_B3", 561.5, ("B03", "GREEN")),
    ("SR_B4", 654.5, ("B04", "RED")), ("SR_B5", 865.0, ("B05", "NIR08", "NIR")), ("SR_B6", 1608.5, ("B06", "SWIR16")),
    ("SR_B7", 2200.5, ("B07", "SWIR22")),
)
SPEC = SensorSpec(
    key="landsat",
    name="landsat-c2-l2",
    aliases=("landsat", "landsat-8", "landsat-9", "landsat8", "landsat9", "landsat-c2-l2", "l8", "l9", "lc08", "lc09"),
    bands=tuple(BandSpec(n, 30.0, "reflectance", w, aliases=a) for n, w, a in _BANDS),
    masks=(BandSpec("QA_PIXEL", 30.0, "mask", aliases=("QA", "PIXEL_QA")),),
    required=(("SR_B4",), ("SR_B5",)),
    prefixes=("LANDSAT_", "LC08_", "LC09_"),
    unit="1",
    dn_scale=2.75e-5,
    dn_offset=-0.2,
    nodata_dn=(0.0,),
)
"""Landsat 8/9 OLI Collection 2 Level-2 (30 m)."""

QA_INVALID_BITS: tuple[int, ...] = (0, 1, 3, 4, 5)
"""QA_PIXEL bits that make an observation unusable: fill, dilated cloud, cloud, cloud shadow, snow."""


def qa_pixel_valid(qa: np.ndarray) -> np.ndarray:
    """True where no bit of :data:`QA_INVALID_BITS` is set in ``QA_PIXEL`` (NaN counts as fill)."""
    arr = np.asarray(qa)
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    bits = np.where(finite, arr, 1).astype(np.int64)
    mask = sum(1 << b for b in QA_INVALID_BITS)
    return finite & ((bits & mask) == 0)
