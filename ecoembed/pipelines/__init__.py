"""Whole jobs: orchestration above ``gpp``, ``embed`` and ``report``; each writes one run folder.

* :mod:`ecoembed.pipelines.fit_gpp`: ``ecoembed fit-gpp`` (join, cross-validation, every analysis, report).
* :mod:`ecoembed.pipelines.demo`: ``ecoembed demo`` (synthetic towers end to end, no download).
"""
