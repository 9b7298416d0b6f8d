"""FXencoder Φ: residual 1-D convolutional encoder of audio effects (Koo et al. 2023, §2.2).

The architecture is the Music Effects Encoder (MEE) of Koo et al. (ICASSP 2022), kept exactly so
that the official ``FXencoder_ps.pt`` weights load with ``strict=True``:

* input: raw stereo waveform ``(batch, 2, samples)`` at 44.1 kHz (no STFT, no normalisation);
* 12 residual blocks ``i``: ``c = conv1(x) + x; y = conv2(c)``, where each conv layer is
  ``SamePad → Conv1d(bias) → BatchNorm1d → ReLU``; ``conv1`` keeps the channel count with stride 1,
  ``conv2`` maps ``channels[i-1] → channels[i]`` with ``strides[i]``;
* global average pooling over time gives one ``(batch, dim)`` embedding (``dim = channels[-1]``,
  2048 for the paper), non-negative because every block ends with a ReLU. There is no projection
  head and no L2 normalisation: the contrastive loss normalises.

Module names mirror the official state dict (``encoder.{i}.conv1.conv1d.conv1d.weight`` …), see
``/work/shared/reference/official_checkpoint_keys.txt``.

Short inputs. The official layers use ``ReflectionPad1d``, which fails when a pad is not shorter
than the signal (the paper encoder needs a few thousand samples before its deepest layers have
enough frames). :class:`SamePad1d` reflects whenever that is possible, which is bit-identical to the
official layer, and falls back to *replicate* padding otherwise, so any input of at least one sample
gives an embedding. Only these degenerate short inputs differ from the official network (which
raises on them).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mixfx import SAMPLE_RATE
from mixfx.configs import config_from_dict
from mixfx.errors import MixfxError
from mixfx.models.spectral_frontend import LogMelFrontEnd

FRONTENDS = ("waveform", "logmel")


@dataclasses.dataclass(frozen=True)
class FXEncoderConfig:
    """Sizes of the FXencoder; one entry per residual block.

    Attributes:
        channels: output channels of each block (the last one is the embedding size).
        kernels: kernel size (samples / frames) of both conv layers of each block.
        strides: stride of each block's second conv layer.
        in_channels: input audio channels (2: stereo).
        frontend: ``"waveform"`` (the paper: the blocks read samples) or ``"logmel"`` (the blocks read
            the frames of :class:`~mixfx.models.spectral_frontend.LogMelFrontEnd`: log-mel bands of L, R,
            mid and side; not in the paper, see :meth:`small_logmel`).
        n_fft, hop, n_mels: the logmel front end's STFT size, hop and bands per signal (unused by
            ``"waveform"``).
    """

    channels: tuple[int, ...] = (16, 32, 64, 128, 256, 256, 512, 512, 1024, 1024, 2048, 2048)
    kernels: tuple[int, ...] = (25, 25, 15, 15, 10, 10, 10, 10, 5, 5, 5, 5)
    strides: tuple[int, ...] = (4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1)
    in_channels: int = 2
    frontend: str = "waveform"
    n_fft: int = 2048
    hop: int = 512
    n_mels: int = 64

    def __post_init__(self) -> None:
        for name in ("channels", "kernels", "strides"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.frontend not in FRONTENDS:
            raise MixfxError(f"FXEncoderConfig: unknown frontend {self.frontend!r}; expected one of {', '.join(FRONTENDS)}")
        if self.frontend == "logmel" and (self.in_channels != 2 or min(self.n_fft, self.hop, self.n_mels) < 1):
            raise MixfxError(f"FXEncoderConfig: the logmel front end needs stereo input and n_fft, hop, n_mels ≥ 1, got {self}")
        n = len(self.channels)
        if n == 0 or len(self.kernels) != n or len(self.strides) != n:
            raise MixfxError(
                f"FXEncoderConfig: channels, kernels and strides need the same non-zero length, got "
                f"{len(self.channels)}, {len(self.kernels)}, {len(self.strides)}"
            )
        if min(self.channels) < 1 or min(self.kernels) < 1 or min(self.strides) < 1 or self.in_channels < 1:
            raise MixfxError(f"FXEncoderConfig: all sizes must be ≥ 1, got {self}")

    @classmethod
    def paper(cls) -> "FXEncoderConfig":
        """The official / paper FXencoder (12 blocks, 2048-d embedding, ≈81.4 M parameters)."""
        return cls()

    @classmethod
    def tiny(cls) -> "FXEncoderConfig":
        """A 4-block, 64-d encoder (total stride 64, ≈60 k parameters) for CPU tests and smoke runs."""
        return cls(channels=(8, 16, 32, 64), kernels=(15, 9, 5, 5), strides=(4, 4, 2, 2))

    @classmethod
    def small(cls) -> "FXEncoderConfig":
        """A 7-block, 128-d encoder (total stride 512, receptive field 9,613 samples ≈ 0.22 s, ≈ 0.34 M
        parameters, ≈ 0.16 GFLOP per audio second) for the ``small`` CPU recipe.

        The tiny encoder sees 477 samples (11 ms): shorter than one period of the low-shelf EQ
        frequencies and far shorter than the compressor's attack/release, so after global average
        pooling it can only encode level and coarse spectral balance (see the README, "Does it learn?").
        """
        return cls(channels=(8, 16, 32, 64, 64, 128, 128), kernels=(15, 15, 9, 9, 9, 5, 5), strides=(4, 4, 4, 2, 2, 2, 2))

    @classmethod
    def small_logmel(cls) -> "FXEncoderConfig":
        """A 4-block, 128-d encoder over the logmel front end (64 bands of L, R, mid, side; hop 512,
        receptive field 41 frames + n_fft ≈ 0.52 s; ≈ 0.86 M parameters). Not in the paper and not in a preset:
        an opt-in for the issue-10 investigation. It trains ≈ 2× faster than :meth:`small` on CPU (90–107 vs 46 audio-s/s on a 2-core EPYC) and
        its random init already carries the EQ gains (ridge R² 0.18 vs 0.01 for the waveform encoder),
        but 200–600 contrastive CPU steps do not raise that (README, "Does it learn?")."""
        return cls(channels=(128, 128, 128, 128), kernels=(5, 5, 3, 3), strides=(1, 2, 2, 1), frontend="logmel")

    @property
    def dim(self) -> int:
        """Embedding size (``channels[-1]``)."""
        return self.channels[-1]

    @property
    def total_stride(self) -> int:
        """Input samples per output frame: the product of the strides (4096 for the paper), times the hop
        with the logmel front end."""
        out = self.hop if self.frontend == "logmel" else 1
        for s in self.strides:
            out *= s
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (lists for the tuples)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FXEncoderConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`MixfxError`."""
        return config_from_dict(cls, d)


