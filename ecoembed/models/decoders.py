"""Decoders for the stage-1 self-supervised objective (OmniSat-style masked reconstruction).

The decoder answers "what did this pixel look like on day *d*?" from the
series code alone: the code is repeated over the query dates, the absolute
date encoding of each query day (and, for S1, the orbit direction) is added,
and a small MLP outputs the ``C`` normalised channels. It is used only during
pretraining; the frozen encoders are what later stages consume.
"""

from __future__ import annotations

from torch import Tensor, nn

from ecoembed.models.ltae import N_DATE_FEATURES, date_features


class TemporalDecoder(nn.Module):
    """Decode per-date channel values from a series code and query days.

    Args:
        code_dim: width of the code (the encoder's ``embed_dim``).
        n_channels: channels to reconstruct (the sensor's bands).
        hidden: MLP width.
        n_conditions: acquisition conditions with a learned embedding (S1: 2 orbits); 0 = none.
    """

    def __init__(self, code_dim: int, n_channels: int, hidden: int = 64, n_conditions: int = 0) -> None:
        super().__init__()
        self.code_proj = nn.Linear(code_dim, hidden)
        self.date_proj = nn.Linear(N_DATE_FEATURES, hidden)
        self.condition_embedding = nn.Embedding(n_conditions, hidden) if n_conditions else None
        self.mlp = nn.Sequential(nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, n_channels))

    def forward(self, code: Tensor, query_days: Tensor, ref_days: Tensor, condition: Tensor | None = None) -> Tensor:
        """Reconstruct values.

        Args:
            code: float ``[B, E]``.
            query_days: int64 ``[B, Q]`` days since 1970-01-01.
            ref_days: int64 ``[B]`` the encoder's reference days (:attr:`EncoderOutput.ref_days`).
            condition: int64 ``[B, Q]`` (S1 orbit direction) or None.

        Returns:
            float ``[B, Q, C]`` normalised channel values.
        """
        h = self.code_proj(code).unsqueeze(1) + self.date_proj(date_features(query_days, ref_days.unsqueeze(-1)))
        if self.condition_embedding is not None:
            if condition is None:
                raise ValueError("this decoder needs a per-query condition (S1: orbit direction 0/1)")
            h = h + self.condition_embedding(condition.clamp(0, self.condition_embedding.num_embeddings - 1))
        return self.mlp(h)
