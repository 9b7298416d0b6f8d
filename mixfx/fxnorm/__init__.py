"""FX normalization (Koo et al. 2023 §2.1.1, after FxNorm): measure, match, targets, whole datasets.

* :mod:`~mixfx.fxnorm.features`: what is measured on a stem (``measure_feature``: EQ curve, mean
  onset peak, mid and left energy fractions, loudness) and the level helpers.
* :mod:`~mixfx.fxnorm.matching`: the matching steps (``match_eq``, ``match_imager``,
  ``match_panning``, ``match_loudness``), ``normalize_stem`` (one ``(2, T)`` stem),
  ``normalize_stems`` (a ``(B, 2, T)`` batch) and ``stem_rng`` (the Haas step's generator).
* :mod:`~mixfx.fxnorm.compression`: ``match_compression`` and its ratio/threshold search.
* :mod:`~mixfx.fxnorm.targets`: ``FXNormFeatures`` (per-stem targets) and ``load_features``
  (our ``.npz`` or the official pickled ``.npy``, read without running code).
* :mod:`~mixfx.fxnorm.dataset`: ``average_features`` (the targets of a set of songs),
  ``normalize_song``, ``is_fx_normalized`` / ``NORMALIZATION_RECORD``.

The file side (``mixfx fx-features`` / ``fx-normalize``) is :mod:`mixfx.pipelines.fx_normalize`.
"""
