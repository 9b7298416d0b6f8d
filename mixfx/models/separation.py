"""Source separation of mixtures into drums, bass, other, vocals with Hybrid Demucs (torchaudio).

The paper separates mixtures with Hybrid Demucs before style transfer. This wrapper builds
torchaudio's :class:`torchaudio.models.HDemucs` and loads weights the user provides as a file —
nothing is downloaded. The expected file is a ``state_dict`` of that class, e.g. saved with::

    bundle = torchaudio.pipelines.HDEMUCS_HIGH_MUSDB_PLUS        # or HDEMUCS_HIGH_MUSDB
    torch.save(bundle.get_model().state_dict(), "hdemucs_high_musdb_plus.pt")

(the bundle's own cached download, ``~/.cache/torch/hub/torchaudio/models/hdemucs_high_trained.pt``,
is such a file too). The architecture is read from the tensor shapes (width, depth, FFT size,
number of sources), so :func:`torchaudio.models.hdemucs_high` files (48 channels, depth 6,
n_fft 4096) and smaller test models load alike; the sources are taken to be in the torchaudio
bundles' order ``drums, bass, other, vocals`` unless told otherwise.

Separation follows the torchaudio / Demucs recipe: the mixture is standardized by the mean and
standard deviation of its mono sum, separated in overlapping cross-faded windows
(:func:`mixfx.models.apply.apply_in_windows`, 10 s, 25 % overlap by default) and scaled back.

torchaudio is imported only here, when a separator is built: it is the optional ``separation`` extra.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Any, Sequence

import torch
from torch import nn

from mixfx import SAMPLE_RATE, STEMS
from mixfx.errors import MixfxError
from mixfx.io.checkpoint import torch_load
from mixfx.models.apply import apply_in_windows
from mixfx.models.loading import find_state_dict, load_state_dict_strict
from mixfx.progress import Progress

log = logging.getLogger(__name__)

_STRIDE = 4  # HDemucs' frequency stride per layer (torchaudio default)


@dataclasses.dataclass(frozen=True)
class SeparatorConfig:
    """The HDemucs sizes that differ between torchaudio's ``hdemucs_high`` and smaller models.

    Attributes:
        sources: source names in the model's output order.
        audio_channels: input / output channels (2).
        channels: width of the first layer (48 for ``hdemucs_high``).
        growth: width factor per layer.
        nfft: STFT size of the spectral branch (4096).
        depth: number of encoder / decoder layers (6).
    """

    sources: tuple[str, ...] = STEMS
    audio_channels: int = 2
    channels: int = 48
    growth: int = 2
    nfft: int = 4096
    depth: int = 6

    @classmethod
    def high(cls, sources: Sequence[str] = STEMS) -> "SeparatorConfig":
        """torchaudio's :func:`~torchaudio.models.hdemucs_high` (the MUSDB bundles)."""
        return cls(sources=tuple(sources))


