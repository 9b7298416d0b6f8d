"""mixfx.pipelines: one function per ``mixfx`` command (files in, files out; the CLI only parses).

Modules:
    fx_normalize   ``fx-features`` / ``fx-normalize``: :func:`compute_features`, :func:`normalize_dataset`,
                   :func:`is_fx_normalized`.
    manipulate     ``manipulate``: :func:`manipulate_files`.
    train_encoder  ``train-encoder``: ``train_encoder.train_encoder``.
    train_cloner   ``train-cloner``: ``train_cloner.train_cloner``.
    transfer       ``transfer``: ``transfer.transfer`` and :class:`TransferConfig` (songs in
                   :mod:`~mixfx.pipelines.transfer_songs`).

The functions that share their module's name (``train_encoder``, ``train_cloner``, ``transfer``)
are not re-exported: an imported submodule would shadow them. Import them from their modules.
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "fx_normalize": ("compute_features", "is_fx_normalized", "normalize_dataset"),
    "manipulate": ("manipulate_files",), "transfer": ("TransferConfig",),
})
