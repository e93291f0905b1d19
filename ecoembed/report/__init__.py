"""Figures and the HTML/Markdown report of a fit-gpp run folder; reads the folder, computes no score.

* :mod:`ecoembed.report.common`: reading a run folder, saving figures, tables.
* :mod:`ecoembed.report.figures`: fit-gpp figures (skill, seasonal GPP, decomposition, phenology).
* :mod:`ecoembed.report.interpret_figs`: interpretability figures.
* :mod:`ecoembed.report.sections`: the section registry (what the report shows, in order).
* :mod:`ecoembed.report.html`: ``index.html`` and ``report.md`` (:func:`~ecoembed.report.html.build_report`).
* :mod:`ecoembed.report.screenshot`: a PNG of ``index.html`` in headless Chromium.
"""
