"""Inference: sensor cubes -> daily 10 m embedding cubes, and cloud-free daily S2 as a by-product.

* :mod:`ecoembed.embed.infer`: pixel series -> daily fused embeddings in memory (:func:`embed_series`).
* :mod:`ecoembed.embed.pipeline`: the chunked, resumable, dask-parallel cube writer (:func:`embed`).
* :mod:`ecoembed.embed.reconstruct`: daily S2 reflectance decoded from the embedding (:func:`reconstruct_s2`).

The embedding cube's layout and reader live in :mod:`ecoembed.sources.embedding_cube`.
"""

from ecoembed.embed.infer import embed_series
from ecoembed.embed.pipeline import BlockResult, EmbedResult, embed
from ecoembed.embed.reconstruct import reconstruct_s2

__all__ = ["BlockResult", "EmbedResult", "embed", "embed_series", "reconstruct_s2"]
