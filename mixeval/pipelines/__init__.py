"""mixeval.pipelines: one function per ``mixeval`` command (files in, files out; the CLI only parses).

Modules:
    disentangle       ``disentangle`` (Table 1, Fig. 2): :func:`run_disentangle`; representations and their
                      cache in :mod:`~mixeval.pipelines.disentangle_embed`, the shared embedding step in
                      :mod:`~mixeval.pipelines.embedded_sets`.
    retrieval         ``retrieval``: :func:`run_retrieval`.
    table2            ``table2`` (objective style transfer): :func:`run_table2`.
    listening         ``make-listening-test`` / ``analyze-listening``: :func:`make_listening_test`,
                      :func:`analyze_listening`.
    reproduce         ``reproduce``: ``reproduce.reproduce`` and :class:`ReproduceConfig` (the function
                      shares its module's name, so it is not re-exported).
"""

from mixfx._lazy import lazy_exports

_EXPORTS = {
    "ReproduceConfig": "mixeval.pipelines.reproduce",
    "analyze_listening": "mixeval.pipelines.listening",
    "make_listening_test": "mixeval.pipelines.listening",
    "run_disentangle": "mixeval.pipelines.disentangle",
    "run_retrieval": "mixeval.pipelines.retrieval",
    "run_table2": "mixeval.pipelines.table2",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
