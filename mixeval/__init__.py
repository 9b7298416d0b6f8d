"""mixeval: the evaluation of Koo et al. (ICASSP 2023) — disentanglement metrics, Table 2, listening tests.

Subpackages and modules (``mixeval`` imports ``mixfx``, never the reverse; data flows ``cli`` →
``pipelines`` → core → ``mixfx.io``):
    metrics        pure metric functions: disentanglement, retrieval, style-transfer distances, statistics.
    tables         Table 1 / Table 2 frames and their CSV / Markdown / LaTeX files.
    plots          the figures (Fig. 2, Fig. 3, probability schedules).
    listening      WAET listening tests: spec, media, XML, results, analysis.
    pipelines      one function per ``mixeval`` command.
    evalset        the Table 1 item sets (segments × FX configurations); ``evalset_factors`` their factors.
    transfer_set   the Table 2 transfer items; ``dsp_baseline`` and ``baselines`` the non-learned rows.
    outputs        staged, locked output folders; ``errors`` :class:`MixevalError`.
    cli            the ``mixeval`` command (typer).

Importing this package loads neither torch nor numpy.
"""

from mixeval.errors import MixevalError

__all__ = ["MixevalError"]
