"""mixfx.losses: the training objectives of Koo et al. 2023.

Modules:
    contrastive :func:`nt_xent` / :class:`NTXentLoss`: NT-Xent on a DirectCLR sub-vector (FXencoder).
    spectral    :func:`multi_scale_spectral_loss` / :class:`SpectralLoss`: multi-scale spectral loss on
                left, right, mid and side (paper eq. 1; MixFXcloner), :class:`SpectralLossConfig`,
                :class:`SpectralTarget` (a target's spectrograms, reused against several estimates).
    level       :func:`level_error_db`: |RMS level difference| in dB (an optional, symmetric level term for
                MixFXcloner training; not in the paper).
"""

from mixfx._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "contrastive": ("NTXentLoss", "nt_xent"),
    "spectral": ("SpectralLoss", "SpectralLossConfig", "SpectralTarget", "multi_scale_spectral_loss"),
    "level": ("level_error_db", "rms_db"),
})
