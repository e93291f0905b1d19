"""GPP from features: join with tower flux, feature sets, heads, site-level cross-validation, metrics, analyses.

* :mod:`ecoembed.gpp.options`: choices and defaults (heads, CV schemes, feature sets, window).
* :mod:`ecoembed.gpp.join`: tower-window aggregation of cubes, daily interpolation, join with flux days.
* :mod:`ecoembed.gpp.features`: feature sets (embeddings, bands, indices, meteorology, indices x PAR).
* :mod:`ecoembed.gpp.heads`: linear (statsmodels), xgboost and MLP heads with the scikit-learn API.
* :mod:`ecoembed.gpp.cv`: site-level splitters and out-of-fold predictions.
* :mod:`ecoembed.gpp.metrics`: r2, NSE, RMSE, MAE, bias, KGE (one definition for every table).
* :mod:`ecoembed.gpp.decomposition`: across-site / seasonal / anomaly / inter-annual skill, daily vs 8-day.
* :mod:`ecoembed.gpp.phenology`: season start/end timing and cross-correlation lags.
* :mod:`ecoembed.gpp.interpret`: contributions, permutation importance, coefficients, embedding meaning.
"""
