"""MixFXcloner Ψ: a FiLM-conditioned temporal convolutional network (Koo et al. 2023, §2.3).

Ψ converts the mixing style of one stem ``x`` towards the reference whose FXencoder embedding is
``cond``. The layout follows the official ``TCNModel`` (modified from Steinmetz's micro-TCN) so that
``MixFXcloner_ps.pt`` loads with ``strict=True``:

* ``n_blocks`` blocks; block 0 maps ``in_channels → channels``, the others ``channels → channels``;
  block ``n`` has dilation ``dilation_growth ** (n % stack_size)`` (1 … 8192 for the paper);
* block: ``y = LeakyReLU_0.01(BN(conv1(x)))`` (conv without bias, zero "same" padding so the length
  is kept), ``y = γ · y + β`` (FiLM, ``[γ, β] = film_fc(cond)``: first ``channels`` outputs are γ,
  plain γ not ``1 + γ``), ``y = y + res(x)`` with ``res`` a bias-free 1×1 conv with
  ``groups = in_channels`` (depthwise scaling for 128→128; each input channel feeds
  ``channels / in_channels`` outputs in block 0);
* output: 1×1 conv ``channels → out_channels`` with bias, clamped to [−1, 1].

``ClonerConfig(input_skip=True)`` (not in the official model; used by the CPU presets) adds the input
to the output, ``y = clamp(x + output(h), −1, 1)``, with the output conv initialised to zero, so an
untrained Ψ is the identity and training only has to learn the change of style. Short CPU runs
otherwise start from (and stay near) an arbitrary level and spectrum: the ``small`` run's Ψ trained
without it was worse than its own input on every Table 2 column (RMS error 6.1 dB vs 1.7 dB).

The receptive field of the paper configuration is 229,363 samples (5.2 s at 44.1 kHz).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mixfx.configs import config_from_dict
from mixfx.errors import MixfxError
from mixfx.models.dilated_conv import dilated_conv1d


@dataclasses.dataclass(frozen=True)
class ClonerConfig:
    """Sizes of the MixFXcloner TCN.

    Attributes:
        n_blocks: number of TCN blocks.
        kernel_size: kernel of every dilated conv.
        dilation_growth: block ``n`` uses dilation ``dilation_growth ** (n % stack_size)``.
        stack_size: period of the dilation pattern.
        channels: width of every block.
        cond_dim: size of the conditioning embedding (the FXencoder's ``dim``).
        in_channels: input audio channels.
        out_channels: output audio channels.
        causal: pad only on the left (the paper's model is non-causal).
        input_skip: add the input to the output (``in_channels == out_channels``), output conv
            initialised to zero: Ψ starts as the identity. Off in the official model.
    """

    n_blocks: int = 14
    kernel_size: int = 15
    dilation_growth: int = 2
    stack_size: int = 15
    channels: int = 128
    cond_dim: int = 2048
    in_channels: int = 2
    out_channels: int = 2
    causal: bool = False
    input_skip: bool = False

    def __post_init__(self) -> None:
        sizes = {k: getattr(self, k) for k in ("n_blocks", "kernel_size", "dilation_growth", "stack_size",
                                               "channels", "cond_dim", "in_channels", "out_channels")}
        bad = {k: v for k, v in sizes.items() if int(v) != v or v < 1}
        if bad:
            raise MixfxError(f"ClonerConfig: sizes must be integers ≥ 1, got {bad}")
        if self.channels % self.in_channels:
            raise MixfxError(
                f"ClonerConfig: channels ({self.channels}) must be a multiple of in_channels "
                f"({self.in_channels}) for the grouped residual conv"
            )
        if self.input_skip and self.in_channels != self.out_channels:
            raise MixfxError(f"ClonerConfig: input_skip needs in_channels == out_channels, got "
                             f"{self.in_channels} and {self.out_channels}")

    @classmethod
    def paper(cls) -> "ClonerConfig":
        """The official MixFXcloner: 14 blocks, k=15, width 128, 2048-d condition (≈10.5 M params)."""
        return cls()

    @classmethod
    def tiny(cls, cond_dim: int = 64) -> "ClonerConfig":
        """A 4-block, width-16 TCN (receptive field 211 samples) for CPU tests and smoke runs.

        Args:
            cond_dim: embedding size of the encoder it is paired with (``FXEncoderConfig.tiny().dim``).
        """
        return cls(n_blocks=4, kernel_size=15, dilation_growth=2, stack_size=15, channels=16, cond_dim=cond_dim)

    @classmethod
    def small(cls, cond_dim: int = 128) -> "ClonerConfig":
        """A 6-block, width-16 TCN (receptive field 883 samples, 20 ms) for the ``small`` CPU recipe."""
        return cls(n_blocks=6, kernel_size=15, dilation_growth=2, stack_size=15, channels=16, cond_dim=cond_dim)

    def dilations(self) -> list[int]:
        """Dilation of each block."""
        return [self.dilation_growth ** (n % self.stack_size) for n in range(self.n_blocks)]

    def receptive_field(self) -> int:
        """Receptive field in samples: ``1 + Σ_n (kernel_size − 1) · dilation_n``."""
        return 1 + sum((self.kernel_size - 1) * d for d in self.dilations())

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ClonerConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`MixfxError`."""
        return config_from_dict(cls, d)


class FiLM(nn.Module):
    """Feature-wise linear modulation ``γ · y + β`` with ``[γ, β] = film_fc(cond)``.

    Shapes: ``y`` ``(B, C, T)``, ``cond`` ``(B, cond_dim)`` or ``(1, cond_dim)`` (broadcast).
    """

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.film_fc = nn.Linear(cond_dim, 2 * channels)

    def forward(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = torch.split(self.film_fc(cond).unsqueeze(-1), self.channels, dim=1)
        return gamma * y + beta


class TCNBlock(nn.Module):
    """Dilated conv → BN → LeakyReLU → FiLM, plus a depthwise 1×1 residual; length preserved."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int,
                 cond_dim: int, causal: bool = False) -> None:
        super().__init__()
        total = (kernel_size - 1) * dilation
        self.pad = (total, 0) if causal else (total // 2, total - total // 2)
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)
        self.film = FiLM(cond_dim, out_channels)
        self.res = nn.Conv1d(in_channels, out_channels, kernel_size=1, groups=in_channels, bias=False)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        y = dilated_conv1d(F.pad(x, self.pad), self.conv1.weight, self.conv1.dilation[0])
        y = F.leaky_relu(self.bn(y), negative_slope=0.01)
        return self.film(y, cond) + self.res(x)


class MixFXCloner(nn.Module):
    """MixFXcloner Ψ: ``(x (B, 2, T), cond (B or 1, cond_dim)) → y (B, 2, T)`` in [−1, 1].

    Args:
        config: sizes; default :meth:`ClonerConfig.paper`.

    ``cond`` may also be a sequence of ``n_blocks`` tensors, one condition per block.
    BatchNorm makes train/eval mode matter: call ``.eval()`` for inference.

    Example:
        >>> psi = MixFXCloner(ClonerConfig.tiny(cond_dim=8)).eval()
        >>> psi(torch.zeros(2, 2, 500), torch.zeros(1, 8)).shape
        torch.Size([2, 2, 500])
    """

    checkpoint_kind = "mixfxcloner"

    def __init__(self, config: ClonerConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else ClonerConfig.paper()
        c = self.config
        self.blocks = nn.ModuleList(
            TCNBlock(c.in_channels if n == 0 else c.channels, c.channels, c.kernel_size, d, c.cond_dim, c.causal)
            for n, d in enumerate(c.dilations())
        )
        self.output = nn.Conv1d(c.channels, c.out_channels, kernel_size=1, bias=True)
        if c.input_skip:  # Ψ starts as the identity
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def receptive_field(self) -> int:
        """Receptive field in samples (229,363 for the paper configuration)."""
        return self.config.receptive_field()

    def _conds(self, x: torch.Tensor, cond: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
        c = self.config
        if x.ndim != 3 or x.shape[1] != c.in_channels or x.shape[-1] < 1:
            raise MixfxError(f"MixFXCloner: expected audio (batch, {c.in_channels}, samples), got {tuple(x.shape)}")
        conds = list(cond) if isinstance(cond, (list, tuple)) else [cond] * c.n_blocks
        if len(conds) != c.n_blocks:
            raise MixfxError(f"MixFXCloner: expected 1 or {c.n_blocks} conditions, got {len(conds)}")
        for e in conds:
            if e.ndim != 2 or e.shape[1] != c.cond_dim or e.shape[0] not in (1, x.shape[0]):
                raise MixfxError(
                    f"MixFXCloner: condition must be (batch={x.shape[0]} or 1, {c.cond_dim}), got {tuple(e.shape)}"
                )
        return conds

    def forward(self, x: torch.Tensor, cond: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        """Apply the reference's mixing style.

        Args:
            x: input stem ``(B, in_channels, T)``.
            cond: reference embedding ``(B, cond_dim)`` or ``(1, cond_dim)``, or one per block.

        Returns:
            ``(B, out_channels, T)``, clamped to [−1, 1].
        """
        conds = self._conds(x, cond)
        h = x
        for block, e in zip(self.blocks, conds):
            h = block(h, e)
        y = self.output(h)
        return torch.clamp(y + x if self.config.input_skip else y, -1.0, 1.0)
