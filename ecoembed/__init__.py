"""ecoembed: ecological modelling from Sentinel-1/Sentinel-2 embeddings.

Rooms (see ARCHITECTURE.md): ``sensors`` (what a sensor is), ``sources`` (where
pixels come from), ``models`` (torch modules), ``training`` (loops and
checkpoints), ``embed`` (inference to daily embedding cubes), ``gpp``
(join with flux data, heads, cross-validation, metrics), ``report`` (figures,
HTML) and ``cli`` (the ``ecoembed`` command).
"""

__version__ = "0.1.0"
