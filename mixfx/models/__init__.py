"""mixfx.models: the FXencoder Φ, the MixFXcloner Ψ, style transfer with both, and model loading.

Modules:
    encoder        :class:`FXEncoder` ``(B, 2, T) → (B, dim)`` and :class:`FXEncoderConfig`.
    cloner         :class:`MixFXCloner` (TCN + FiLM) ``(B, 2, T), (B, cond_dim) → (B, 2, T)``.
    loading        every checkpoint read: :func:`load_encoder`, :func:`load_cloner`, :func:`load_models`,
                   :func:`load_model` (either kind), :func:`resolve_device`; ours or the official layouts.
    style_transfer :class:`StyleTransfer`: ``y = Ψ(normalize(x), Φ(ref))`` on whole songs.
    apply          windowed / overlap-add application of a model to long audio.
    tcn_inference  the exact tiled cloner pass used for long inputs.
    separation     Hybrid Demucs source separation (:func:`load_separator`; optional torchaudio).
    official       old names of :mod:`~mixfx.models.loading` (``load_official_encoder`` …), kept as aliases.

The names below are imported on first use, so ``import mixfx.models`` does not load the networks.
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "cloner": ("ClonerConfig", "MixFXCloner"), "encoder": ("FXEncoder", "FXEncoderConfig"),
    "loading": ("load_cloner", "load_encoder", "load_model", "load_models", "resolve_device"),
    "separation": ("Separator", "load_separator"), "style_transfer": ("StyleTransfer",),
})
