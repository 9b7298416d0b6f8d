"""mixeval.listening: MUSHRA-style listening tests in WAET (paper §3.4.2, Fig. 3).

Modules:
    spec           :class:`ListeningTestSpec`, :class:`ConditionSpec`, :func:`load_spec` (TOML).
    generate       plan questions and write loudness-matched, blinded media: :func:`generate_media`.
    render_models  :class:`CheckpointRenderer`: ``checkpoint`` conditions rendered with mixfx models.
    media          fades, anchor, loudness and true peak, 16-bit output.
    waet           the WAET test XML: build, check, validate against WAET's XSD.
    manifest       the un-blinding manifest (one row per audio element).
    readme         the experimenter README written next to a test.
    results        read WAET saves / CSVs into one long table: :func:`load_results`.
    analyze        un-blind and compute the paper's statistics: :func:`analyze_ratings`.
    xmlsafe        safe parsing of untrusted XML.
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "analyze": ("analyze_ratings",), "generate": ("generate_media",), "render_models": ("CheckpointRenderer",),
    "results": ("load_results",), "spec": ("ConditionSpec", "ListeningTestSpec", "load_spec"),
})
