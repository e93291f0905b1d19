"""Self-supervised losses: masked date reconstruction (OmniSat), temporal and cross-modal InfoNCE.

**Masked reconstruction.** For each pixel a random subset of its *usable*
dates (``hide_fraction``, at least one, only when the pixel has >= 2 usable
dates) is hidden from the encoder; the decoder reconstructs the hidden dates
from the code of the visible ones plus the query day. The loss is the mean
squared error over hidden dates that are *valid* (usable = valid and not
padded), so a cloudy date is never a target: changing its values cannot
change the loss (tested).

For S2, OmniSat's extra filter applies (``attention_top_fraction=0.25``):
the attention weights of the encoder on the *full* usable series (no
gradient, mean over heads) rank the hidden dates of each pixel and only the
top 25 % (at least one) are targets. Dates the pooling ignores (residual
clouds, haze, shadows that slipped through the mask) are then not
reconstructed. Caveat (measured on synthetic scenes where every cloud is
flagged): the filter lets the encoder pick easy dates to attend to and
reconstruct; the error on *all* hidden valid dates then barely drops. Use
1.0 when the validity mask is trustworthy (the shipped default does).

**Temporal contrastive (optional, stage 1).** Two random halves of a pixel's usable
dates should give similar embeddings (InfoNCE, other pixels of the batch as
negatives, symmetric, temperature ``tau``).

**Cross-modal contrastive (stage 2).** The S1-only and S2-only summaries of
the same pixel are positives; other pixels of the same tile are excluded
(:func:`same_tile_exclusion_mask`), so negatives come from other tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ecoembed.models.decoders import TemporalDecoder
from ecoembed.models.ltae import TemporalAttentionEncoder


@dataclass(frozen=True)
class ObjectiveConfig:
    """Weights and fractions of the stage-1 objective.

    Attributes:
        hide_fraction: fraction of usable dates hidden from the encoder per pixel.
        attention_top_fraction: keep only this top fraction (by attention) of the
            hidden dates as targets; 1.0 = all hidden valid dates (S1 default).
        contrastive_weight: weight of the temporal InfoNCE term (0 = off).
        temperature: InfoNCE temperature.
        band_dropout: share of pixels whose encoder input keeps only a subset of the bands (the
            reconstruction still scores every band the pixel has, so the encoder learns to stand
            in for missing bands and a band subset at inference is in-distribution).
        band_subsets: the subsets (channel indices) drawn from, uniformly, for those pixels
            (e.g. the S2 10 m bands, red + NIR only, the 20 m bands); empty = no dropout.
    """

    hide_fraction: float = 0.3
    attention_top_fraction: float = 1.0
    contrastive_weight: float = 0.0
    temperature: float = 0.1
    band_dropout: float = 0.0
    band_subsets: tuple[tuple[int, ...], ...] = ()


def _rank(scores: Tensor) -> Tensor:
    """Rank (0 = smallest) of each element along the last dim."""
    return scores.argsort(-1).argsort(-1)


def hide_random_dates(usable: Tensor, fraction: float, generator: torch.Generator | None = None) -> Tensor:
    """Choose dates to hide: ``round(fraction * n_usable)`` (>= 1) usable dates per row with >= 2 usable.

    Args:
        usable: bool ``[B, T]``.
        fraction: in (0, 1).
        generator: for reproducible draws.

    Returns:
        bool ``[B, T]`` hidden dates (a subset of ``usable``; at least one usable date stays visible).
    """
    n_usable = usable.sum(1, keepdim=True)
    k = torch.clamp(torch.round(fraction * n_usable), min=1)
    k = torch.minimum(k, n_usable - 1)
    scores = torch.rand(usable.shape, generator=generator, device=usable.device)
    scores = torch.where(usable, scores, torch.full((), math.inf, device=usable.device))
    return usable & (_rank(scores) < k)


def drop_bands(n_pixels: int, n_channels: int, fraction: float, subsets: tuple[tuple[int, ...], ...],
               generator: torch.Generator | None = None, device: torch.device | None = None) -> Tensor:
    """Band mask ``[B, C]`` (bool): a random ``fraction`` of the pixels keeps one of ``subsets`` (drawn uniformly), the rest all bands."""
    mask = torch.ones((n_pixels, n_channels), dtype=torch.bool, device=device)
    if fraction <= 0 or not subsets:
        return mask
    chosen = torch.rand(n_pixels, generator=generator, device=device) < fraction
    which = torch.randint(0, len(subsets), (n_pixels,), generator=generator, device=device)
    table = torch.zeros((len(subsets), n_channels), dtype=torch.bool, device=device)
    for i, subset in enumerate(subsets):
        table[i, list(subset)] = True
    return torch.where(chosen.unsqueeze(-1), table[which], mask)


def top_attention_dates(candidates: Tensor, attention: Tensor, fraction: float) -> Tensor:
    """The top ``fraction`` (at least one) of ``candidates`` per row, ranked by ``attention`` ``[B, T]``."""
    if fraction >= 1.0:
        return candidates
    n = candidates.sum(1, keepdim=True)
    k = torch.clamp(torch.ceil(fraction * n), min=1)
    scores = torch.where(candidates, -attention, torch.full((), math.inf, device=attention.device))
    return candidates & (_rank(scores) < k)


def masked_mse(prediction: Tensor, target: Tensor, where: Tensor, channels: Tensor | None = None) -> Tensor:
    """Mean squared error over the dates selected by ``where`` ``[B, T]`` and the ``channels`` that exist; 0 if none.

    Args:
        prediction, target: ``[B, T, C]``.
        where: bool ``[B, T]`` scored dates.
        channels: bool broadcastable to ``[B, T, C]`` (e.g. ``[B, 1, C]``): the channels the target has;
            default all.

    Targets outside the selection are replaced by zeros with :func:`torch.where`
    first, so NaN/inf there cannot leak into the loss or its gradient.
    """
    keep = where.unsqueeze(-1).expand_as(prediction)
    if channels is not None:
        keep = keep & channels.to(torch.bool).expand_as(prediction)
    zero = torch.zeros((), dtype=prediction.dtype, device=prediction.device)
    diff = torch.where(keep, prediction - torch.where(keep, target, zero), zero)
    return (diff**2).sum() / keep.sum().clamp(min=1)


def info_nce(z1: Tensor, z2: Tensor, temperature: float = 0.1, *, exclude: Tensor | None = None) -> Tensor:
    """Symmetric InfoNCE between paired embeddings ``[B, E]`` (positives on the diagonal).

    Args:
        z1, z2: the two views of the same ``B`` items (row i of each is item i).
        temperature: softmax temperature.
        exclude: bool ``[B, B]``, True where pair (i, j) is neither a positive nor a
            negative (its logit is -inf); must leave the diagonal False.

    Returns:
        Scalar loss (0 when fewer than 2 items).
    """
    if z1.shape[0] < 2:
        return z1.sum() * 0.0
    a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    logits = a @ b.T / temperature
    if exclude is not None:
        logits = logits.masked_fill(exclude, float("-inf"))
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def same_tile_exclusion_mask(tile_ids: Tensor) -> Tensor:
    """``[B, B]`` bool, True where pair (i, j) is excluded from the contrastive softmax.

    A pair is excluded when both pixels come from the same tile and ``i != j``:
    such a pixel is neither the positive (only ``j == i`` is) nor a negative
    (OmniSat, eq. 3: neighbours look alike, pushing them apart would teach noise).
    """
    same = tile_ids.unsqueeze(0) == tile_ids.unsqueeze(1)
    return same & ~torch.eye(len(tile_ids), dtype=torch.bool, device=tile_ids.device)


def cross_modal_infonce(
    z_a: Tensor, z_b: Tensor, tile_ids: Tensor, *, temperature: float = 0.1, usable: Tensor | None = None
) -> Tensor:
    """Symmetric InfoNCE between two modalities' summaries of the same pixels, negatives from other tiles only.

    Args:
        z_a, z_b: ``[B, P]`` summaries of the same ``B`` pixels (row i of each is pixel i).
        tile_ids: int ``[B]`` tile of each pixel; same-tile pairs other than i==i are excluded.
        temperature: softmax temperature.
        usable: bool ``[B]`` pixels with observations in both modalities (others are
            dropped from rows and columns); None = all.

    Returns:
        Scalar loss (0 when fewer than 2 usable pixels).
    """
    if usable is not None:
        z_a, z_b, tile_ids = z_a[usable], z_b[usable], tile_ids[usable]
    return info_nce(z_a, z_b, temperature, exclude=same_tile_exclusion_mask(tile_ids))


class Stage1Objective(nn.Module):
    """Encoder + decoder + loss of stage-1 pretraining (see the module docstring).

    Args:
        encoder: the stage-1 encoder being trained.
        config: loss weights/fractions.
        decoder_hidden: decoder MLP width.
    """

    def __init__(self, encoder: TemporalAttentionEncoder, config: ObjectiveConfig, decoder_hidden: int = 64) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = config
        self.decoder = TemporalDecoder(encoder.embed_dim, encoder.n_channels, decoder_hidden, encoder.n_conditions)

    def forward(
        self,
        x: Tensor,
        days: Tensor,
        valid: Tensor,
        condition: Tensor | None = None,
        generator: torch.Generator | None = None,
        band_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Losses for one batch.

        Args:
            x: float ``[B, T, C]`` normalised values (anything at invalid steps or missing bands).
            days: int64 ``[B, T]`` days since 1970-01-01.
            valid: bool ``[B, T]`` usable (valid, not padded) dates.
            condition: int64 ``[B, T]`` (S1 orbit) or None.
            band_mask: bool ``[B, C]`` bands each pixel has (default all).
            generator: random generator for the hidden/contrastive subsets.

        Returns:
            ``total`` (to minimise), ``reconstruction`` (MSE on the target dates),
            ``recon_mse_masked_valid`` (MSE on *all* hidden valid dates, the logged
            metric, no gradient), ``contrastive`` (0 when off), ``n_targets``.
        """
        cfg = self.config
        valid = valid.to(torch.bool)
        has = torch.ones(x.shape[0], x.shape[-1], dtype=torch.bool, device=x.device) if band_mask is None else band_mask.to(torch.bool)
        seen = has & drop_bands(x.shape[0], x.shape[-1], cfg.band_dropout, cfg.band_subsets, generator, x.device)
        hidden = hide_random_dates(valid, cfg.hide_fraction, generator)
        visible = valid & ~hidden
        out = self.encoder(x, days, visible, condition, band_mask=seen)
        prediction = self.decoder(out.embedding, days, out.ref_days, condition)
        targets = hidden
        if cfg.attention_top_fraction < 1.0:
            with torch.no_grad():
                full_attention = self.encoder(x, days, valid, condition, band_mask=seen).attn.mean(1)
            targets = top_attention_dates(hidden, full_attention, cfg.attention_top_fraction)
        reconstruction = masked_mse(prediction, x, targets, has.unsqueeze(1))
        with torch.no_grad():
            monitored = masked_mse(prediction, x, hidden, has.unsqueeze(1))
        contrastive = torch.zeros((), device=x.device)
        if cfg.contrastive_weight > 0:
            half = hide_random_dates(valid, 0.5, generator)
            both = (valid & ~half).any(1) & half.any(1)
            if int(both.sum()) >= 2:
                cond = None if condition is None else condition[both]
                z1 = self.encoder(x[both], days[both], (valid & ~half)[both], cond, band_mask=seen[both]).embedding
                z2 = self.encoder(x[both], days[both], half[both], cond, band_mask=seen[both]).embedding
                contrastive = info_nce(z1, z2, cfg.temperature)
        total = reconstruction + cfg.contrastive_weight * contrastive
        return {
            "total": total,
            "reconstruction": reconstruction,
            "recon_mse_masked_valid": monitored,
            "contrastive": contrastive.detach(),
            "n_targets": targets.sum().detach().to(torch.float32),
        }
