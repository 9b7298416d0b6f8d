r"""Multi-scale spectral loss on left, right, mid and side channels (paper eq. 1).

For a mono signal pair (estimate ``y``, target ``gt``) and FFT sizes ``n_i`` (hop ``n_i / 4``,
periodic Hann window of ``n_i`` samples, centred frames with reflection padding) with magnitude
spectrograms ``S_i`` (target) and ``Ŝ_i`` (estimate):

.. math::

    \mathcal{L}_i = (1 - \alpha)\, \overline{|S_i - \hat S_i|}
                  + \alpha\, \overline{(\log_{10}(S_i + \epsilon) - \log_{10}(\hat S_i + \epsilon))^2},
    \qquad \mathcal{L}_{MSS} = \sum_i \mathcal{L}_i,

and (eq. 1, with per-channel weights)

.. math::

    \mathcal{L}_\Psi = w_L \mathcal{L}_{MSS}(L) + w_R \mathcal{L}_{MSS}(R)
                     + w_M \mathcal{L}_{MSS}(L + R) + w_S \mathcal{L}_{MSS}(L - R).

Choices (paper vs official code, see ``official_code_notes.md`` §9):

* The paper writes norms ``‖·‖_1`` and ``‖·‖_2^2``; the official code takes **means** over
  (frequency, frame) bins (``L1Loss`` / ``MSELoss``), which makes the value independent of signal
  length and FFT size. We use means (over bins, then over the batch).
* ``log`` is ``log10`` with ``ε = 1e-7`` added to the magnitude, and the magnitude itself is
  ``sqrt(re² + im² + 1e-7)``, as in the official front end. α = 0.1.
* Mid is ``L + R`` and side ``L − R`` (not halved), as in the paper and code.
* Weights: :meth:`SpectralLossConfig.paper` uses eq. 1 literally (all four weights 1).
  The official module averages L and R (its stereo mode) and weights mid/side 0.5/0.5; training with
  both modes equals weights 0.5 each, i.e. exactly half of eq. 1: :meth:`SpectralLossConfig.official`.
  The ``terms`` dict reports ``left_right = (L + R)/2`` and ``mid_side = (M + S)/2`` — the official
  values behind Table 2's "L_MSS left&right / mid&side" columns — whatever the weights.
* The official front end drops the DC bin and, when ``samples % (n_fft/4) == 0``, the last frame;
  ``official()`` reproduces both quirks, ``paper()`` keeps every bin and frame.
* Signals shorter than ``n_fft/2 + 1`` samples cannot be reflection-padded; they are zero-padded
  instead (the official code fails on them).

References:
    Engel et al., "DDSP: Differentiable digital signal processing", ICLR 2020 (multi-scale loss).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from mixfx.configs import config_from_dict
from mixfx.errors import MixfxError

CHANNELS = ("left", "right", "mid", "side")


@dataclasses.dataclass(frozen=True)
class SpectralLossConfig:
    """Settings of :func:`spectral_loss`.

    Attributes:
        fft_sizes: FFT (= window) sizes in samples.
        hop_fraction: hop as a fraction of each FFT size.
        alpha: weight of the log-magnitude term (``1 − alpha`` for the linear one).
        eps: added to magnitudes before ``log10``.
        mag_eps: ``|X| = sqrt(re² + im² + mag_eps)`` (keeps the gradient finite at 0).
        w_left, w_right, w_mid, w_side: channel weights (0 skips the channel).
        drop_dc: drop the DC bin (official quirk).
        drop_last_frame: drop the last frame when ``samples % hop == 0`` (official quirk).
    """

    fft_sizes: tuple[int, ...] = (4096, 2048, 1024, 512)
    hop_fraction: float = 0.25
    alpha: float = 0.1
    eps: float = 1e-7
    mag_eps: float = 1e-7
    w_left: float = 1.0
    w_right: float = 1.0
    w_mid: float = 1.0
    w_side: float = 1.0
    drop_dc: bool = False
    drop_last_frame: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "fft_sizes", tuple(int(n) for n in self.fft_sizes))
        if not self.fft_sizes or min(self.fft_sizes) < 2:
            raise MixfxError(f"SpectralLossConfig: fft_sizes must be ≥ 2, got {self.fft_sizes}")
        if not 0 < self.hop_fraction <= 1 or min(int(n * self.hop_fraction) for n in self.fft_sizes) < 1:
            raise MixfxError(f"SpectralLossConfig: hop_fraction must be in (0, 1] with hops ≥ 1, got {self.hop_fraction}")
        if not 0 <= self.alpha <= 1:
            raise MixfxError(f"SpectralLossConfig: alpha must be in [0, 1], got {self.alpha}")
        if self.eps <= 0 or self.mag_eps < 0:
            raise MixfxError(f"SpectralLossConfig: eps must be > 0 and mag_eps ≥ 0, got {self.eps}, {self.mag_eps}")
        if min(self.weights().values()) < 0 or max(self.weights().values()) <= 0:
            raise MixfxError(f"SpectralLossConfig: channel weights must be ≥ 0, one > 0, got {self.weights()}")

    @classmethod
    def paper(cls) -> "SpectralLossConfig":
        """Eq. 1 as printed: L + R + M + S, every bin and frame kept."""
        return cls()

    @classmethod
    def official(cls) -> "SpectralLossConfig":
        """The official code (stereo mode + mid/side mode): weights 0.5 each, DC bin and last frame dropped."""
        return cls(w_left=0.5, w_right=0.5, w_mid=0.5, w_side=0.5, drop_dc=True, drop_last_frame=True)

    def weights(self) -> dict[str, float]:
        """Channel weights by name."""
        return {"left": self.w_left, "right": self.w_right, "mid": self.w_mid, "side": self.w_side}

    def hops(self) -> tuple[int, ...]:
        """Hop of each scale in samples."""
        return tuple(int(n * self.hop_fraction) for n in self.fft_sizes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        d = dataclasses.asdict(self)
        d["fft_sizes"] = list(self.fft_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SpectralLossConfig":
        """Inverse of :meth:`to_dict`."""
        return config_from_dict(cls, d)


def magnitude_spectrogram(x: torch.Tensor, n_fft: int, hop: int, *, mag_eps: float = 1e-7,
                          drop_dc: bool = False, drop_last_frame: bool = False) -> torch.Tensor:
    """``sqrt(|STFT|² + mag_eps)`` with a periodic Hann window, centred frames.

    Args:
        x: signals ``(batch, samples)``.
        n_fft: FFT and window size.
        hop: hop in samples.

    Returns:
        ``(batch, n_fft // 2 + 1 [- 1 if drop_dc], frames)`` with ``frames = 1 + samples // hop``
        (minus one if ``drop_last_frame`` and ``samples % hop == 0``).
    """
    window = torch.hann_window(n_fft, periodic=True, dtype=x.dtype, device=x.device)
    n = x.shape[-1]
    pad_mode = "reflect" if n > n_fft // 2 else "constant"
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=window, center=True, pad_mode=pad_mode,
                      return_complex=True)
    mag = torch.sqrt(spec.real.square() + spec.imag.square() + mag_eps)
    if drop_last_frame and n % hop == 0 and mag.shape[-1] > 1:
        mag = mag[..., :-1]
    if drop_dc:
        mag = mag[..., 1:, :]
    return mag


def multi_scale_spectral_loss(estimate: torch.Tensor, target: torch.Tensor,
                              config: SpectralLossConfig | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``L_MSS`` of signals ``(..., samples)``, per signal, split into its linear and log parts.

    All signals go through one STFT per scale.

    Args:
        estimate: ``(..., samples)``.
        target: same shape.
        config: settings; default :meth:`SpectralLossConfig.paper`.

    Returns:
        ``(lin, log)``, each of the leading shape ``(...)``: ``Σ_i mean|S_i − Ŝ_i|`` and
        ``Σ_i mean(log10(S_i + ε) − log10(Ŝ_i + ε))²`` (means over bins and frames, unweighted);
        ``L_MSS = (1 − α)·lin + α·log``.
    """
    cfg = config or SpectralLossConfig.paper()
    both = torch.stack([estimate, target])
    lin = estimate.new_zeros(estimate.shape[:-1])
    log = estimate.new_zeros(estimate.shape[:-1])
    for n_fft, hop in zip(cfg.fft_sizes, cfg.hops()):
        est, tgt = _magnitudes(both, n_fft, hop, cfg).unbind(0)
        lin_i, log_i = _scale_terms(est, tgt, _log_magnitude(tgt, cfg), cfg)
        lin = lin + lin_i
        if log_i is not None:
            log = log + log_i
    return lin, log


def _magnitudes(x: torch.Tensor, n_fft: int, hop: int, cfg: SpectralLossConfig) -> torch.Tensor:
    """:func:`magnitude_spectrogram` of signals ``(..., samples)`` with ``cfg``'s settings → ``(..., bins, frames)``."""
    mag = magnitude_spectrogram(x.reshape(-1, x.shape[-1]), n_fft, hop, mag_eps=cfg.mag_eps, drop_dc=cfg.drop_dc,
                                drop_last_frame=cfg.drop_last_frame)
    return mag.reshape(*x.shape[:-1], *mag.shape[-2:])


def _log_magnitude(mag: torch.Tensor, cfg: SpectralLossConfig) -> torch.Tensor | None:
    """``log10(S + ε)`` for the log term, or None when ``alpha`` is 0 (no log term)."""
    return torch.log10(mag + cfg.eps) if cfg.alpha > 0 else None


def _scale_terms(est: torch.Tensor, tgt: torch.Tensor, tgt_log: torch.Tensor | None,
                 cfg: SpectralLossConfig) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One scale's ``mean|S − Ŝ|`` and ``mean(log10(S + ε) − log10(Ŝ + ε))²`` (None without a log term)."""
    lin = (est - tgt).abs().mean(dim=(-2, -1))
    if tgt_log is None:
        return lin, None
    return lin, (torch.log10(est + cfg.eps) - tgt_log).square().mean(dim=(-2, -1))


_CHANNEL_SIGNAL = {
    "left": lambda x: x[:, 0],
    "right": lambda x: x[:, 1],
    "mid": lambda x: x[:, 0] + x[:, 1],
    "side": lambda x: x[:, 0] - x[:, 1],
}


def _weighted_channels(cfg: SpectralLossConfig) -> list[str]:
    """The channels of eq. 1 with a non-zero weight (zero-weight channels are skipped)."""
    weights = cfg.weights()
    return [name for name in CHANNELS if weights[name] != 0]


def _channel_signals(x: torch.Tensor, names: list[str]) -> torch.Tensor:
    """Stereo ``(batch, 2, samples)`` → ``(batch, len(names), samples)`` (L, R, M = L+R, S = L−R)."""
    return torch.stack([_CHANNEL_SIGNAL[n](x) for n in names], dim=1)


class SpectralTarget:
    """A target's magnitude and log-magnitude spectrograms at every scale of ``config``, computed once.

    Pass it as ``target`` to :func:`spectral_loss` to score several estimates against the same target
    (Table 2 scores every row against one gt) with half the STFTs. The values equal
    ``spectral_loss(estimate, target_tensor)`` up to float rounding (the target's STFTs run as their own
    batch instead of stacked with the estimate's).

    Args:
        target: ``(batch, 2, samples)``.
        config: settings; default :meth:`SpectralLossConfig.paper`.
    """

    def __init__(self, target: torch.Tensor, config: SpectralLossConfig | None = None) -> None:
        if target.ndim != 3 or target.shape[1] != 2 or target.shape[-1] < 1:
            raise MixfxError(f"SpectralTarget: expected a target of shape (batch, 2, samples), got {tuple(target.shape)}")
        self.config = config or SpectralLossConfig.paper()
        self.shape = target.shape
        self.names = _weighted_channels(self.config)
        cfg = self.config
        signals = _channel_signals(target.detach(), self.names)
        self.mags = [_magnitudes(signals, n_fft, hop, cfg) for n_fft, hop in zip(cfg.fft_sizes, cfg.hops())]
        self.logs = [_log_magnitude(mag, cfg) for mag in self.mags]

    def loss_parts(self, estimate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lin, log)`` per (example, channel) of ``estimate`` ``(batch, 2, samples)`` against this target."""
        cfg = self.config
        signals = _channel_signals(estimate, self.names)
        lin = signals.new_zeros(signals.shape[:2])
        log = signals.new_zeros(signals.shape[:2])
        for (n_fft, hop), tgt, tgt_log in zip(zip(cfg.fft_sizes, cfg.hops()), self.mags, self.logs):
            lin_i, log_i = _scale_terms(_magnitudes(signals, n_fft, hop, cfg), tgt, tgt_log, cfg)
            lin = lin + lin_i
            if log_i is not None:
                log = log + log_i
        return lin, log


def spectral_loss(estimate: torch.Tensor, target: torch.Tensor | SpectralTarget, *,
                  config: SpectralLossConfig | None = None, reduction: str = "mean", output: str = "loss"):
    """Paper eq. 1: multi-scale spectral loss on L, R, M = L+R and S = L−R (lower is better; 0 best).

    Args:
        estimate: model output ``y`` ``(batch, 2, samples)``.
        target: ground truth ``gt`` ``(batch, 2, samples)``, or its precomputed :class:`SpectralTarget`
            (then ``config`` is the target's).
        config: settings; default :meth:`SpectralLossConfig.paper`.
        reduction: ``"mean"`` (scalar, mean over the batch) or ``"none"`` (``(batch,)``).
        output: ``"loss"``, or ``"full"`` for ``(loss, terms)`` with ``terms`` holding, for each
            channel with a non-zero weight, its ``L_MSS`` (``"left"`` …) and its linear / log parts
            (``"left_lin"``, ``"left_log"`` …), plus ``"left_right"`` = (L+R)/2 and ``"mid_side"`` =
            (M+S)/2 when both members are computed; all reduced like the loss and detached.

    Returns:
        The weighted sum ``Σ_c w_c · L_MSS(c)``.

    Raises:
        MixfxError: shapes differ, not ``(batch, 2, samples ≥ 1)``, unknown ``reduction``/``output``,
            a ``config`` other than the :class:`SpectralTarget`'s.
    """
    if estimate.shape != target.shape or estimate.ndim != 3 or estimate.shape[1] != 2 or estimate.shape[-1] < 1:
        raise MixfxError(
            f"spectral_loss: expected estimate and target of equal shape (batch, 2, samples), got "
            f"{tuple(estimate.shape)} and {tuple(target.shape)}"
        )
    if reduction not in ("mean", "none"):
        raise MixfxError(f"spectral_loss: reduction must be 'mean' or 'none', got {reduction!r}")
    if output not in ("loss", "full"):
        raise MixfxError(f"spectral_loss: output must be 'loss' or 'full', got {output!r}")
    if isinstance(target, SpectralTarget):
        if config is not None and config != target.config:
            raise MixfxError("spectral_loss: config differs from the config the SpectralTarget was computed with")
        cfg = target.config
        names = target.names
        lin, log = target.loss_parts(estimate)
    else:
        cfg = config or SpectralLossConfig.paper()
        names = _weighted_channels(cfg)
        lin, log = multi_scale_spectral_loss(_channel_signals(estimate, names), _channel_signals(target, names), cfg)
    weights = cfg.weights()
    mss = (1 - cfg.alpha) * lin + cfg.alpha * log  # (batch, channels)
    total = sum(weights[n] * mss[:, k] for k, n in enumerate(names))
    per_example: dict[str, torch.Tensor] = {}
    for k, name in enumerate(names):
        per_example.update({name: mss[:, k], f"{name}_lin": lin[:, k], f"{name}_log": log[:, k]})
    reduce = (lambda t: t.mean()) if reduction == "mean" else (lambda t: t)
    if output == "loss":
        return reduce(total)
    for pair, (a, b) in {"left_right": ("left", "right"), "mid_side": ("mid", "side")}.items():
        if a in per_example and b in per_example:
            per_example[pair] = (per_example[a] + per_example[b]) / 2
    terms = {k: reduce(v.detach()) for k, v in per_example.items()}
    return reduce(total), terms


class SpectralLoss(nn.Module):
    """Module form of :func:`spectral_loss`: ``forward(estimate, target)``.

    Args:
        config: settings; default :meth:`SpectralLossConfig.paper`.
        reduction: ``"mean"`` or ``"none"``.
        output: ``"loss"`` or ``"full"``.
    """

    def __init__(self, config: SpectralLossConfig | None = None, reduction: str = "mean", output: str = "loss") -> None:
        super().__init__()
        self.config = config or SpectralLossConfig.paper()
        self.reduction = reduction
        self.output = output

    def forward(self, estimate: torch.Tensor, target: torch.Tensor):
        return spectral_loss(estimate, target, config=self.config, reduction=self.reduction, output=self.output)
