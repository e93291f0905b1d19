"""What each sensor is: band order, scaling, masks, normalisation statistics.

* :mod:`ecoembed.sensors.sentinel2`: S2 L2A bands, DN -> reflectance (baseline 04.00 offset), SCL validity, 20 -> 10 m.
* :mod:`ecoembed.sensors.sentinel1`: S1 VV/VH, dB conversion, no-data masking, multi-temporal speckle filter.
* :mod:`ecoembed.sensors.normalisation`: per-band normalisation statistics (what the encoders were trained with).
* :mod:`ecoembed.sensors.indices`: NDVI, NIRv, kNDVI, EVI2 of arrays and cubes.
* :mod:`ecoembed.sensors.cube`: the sensor cube contract and :func:`~ecoembed.sensors.cube.validate_cube`.
"""

from ecoembed.sensors.normalisation import band_statistics, normalisation_metadata, normalisation_stats

__all__ = ["band_statistics", "normalisation_metadata", "normalisation_stats"]
