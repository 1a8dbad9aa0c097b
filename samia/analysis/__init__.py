"""Analysis of evaluation results: statistics, tables, plots and the HTML report.

- :mod:`~samia.analysis.stats`: bootstrap intervals, Wilcoxon tests with effect sizes, Holm's
  adjustment, (partial) Spearman correlations.
- :mod:`~samia.analysis.results`, :mod:`~samia.analysis.tables`: loading several runs, pairing rows
  of the same object, the report's tables.
- :mod:`~samia.analysis.plots`, :mod:`~samia.analysis.overlays`: figures and case pictures.
- :mod:`~samia.analysis.report`: ``samia report`` (HTML, Markdown, CSV): ``build_report``.

The object factors the report analyses (size, contrast, boundary complexity, shape) are measured
during evaluation by :mod:`samia.metrics.factors`.
"""
