"""mixeval.pipelines: one function per ``mixeval`` command (files in, files out; the CLI only parses).

Modules:
    disentangle       ``disentangle`` (Table 1, Fig. 2): :func:`run_disentangle`; representations and their
                      cache in :mod:`~mixeval.pipelines.disentangle_embed`, the shared embedding step in
                      :mod:`~mixeval.pipelines.embedded_sets`.
    retrieval         ``retrieval``: :func:`run_retrieval`.
    table2            ``table2`` (objective style transfer): :func:`run_table2`; the per-example scoring of
                      every row in :mod:`~mixeval.pipelines.table2_measures`.
    listening         ``make-listening-test`` / ``analyze-listening``: :func:`make_listening_test`,
                      :func:`analyze_listening`.
    reproduce         ``reproduce``: ``reproduce.reproduce`` and :class:`ReproduceConfig` (the function
                      shares its module's name, so it is not re-exported).
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "disentangle": ("run_disentangle",), "listening": ("analyze_listening", "make_listening_test"),
    "reproduce": ("ReproduceConfig",), "retrieval": ("run_retrieval",), "table2": ("run_table2",),
})
