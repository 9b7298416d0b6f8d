"""mixfx: music mixing style transfer — FX chain, FX normalization, models and training."""

from mixfx.errors import MixfxError

SAMPLE_RATE = 44100
"""The project's working sample rate (Hz): every model and FX default assumes it."""

STEMS = ("drums", "bass", "other", "vocals")
"""The four MUSDB18 stems, in the project's canonical order."""

__version__ = "0.1.0"
__all__ = ["MixfxError", "SAMPLE_RATE", "STEMS", "__version__"]
