"""Stage-1 per-sensor encoders: :class:`S2Encoder` and :class:`S1Encoder`.

Each encoder declares, next to its architecture, the band order and the
normalisation it expects (as TESSERA does). Both are
:class:`~ecoembed.models.ltae.TemporalAttentionEncoder` instances with the
channel count fixed by the sensor.

**Interface (stable; the stage-2 fusion network relies on it, encoders frozen):**

``encoder(x [B,T,C] float32, days [B,T] int64, mask [B,T] bool[, orbit [B,T] int64])
-> EncoderOutput(tokens [B,T,d_model], embedding [B,embed_dim], attn [B,n_heads,T])``

* ``x``: values as produced by ``ecoembed.sources.chips.cube_to_series(cube,
  normalize=True).values``, channels in :attr:`BANDS` order.
* ``days``: days since 1970-01-01 (``PixelSeries.days``).
* ``mask``: True = usable (valid and not padded), i.e. ``PixelSeries.valid``.
* ``tokens`` are contextualised per-date features, meaningful at usable steps
  only (exactly 0 elsewhere); pair them with ``days``/``mask`` yourself.
* ``embedding``: whole-series summary; rows without any usable step get the
  learned ``no_observation_embedding`` (test ``mask.any(1)`` to write NaN).
* ``d_model`` (token width) and ``embed_dim`` are attributes of the module;
  :meth:`config` returns the constructor arguments (JSON-serialisable).
"""

from __future__ import annotations

from torch import Tensor

from ecoembed.models.ltae import EncoderOutput, TemporalAttentionEncoder
from ecoembed.sensors.registry import SENSORS

S2_ENCODER_BANDS: tuple[str, ...] = SENSORS["s2"].band_names
"""Channel order of :class:`S2Encoder`: the S2 bands of the sensor registry (L2A surface reflectance)."""

S2_NORMALISATION = (
    "surface reflectance (0-1, L2A with the processing-baseline offset removed), then per band "
    "(value - mean) / std with the statistics of the sensor registry (ecoembed.sensors.sentinel2.SPEC); "
    "missing bands are zero with band_mask False; invalid (cloud, shadow, no-data) steps are masked out. "
    "The exact statistics used at training time are stored in the checkpoint."
)
"""What :class:`S2Encoder` expects its input ``x`` to be."""

S1_ENCODER_BANDS: tuple[str, ...] = SENSORS["s1"].band_names
"""Channel order of :class:`S1Encoder`: the S1 polarisations of the sensor registry (backscatter in dB)."""

S1_NORMALISATION = (
    "sigma0/gamma0 backscatter in dB, then per polarisation (value_dB - mean) / std with the statistics of the "
    "sensor registry (ecoembed.sensors.sentinel1.SPEC); a missing polarisation is zero with band_mask False; "
    "orbit direction per step 0 = ascending, 1 = descending. The exact statistics used at training time are "
    "stored in the checkpoint."
)
"""What :class:`S1Encoder` expects its input ``x`` (and ``orbit``) to be."""


class S2Encoder(TemporalAttentionEncoder):
    """Sentinel-2 L2A time-series encoder (10 bands, see :data:`S2_ENCODER_BANDS`).

    Args:
        d_model: token width (default 64).
        embed_dim: embedding width (default 64).
        n_heads: attention heads (default 4).
        n_context_layers: self-attention blocks over time (default 1).
        ff_mult: feed-forward width multiple (default 2).
    """

    SENSOR = SENSORS["s2"].key
    BANDS = S2_ENCODER_BANDS
    NORMALISATION = S2_NORMALISATION

    def __init__(
        self, d_model: int = 64, embed_dim: int = 64, n_heads: int = 4, n_context_layers: int = 1, ff_mult: int = 2
    ) -> None:
        super().__init__(len(self.BANDS), d_model, embed_dim, n_heads, n_context_layers, ff_mult, n_conditions=0)

    def forward(self, x: Tensor, days: Tensor, mask: Tensor, orbit: Tensor | None = None, *,
                band_mask: Tensor | None = None, ref_days: Tensor | None = None, tokens_only: bool = False) -> EncoderOutput:
        """Encode S2 series (``orbit`` is accepted for a uniform call signature and ignored)."""
        return super().forward(x, days, mask, band_mask=band_mask, ref_days=ref_days, tokens_only=tokens_only)


class S1Encoder(TemporalAttentionEncoder):
    """Sentinel-1 GRD time-series encoder (VV, VH in dB) with a learned orbit-direction embedding.

    The orbit embedding (0 ascending, 1 descending) is added to every step's
    token, so the model can separate geometry effects from vegetation change.

    Args: as :class:`S2Encoder`.
    """

    SENSOR = SENSORS["s1"].key
    BANDS = S1_ENCODER_BANDS
    NORMALISATION = S1_NORMALISATION

    def __init__(
        self, d_model: int = 64, embed_dim: int = 64, n_heads: int = 4, n_context_layers: int = 1, ff_mult: int = 2
    ) -> None:
        super().__init__(len(self.BANDS), d_model, embed_dim, n_heads, n_context_layers, ff_mult, n_conditions=2)

    def forward(self, x: Tensor, days: Tensor, mask: Tensor, orbit: Tensor | None = None, *,
                band_mask: Tensor | None = None, ref_days: Tensor | None = None, tokens_only: bool = False) -> EncoderOutput:
        """Encode S1 series; ``orbit`` int64 ``[B, T]`` or ``[T]`` (0 asc, 1 desc) is required."""
        if orbit is None:
            raise ValueError("S1Encoder needs the per-step orbit direction (0 ascending, 1 descending)")
        return super().forward(x, days, mask, orbit, band_mask=band_mask, ref_days=ref_days, tokens_only=tokens_only)


ENCODER_CLASSES: dict[str, type[TemporalAttentionEncoder]] = {"s2": S2Encoder, "s1": S1Encoder}
"""Sensor name -> encoder class."""


def build_encoder(sensor: str, **config: int) -> TemporalAttentionEncoder:
    """The encoder for ``sensor`` ("s2" or "s1") with constructor arguments ``config``."""
    if sensor not in ENCODER_CLASSES:
        raise ValueError(f"unknown sensor {sensor!r}; expected one of {sorted(ENCODER_CLASSES)}")
    return ENCODER_CLASSES[sensor](**config)