class SamePad1d(nn.Module):
    """'SAME' padding of ``kernel_size − 1`` samples (left ``pad // 2``, right the rest).

    Reflection padding (as the official ``ReflectionPad1d``) when both pads are shorter than the
    input, replicate padding otherwise (inputs too short to reflect).
    """

    def __init__(self, kernel_size: int, dilation: int = 1) -> None:
        super().__init__()
        total = (kernel_size - 1) * dilation
        self.left = total // 2
        self.right = total - self.left

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left == 0 and self.right == 0:
            return x
        mode = "reflect" if max(self.left, self.right) < x.shape[-1] else "replicate"
        return F.pad(x, (self.left, self.right), mode=mode)

    def extra_repr(self) -> str:
        return f"left={self.left}, right={self.right}"


class ConvLayer(nn.Module):
    """``SamePad → Conv1d(bias) → BatchNorm1d → ReLU``; output length ``ceil(T / stride)``.

    The child is called ``conv1d`` (a Sequential holding ``pad``, ``conv1d``, ``batch_norm``,
    ``relu``) so that parameter names match the official ``Conv1d_layer``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1d = nn.Sequential(
            OrderedDict(
                pad=SamePad1d(kernel_size),
                conv1d=nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, bias=True),
                batch_norm=nn.BatchNorm1d(out_channels),
                relu=nn.ReLU(),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1d(x)


class ResConvBlock(nn.Module):
    """Residual block ``conv2(conv1(x) + x)``: ``(B, in, T) → (B, out, ceil(T / stride))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, kernel_size, stride=1)
        self.conv2 = ConvLayer(in_channels, out_channels, kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x) + x)


class FXEncoder(nn.Module):
    """FXencoder Φ: stereo audio of any length → one effects embedding.

    Args:
        config: block sizes; default :meth:`FXEncoderConfig.paper`.

    Shapes:
        ``forward(x)``: ``x`` is ``(batch, 2, samples)`` (any ``samples ≥ 1``), returns
        ``(batch, dim)``. ``frames(x)`` returns the pre-pooling ``(batch, dim, ceil(samples/stride))``.

    Note:
        The BatchNorm layers make train/eval mode matter: call ``.eval()`` for inference.

    Example:
        >>> enc = FXEncoder(FXEncoderConfig.tiny()).eval()
        >>> enc(torch.zeros(3, 2, 1000)).shape
        torch.Size([3, 64])
    """

    checkpoint_kind = "fxencoder"

    def __init__(self, config: FXEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else FXEncoderConfig.paper()
        c = self.config
        self.frontend = LogMelFrontEnd(SAMPLE_RATE, c.n_fft, c.hop, c.n_mels) if c.frontend == "logmel" else None
        first = self.frontend.out_channels if self.frontend is not None else c.in_channels
        ins = (first,) + c.channels[:-1]
        self.encoder = nn.Sequential(
            *[ResConvBlock(i, o, k, s) for i, o, k, s in zip(ins, c.channels, c.kernels, c.strides)]
        )
        self.pool = nn.AdaptiveAvgPool1d(1)

    @property
    def dim(self) -> int:
        """Embedding size."""
        return self.config.dim

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.config.in_channels or x.shape[-1] < 1:
            raise MixfxError(
                f"FXEncoder: expected audio (batch, {self.config.in_channels}, samples ≥ 1), "
                f"got shape {tuple(x.shape)}"
            )

    def frames(self, x: torch.Tensor) -> torch.Tensor:
        """Frame-level features before pooling: ``(B, 2, T) → (B, dim, ceil(T / total_stride))``."""
        self._check(x)
        return self.encoder(self.frontend(x) if self.frontend is not None else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding ``(B, dim)`` of stereo audio ``(B, 2, T)`` (mean over frames)."""
        return self.pool(self.frames(x)).squeeze(-1)