def infer_config(state_dict: dict[str, torch.Tensor], sources: Sequence[str] | None = None,
                 path: str | os.PathLike = "<weights>") -> SeparatorConfig:
    """Read the HDemucs sizes from a torchaudio ``HDemucs`` state dict (prefixes already stripped).

    Args:
        state_dict: the weights.
        sources: names of the outputs; default :data:`mixfx.STEMS` (must match the output count).
        path: for messages.

    Raises:
        MixfxError: the tensors do not look like a torchaudio HDemucs, or the source count differs.
    """
    need = ("freq_encoder.0.conv.weight", "time_encoder.0.conv.weight")
    if not all(k in state_dict for k in need):
        sample = ", ".join(sorted(state_dict)[:3]) or "none"
        raise MixfxError(
            f"{path}: not a torchaudio HDemucs state_dict (no {need[0]}; found e.g. {sample}); save one with "
            f"torch.save(torchaudio.pipelines.HDEMUCS_HIGH_MUSDB_PLUS.get_model().state_dict(), PATH)"
        )
    depth = len({m.group(1) for k in state_dict if (m := re.match(r"freq_encoder\.(\d+)\.", k))})
    channels = int(state_dict["freq_encoder.0.conv.weight"].shape[0])
    audio_channels = int(state_dict["time_encoder.0.conv.weight"].shape[1])
    growth = 2
    if "freq_encoder.1.conv.weight" in state_dict:
        growth = max(1, int(state_dict["freq_encoder.1.conv.weight"].shape[0]) // channels)
    emb = state_dict.get("freq_emb.embedding.weight")
    nfft = 2 * _STRIDE * int(emb.shape[0]) if emb is not None else 4096
    last = state_dict.get(f"time_decoder.{depth - 1}.conv_tr.weight")
    n_sources = int(last.shape[1]) // audio_channels if last is not None else len(STEMS)
    names = tuple(sources) if sources is not None else STEMS
    if len(names) != n_sources:
        raise MixfxError(f"{path}: the separator has {n_sources} outputs, but {len(names)} source names were given {names}")
    return SeparatorConfig(sources=names, audio_channels=audio_channels, channels=channels, growth=growth,
                           nfft=nfft, depth=depth)


def build_hdemucs(config: SeparatorConfig) -> nn.Module:
    """A torchaudio ``HDemucs`` with ``config``'s sizes (random weights).

    Raises:
        MixfxError: torchaudio is not installed, or it refuses the sizes.
    """
    try:
        from torchaudio.models import HDemucs
    except ImportError as err:
        raise MixfxError(
            f"source separation needs torchaudio ({err}); install it with pip install 'mixfx[separation]', "
            f"or give stem folders instead of mixtures"
        ) from None
    try:
        return HDemucs(sources=list(config.sources), audio_channels=config.audio_channels, channels=config.channels,
                       growth=config.growth, nfft=config.nfft, depth=config.depth)
    except Exception as err:  # noqa: BLE001 - torchaudio validates with asserts / ValueErrors
        raise MixfxError(f"cannot build HDemucs {config}: {type(err).__name__}: {err}".splitlines()[0]) from None


class Separator:
    """A loaded separation model plus its windowing settings.

    Args:
        model: ``(n, 2, T) → (n, n_sources, 2, T)`` (a torchaudio ``HDemucs``), in eval mode.
        sources: output names in order.
        sample_rate: rate the model works at (Hz).
        segment_seconds: window length of the chunked separation.
        overlap: fraction shared by neighbouring windows, in [0, 1).
        batch_size: windows per model call.
        device: where the model runs (default: where its weights are).
    """

    def __init__(self, model: nn.Module, *, sources: Sequence[str] = STEMS, sample_rate: int = SAMPLE_RATE,
                 segment_seconds: float = 10.0, overlap: float = 0.25, batch_size: int = 1,
                 device: torch.device | str | None = None) -> None:
        if not segment_seconds > 0:
            raise MixfxError(f"separator: segment_seconds must be > 0, got {segment_seconds}")
        self.model = model.eval()
        self.sources = tuple(sources)
        self.sample_rate = int(sample_rate)
        self.window = max(1, round(segment_seconds * sample_rate))
        self.overlap = float(overlap)
        self.batch_size = int(batch_size)
        if device is None:
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)

    def _run(self, chunks: torch.Tensor) -> torch.Tensor:
        y = self.model(chunks)
        if y.ndim != 4 or y.shape[1] != len(self.sources):
            raise MixfxError(f"separator: model returned {tuple(y.shape)}, expected (n, {len(self.sources)}, channels, samples)")
        return y.flatten(1, 2)

    def separate(self, mixture: torch.Tensor, sample_rate: int = SAMPLE_RATE, *,
                 progress: Progress = False) -> dict[str, torch.Tensor]:
        """Split a mixture into its sources.

        Args:
            mixture: ``(2, T)`` audio.
            sample_rate: of ``mixture``; must equal the separator's.
            progress: ``True`` for a bar, or a :class:`~mixfx.progress.ProgressFn` ``(done, total, "windows")``.

        Returns:
            ``{source: (2, T) float32 tensor}`` on ``mixture``'s device, in model order. Their sum
            approximates the mixture.

        Raises:
            MixfxError: wrong shape or rate.
        """
        if sample_rate != self.sample_rate:
            raise MixfxError(f"separator: audio at {sample_rate} Hz, the model works at {self.sample_rate} Hz")
        if mixture.ndim != 2 or mixture.shape[0] != 2 or mixture.shape[1] < 1:
            raise MixfxError(f"separator: expected a stereo mixture (2, samples), got {tuple(mixture.shape)}")
        mono = mixture.to(torch.float64).mean(0)
        mean, std = float(mono.mean()), float(mono.std()) if mono.numel() > 1 else 0.0
        n = len(self.sources)
        if std <= 1e-8:
            log.info("separator: silent mixture, every source is silent")
            return {s: torch.zeros_like(mixture, dtype=torch.float32) for s in self.sources}
        x = ((mixture.to(torch.float32) - mean) / std)
        with torch.no_grad():
            y = apply_in_windows(self._run, x, window=self.window, overlap=self.overlap, batch_size=self.batch_size,
                                 device=self.device, progress=progress)
        y = y.reshape(n, mixture.shape[0], -1) * std + mean / n  # the sources still sum to the mixture
        return {s: y[i].to(torch.float32).contiguous() for i, s in enumerate(self.sources)}


def load_separator(
    path: str | os.PathLike,
    *,
    sources: Sequence[str] | None = None,
    device: torch.device | str | None = None,
    segment_seconds: float = 10.0,
    overlap: float = 0.25,
    batch_size: int = 1,
    allow_pickle: bool = False,
) -> Separator:
    """Load a torchaudio HDemucs ``state_dict`` file into a :class:`Separator`.

    Args:
        path: ``.pt`` file holding the state dict (bare, or under a ``"model"`` / ``"state_dict"``
            key; ``module.`` prefixes are removed).
        sources: output names; default ``drums, bass, other, vocals`` (torchaudio bundles).
        device: where separation runs (default CPU).
        segment_seconds, overlap, batch_size: windowing (see :class:`Separator`).
        allow_pickle: see :func:`mixfx.io.checkpoint.torch_load` (trusted files only).

    Returns:
        The separator, its model in eval mode on ``device``.

    Raises:
        MixfxError: missing or unreadable file, not an HDemucs state dict, weights that do not
            fit, torchaudio missing.

    Example:
        >>> sep = load_separator("hdemucs_high_musdb_plus.pt")  # doctest: +SKIP
        >>> stems = sep.separate(load_audio("song.wav"))          # doctest: +SKIP
    """
    obj: Any = torch_load(path, map_location="cpu", allow_pickle=allow_pickle)
    state_dict = find_state_dict(obj)
    if state_dict is None:
        raise MixfxError(f"{path}: expected a torchaudio HDemucs state_dict (a dict of tensors), got {type(obj).__name__}")
    config = infer_config(state_dict, sources, path)
    model = build_hdemucs(config)
    load_state_dict_strict(model, state_dict, path, model_name=f"HDemucs(channels={config.channels}, "
                           f"depth={config.depth}, nfft={config.nfft})")
    device = torch.device(device) if device is not None else torch.device("cpu")
    model = model.to(device).eval()
    log.info("loaded HDemucs separator %s (channels %d, depth %d, sources %s)", path, config.channels, config.depth,
             ", ".join(config.sources))
    return Separator(model, sources=config.sources, segment_seconds=segment_seconds, overlap=overlap,
                     batch_size=batch_size, device=device)
