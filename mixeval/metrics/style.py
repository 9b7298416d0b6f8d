r"""Per-example measures of mixing style transfer (Table 2 of Koo et al. 2023 and beyond).

Every function takes batches of stereo audio ``(B, 2, T)`` at ``sample_rate`` and returns one value
per example ``(B,)`` (float64 numpy), lower is better, 0 for identical inputs.

The paper's columns:

* :func:`lmss_terms` — ``L_MSS`` of eq. 1 on the **official implementation's scale**: the
  ``left_right`` term is the mean of the left and right channels' multi-scale spectral losses and
  ``mid_side`` the mean of mid (L+R) and side (L−R), each with FFT 4096/2048/1024/512, hop ¼,
  α = 0.1, DC bin and last frame dropped (:meth:`mixfx.losses.spectral.SpectralLossConfig.official`).
* :func:`embedding_distance` — :math:`\lambda\cdot\Delta\Phi(a, b) = \lambda \cdot \frac{1}{D}
  \sum_{d=1}^{D} |\Phi(a)_d - \Phi(b)_d|`: the L1 distance between the two embeddings divided by
  their dimension ``D`` (the mean absolute difference, as ``torch.nn.L1Loss`` computes it), times
  λ = 10³. The paper does not state the normalisation; the mean keeps the value independent of the
  embedding size.

Beyond the paper, so the table says *what* moved:

* :func:`mrstft` — auraloss's ``MultiResolutionSTFTLoss`` with its defaults (FFT 1024/2048/512,
  spectral convergence + log magnitude), the figure DeepAFx-ST, ST-ITO and StemFX report.
* :func:`audio_feature_errors` — absolute errors of the features of Diff-MST's audio-feature loss,
  each defined here from its textbook form: RMS level (dB), crest factor (dB), stereo width
  :math:`E_S / (E_M + E_S)`, stereo imbalance :math:`(E_L - E_R)/(E_L + E_R)`, and the Bark
  spectrum (mean absolute dB difference over 24 Bark bands of the mid channel's average spectrum).
* :func:`loudness_error` — :math:`|L(a) - L(b)|` in LU (ITU-R BS.1770 integrated loudness).
"""

from __future__ import annotations

import numpy as np
import torch

from mixfx import SAMPLE_RATE
from mixfx.fx.loudness import integrated_loudness
from mixfx.losses.spectral import SpectralLossConfig, SpectralTarget, spectral_loss

__all__ = [
    "AF_FEATURES", "LAMBDA", "audio_feature_errors", "audio_features", "bark_band_edges", "embedding_distance",
    "lmss_target", "lmss_terms", "loudness_error", "mrstft", "sdr_db",
]

LAMBDA = 1e3
"""The paper's scale λ of ΔΦ."""
AF_FEATURES = ("rms_db", "crest_db", "width", "imbalance", "bark_db")
_EPS = 1e-10


def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


def lmss_target(target: torch.Tensor) -> SpectralTarget:
    """``target``'s spectrograms on the scale of :func:`lmss_terms`, to score several ``y`` against it."""
    return SpectralTarget(target.float(), SpectralLossConfig.official())


def lmss_terms(y: torch.Tensor, target: torch.Tensor | SpectralTarget) -> dict[str, np.ndarray]:
    """``{"left_right": (B,), "mid_side": (B,)}``: the paper's two ``L_MSS`` columns (official scale).

    ``target`` may be the :func:`lmss_target` of the target (its STFTs computed once).
    """
    if not isinstance(target, SpectralTarget):
        target = target.float()
    _, terms = spectral_loss(y.float(), target, config=SpectralLossConfig.official(), reduction="none", output="full")
    return {"left_right": _f64(terms["left_right"]), "mid_side": _f64(terms["mid_side"])}


def embedding_distance(a: torch.Tensor, b: torch.Tensor, *, scale: float = LAMBDA) -> np.ndarray:
    """``λ · mean_d |a_d − b_d|`` per row of two ``(B, D)`` embedding batches."""
    return scale * _f64((a.double() - b.double()).abs().mean(dim=-1))


