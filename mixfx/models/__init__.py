"""mixfx.models: the FXencoder Φ, the MixFXcloner Ψ, style transfer with both, and model loading.

Public API: :class:`StyleTransfer` (``y = Ψ(normalize(x), Φ(ref))`` on ``(B, 2, T)`` batches) and
:func:`load_models` (our or the official checkpoints). The networks are in
:mod:`mixfx.models.encoder` and :mod:`mixfx.models.cloner`, windowing in :mod:`mixfx.models.apply`.
"""

from mixfx.models.loading import load_models, resolve_device
from mixfx.models.style_transfer import StyleTransfer

__all__ = ["StyleTransfer", "load_models", "resolve_device"]
