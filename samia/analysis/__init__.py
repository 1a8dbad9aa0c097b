"""Analysis of evaluation results: object factors, statistics, tables, plots and the HTML report.

- :mod:`~samia.analysis.factors`: properties of a ground-truth object (size, contrast, boundary
  complexity, shape), stored in every result row.
- :mod:`~samia.analysis.stats`: bootstrap intervals, Wilcoxon tests with effect sizes, Holm's
  adjustment, (partial) Spearman correlations.
- :mod:`~samia.analysis.results`, :mod:`~samia.analysis.tables`: loading several runs, pairing rows
  of the same object, the report's tables.
- :mod:`~samia.analysis.plots`, :mod:`~samia.analysis.overlays`: figures and case pictures.
- :mod:`~samia.analysis.report`: ``samia report`` (HTML, Markdown, CSV): ``build_report``.

Only the factors are imported here, so the evaluation runner can use them without loading the
plotting and reporting stack.
"""

from samia.analysis.factors import FACTOR_NAMES, object_factors

__all__ = ["FACTOR_NAMES", "object_factors"]