def mrstft(y: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """auraloss ``MultiResolutionSTFTLoss()`` (defaults) of each example on its own, ``(B,)``.

    Computed one example at a time: the spectral-convergence term is a ratio of norms over the
    whole batch, so a batched call would mix examples.
    """
    import auraloss

    loss = auraloss.freq.MultiResolutionSTFTLoss()
    with torch.no_grad():
        return np.array([float(loss(y[i:i + 1].float().cpu(), target[i:i + 1].float().cpu())) for i in range(len(y))])


def bark_band_edges(sample_rate: int = SAMPLE_RATE, bands: int = 24) -> np.ndarray:
    """Upper edges in Hz of ``bands`` Bark critical bands (Zwicker's table), clipped to Nyquist."""
    table = np.array([100, 200, 300, 400, 510, 630, 770, 920, 1080, 1270, 1480, 1720, 2000, 2320, 2700, 3150,
                      3700, 4400, 5300, 6400, 7700, 9500, 12000, 15500], dtype=np.float64)
    return np.minimum(table[:bands], sample_rate / 2)


def _bark_spectrum_db(x: torch.Tensor, sample_rate: int, n_fft: int = 4096) -> np.ndarray:
    """``(B, bands)`` dB power of the mid channel's average STFT power in each Bark band."""
    mid = x.double().mean(dim=1)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64, device=x.device)
    n = mid.shape[-1]
    spec = torch.stft(mid, n_fft=n_fft, hop_length=n_fft // 2, window=window, center=True,
                      pad_mode="reflect" if n > n_fft // 2 else "constant", return_complex=True)
    power = spec.abs().square().mean(dim=-1)  # (B, bins)
    freqs = torch.fft.rfftfreq(n_fft, 1 / sample_rate).to(power.device)
    edges = [0.0, *bark_band_edges(sample_rate).tolist()]
    bands = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (freqs >= lo) & (freqs < hi)
        if mask.any():
            bands.append(power[:, mask].mean(dim=-1))
    return 10 * np.log10(_f64(torch.stack(bands, dim=1)) + _EPS)


def audio_features(x: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
    """The five features of :data:`AF_FEATURES` per example (``bark_db`` is ``(B, bands)``)."""
    xd = x.double()
    left, right = xd[:, 0], xd[:, 1]
    rms = xd.square().mean(dim=(1, 2)).sqrt()
    peak = xd.abs().amax(dim=(1, 2))
    e_l, e_r = left.square().sum(-1), right.square().sum(-1)
    e_m, e_s = (left + right).square().sum(-1), (left - right).square().sum(-1)
    return {
        "rms_db": 20 * np.log10(_f64(rms) + _EPS),
        "crest_db": 20 * np.log10((_f64(peak) + _EPS) / (_f64(rms) + _EPS)),
        "width": _f64(e_s / (e_m + e_s).clamp_min(_EPS)),
        "imbalance": _f64((e_l - e_r) / (e_l + e_r).clamp_min(_EPS)),
        "bark_db": _bark_spectrum_db(x, sample_rate),
    }


def audio_feature_errors(y: torch.Tensor, target: torch.Tensor, sample_rate: int = SAMPLE_RATE,
                         features: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """``|f(y) − f(target)|`` for each feature of :data:`AF_FEATURES` (``bark_db``: mean over bands).

    ``features`` may hold the target's precomputed :func:`audio_features`.
    """
    fy = audio_features(y, sample_rate)
    ft = features if features is not None else audio_features(target, sample_rate)
    out = {k: np.abs(fy[k] - ft[k]) for k in AF_FEATURES if k != "bark_db"}
    out["bark_db"] = np.abs(fy["bark_db"] - ft["bark_db"]).mean(axis=-1)
    return out


def loudness_error(y: torch.Tensor, target: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``|L(y) − L(target)|`` in LU (BS.1770 integrated loudness; silent items count as −70 LUFS)."""
    ly = _f64(integrated_loudness(y.double().cpu(), sample_rate))
    lt = _f64(integrated_loudness(target.double().cpu(), sample_rate))
    floor = -70.0
    ly = np.where(np.isfinite(ly), ly, floor)
    lt = np.where(np.isfinite(lt), lt, floor)
    return np.abs(ly - lt)


def sdr_db(reference: torch.Tensor, estimate: torch.Tensor) -> np.ndarray:
    """BSS-Eval SDR in dB (fast_bss_eval, 512-tap distortion filter) per example, mean over channels, ``(B,)``."""
    import fast_bss_eval

    out = []
    for r, e in zip(reference.double().cpu().numpy(), estimate.double().cpu().numpy()):
        out.append(np.mean([float(fast_bss_eval.sdr(r[c:c + 1], e[c:c + 1], clamp_db=100)[0]) for c in range(r.shape[0])]))
    return np.array(out)
