"""Where pixels come from; every source returns the sensor cube contract.

* :mod:`ecoembed.sources.local`: NetCDF/Zarr cubes (``open_cube``, ``save_cube``), the default.
* :mod:`ecoembed.sources.stac`: STAC catalogs (optional extra ``ecoembed[stac]``), ``load_stac``.
* :mod:`ecoembed.sources.fetch`: chips around every tower of a sites table from STAC (``fetch_sites``, ``ecoembed fetch``).
* :mod:`ecoembed.sources.synthetic`: labelled synthetic scenes (``make_scene``, ``write_demo_sites``).
* :mod:`ecoembed.sources.chips`: tower placement, chips and per-pixel series (``tower_pixel``, ``cube_to_series``;
  ``checkpoint_series``: a checkpoint's recorded band order and statistics).
* :mod:`ecoembed.sources.grid`: pixel grids, nesting, resampling, and ``require_metric_grid`` (the check of every
  cube windowed in metres, embedding cubes included).
* :mod:`ecoembed.sources.embedding_cube`: the embedding cube contract, its int8 codec and reader (``open_embeddings``).
* :mod:`ecoembed.sources.cf`: CF-1.8 georeferencing of written cubes for GDAL/QGIS/rioxarray (``georeference``, ``transform_of``).
"""
