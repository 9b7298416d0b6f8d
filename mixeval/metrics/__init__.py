"""mixeval.metrics: pure functions over arrays (no file I/O), named after the quantity they return.

Naming and direction (unlike scikit-learn there is no ``*_score`` / ``*_error`` suffix; each
module's docstring states the direction of its measures):

* :mod:`~mixeval.metrics.disentangle` — :func:`dcimig`, :func:`dci`, :func:`mig`, :func:`sap`:
  higher is better, best 1, ``(factors, codes)`` arrays; :mod:`~mixeval.metrics.information`
  holds their entropy / mutual-information helpers and input checks;
  :mod:`~mixeval.metrics.forest_grid` DCI's random-forest grid search and
  :mod:`~mixeval.metrics.random_forest` the presorted numba forest it fits by default.
* :mod:`~mixeval.metrics.retrieval` — :func:`fx_retrieval` (R@k, MRR): higher is better, best 1;
  :func:`retrieval_chance` the value of uninformative codes.
* :mod:`~mixeval.metrics.style` — per-example distances of style transfer (``lmss_terms``,
  ``embedding_distance``, ``mrstft``, ``audio_feature_errors``, ``loudness_error``): lower is
  better, 0 for identical inputs; ``sdr_db`` is the exception, higher is better.
* :mod:`~mixeval.metrics.stats` — listening-test statistics (paired t-tests, Bonferroni, CIs,
  RM-ANOVA, Friedman, bootstrap, Wilcoxon): test results, no direction.
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "disentangle": ("dci", "dcimig", "mig", "sap"), "retrieval": ("fx_retrieval", "retrieval_chance"),
})
