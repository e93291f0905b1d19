"""ecoembed: ecological modelling from Sentinel-1/Sentinel-2 embeddings.

Rooms (see the README's "What is inside"), lowest layer first: ``sensors`` (what
a sensor is), ``models`` (torch modules), ``sources`` (where pixels come from),
``weights`` (checkpoint formats, registry, shipped weights), ``training``
(loops), ``embed`` (inference to daily embedding cubes), ``gpp`` (join with flux
data, heads, cross-validation, metrics, analyses), ``report`` (figures, HTML),
``pipelines`` (whole jobs) and ``cli`` (the ``ecoembed`` command). The sibling
package ``fluxnet`` reads eddy-covariance data.
"""

__version__ = "0.1.0"
