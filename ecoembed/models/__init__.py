"""Torch modules only (no file I/O): temporal encoders, the fusion network, decoders and losses.

* :mod:`ecoembed.models.ltae`: LTAE-style temporal attention encoder with date encoding and explicit masks.
* :mod:`ecoembed.models.encoders`: the stage-1 ``S2Encoder`` and ``S1Encoder`` (band order, expected input).
* :mod:`ecoembed.models.fusion`: the stage-2 ``FusionNetwork`` (query any day) and ``FusedEmbeddingModel``.
* :mod:`ecoembed.models.decoders`: the stage-1 pretraining decoder.
* :mod:`ecoembed.models.losses`: masked reconstruction, temporal and cross-modal InfoNCE.
"""
