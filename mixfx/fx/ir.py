"""Impulse responses for the convolution reverb: a user folder of IR files or a synthetic bank.

An :class:`IRBank` is a list of stereo IRs grouped by RT60, sampled as the official chain does:
uniform over groups, then uniform within the group. Two sources:

* :func:`load_ir_folder`: ``.wav`` files under a folder. The official layout
  ``<root>/<collection>/RT60_avg/<lo-hi ms>/<name>/impulse_response.wav`` groups by the RT60 bin in
  the path (bins whose lower bound is ≥ 3000 ms form one "long" group); any other layout is
  flat, grouped by the RT60 measured on each file (Schroeder T30).
* :func:`synthetic_ir_bank`: the built-in default, made by :func:`synthetic_ir`.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.fx.signal import next_fast_length

logger = logging.getLogger(__name__)

DEFAULT_RT60_GROUPS_S = ((0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0), (1.0, 1.5), (1.5, 2.0), (2.0, 3.0), (3.0, 4.0))
LONG_GROUP_MS = 3000


@dataclass
class IRBank:
    """Stereo impulse responses, zero-padded to one length, with their RT60 and group.

    Attributes:
        irs: ``(n, 2, samples)`` float32.
        rt60_s: ``(n,)`` RT60 of each IR in seconds.
        group: ``(n,)`` integer group id (0 … n_groups − 1), groups ordered by RT60.
        names: one label per IR.
        sample_rate: in Hz.
        lengths: ``(n,)`` length of each IR before padding (samples).
    """

    irs: torch.Tensor
    rt60_s: torch.Tensor
    group: torch.Tensor
    names: list[str]
    sample_rate: int
    lengths: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.lengths is None:
            nz = (self.irs.abs().amax(dim=1) > 0).float()
            self.lengths = (nz.shape[-1] - nz.flip(-1).argmax(dim=-1)).long()

    def __len__(self) -> int:
        return self.irs.shape[0]

    @property
    def n_groups(self) -> int:
        return int(self.group.max().item()) + 1

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Draw ``n`` IR indices: a uniform group, then a uniform IR within it (CPU generator)."""
        groups = torch.randint(self.n_groups, (n,), generator=generator)
        u = torch.rand(n, generator=generator)
        out = torch.empty(n, dtype=torch.long)
        for g in range(self.n_groups):
            members = torch.nonzero(self.group == g).flatten()
            sel = groups == g
            if sel.any():
                out[sel] = members[(u[sel] * len(members)).long().clamp_max(len(members) - 1)]
        return out


def synthetic_ir(
    rt60_s: float,
    *,
    sample_rate: int = SAMPLE_RATE,
    generator: torch.Generator,
    high_freq_damping: float = 0.5,
    early_reflections: int = 8,
    predelay_s: float = 0.01,
) -> torch.Tensor:
    """A stereo synthetic room impulse response with a given (broadband) RT60.

    Frequency-dependent exponentially decaying noise: the noise is split into octave bands scaled
    to equal energy (a pink-like spectrum); bands up to 2 kHz decay with ``rt60_s`` and band ``k``
    above with ``RT60_k = rt60_s · (1 − high_freq_damping · k / (bands − 1))``, so the broadband
    Schroeder RT60 lands within ~10 % of ``rt60_s`` (slightly below, from the damped highs). A
    direct impulse follows a short
    pre-delay, ``early_reflections`` sparse taps fill the first 80 ms, and left/right use
    independent noise (stereo decorrelation).

    Returns:
        ``(2, samples)`` float32, peak-normalised to 1, length ``1.2·rt60 + predelay``.
    """
    n = int(round((1.2 * rt60_s + predelay_s) * sample_rate))
    n_fft = next_fast_length(n)
    t = torch.arange(n, dtype=torch.float64) / sample_rate
    noise = torch.randn(2, n, generator=generator, dtype=torch.float64)
    spec = torch.fft.rfft(noise, n=n_fft)
    freqs = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64)
    edges = [0.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, sample_rate / 2 + 1]
    bands = len(edges) - 1
    tail = torch.zeros(2, n, dtype=torch.float64)
    for k in range(bands):
        mask = (freqs >= edges[k]) & (freqs < edges[k + 1])
        band = torch.fft.irfft(spec * mask, n=n_fft)[:, :n]
        band = band / band.square().mean().sqrt().clamp_min(1e-12)
        rt_k = rt60_s * (1.0 - high_freq_damping * k / (bands - 1)) if k > 2 else rt60_s
        tail += band * torch.exp(-3.0 * math.log(10.0) * t / rt_k)  # -60 dB at t = rt_k
    pre = int(predelay_s * sample_rate)
    tail = torch.roll(tail, pre, dims=-1)
    tail[:, :pre] = 0
    tail = tail / tail.abs().max() * 0.5
    ir = tail
    ir[:, pre] = 1.0  # direct sound
    taps = torch.randint(pre + 1, pre + int(0.08 * sample_rate), (2, early_reflections), generator=generator)
    amps = (0.2 + 0.5 * torch.rand(2, early_reflections, generator=generator, dtype=torch.float64)) * torch.where(
        torch.rand(2, early_reflections, generator=generator) < 0.5, -1.0, 1.0
    ).double()
    for c in range(2):
        ir[c, taps[c]] += amps[c]
    return (ir / ir.abs().max()).float()


def synthetic_ir_bank(
    *,
    sample_rate: int = SAMPLE_RATE,
    per_group: int = 3,
    groups_s: tuple[tuple[float, float], ...] = DEFAULT_RT60_GROUPS_S,
    seed: int = 0,
) -> IRBank:
    """The built-in IR bank: ``per_group`` synthetic IRs per RT60 group, fixed seed (deterministic)."""
    g = torch.Generator().manual_seed(seed)
    irs, rts, groups, names = [], [], [], []
    for gi, (lo, hi) in enumerate(groups_s):
        for j in range(per_group):
            rt = lo + (hi - lo) * (j + 0.5) / per_group
            irs.append(synthetic_ir(rt, sample_rate=sample_rate, generator=g))
            rts.append(rt)
            groups.append(gi)
            names.append(f"synthetic_rt{int(rt * 1000)}ms_{j}")
    return _stack(irs, rts, groups, names, sample_rate)


def load_ir_folder(folder: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE, max_seconds: float = 4.0) -> IRBank:
    """Load every IR file under ``folder`` (recursively), grouped by RT60 (see module doc).

    Raises:
        MixfxError: the folder does not exist or holds no readable audio file.
    """
    from mixfx.io.audio import AUDIO_SUFFIX_TEXT, AUDIO_SUFFIXES, load_audio

    root = Path(folder)
    if not root.is_dir():
        raise MixfxError(f"{root}: IR folder not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise MixfxError(f"{root}: no impulse-response audio files ({AUDIO_SUFFIX_TEXT}) found")
    irs, rts, bins, names = [], [], [], []
    for f in files:
        ir = load_audio(f, sample_rate=sample_rate, allow_silent=False)
        ir = ir[:, : int(max_seconds * sample_rate)]
        irs.append(ir / ir.abs().max())
        rts.append(measure_rt60(ir, sample_rate))
        m = re.search(r"RT60_avg[/\\](\d+)-(\d+)", str(f.relative_to(root)))
        bins.append(None if m is None else int(m.group(1)))
        names.append(str(f.relative_to(root)))
    if all(b is not None for b in bins):  # official layout: group by the RT60 bin in the path
        keys = sorted({min(b, LONG_GROUP_MS) for b in bins})
        groups = [keys.index(min(b, LONG_GROUP_MS)) for b in bins]
    else:  # flat: group by measured RT60 into the default bins
        edges = [lo for lo, _ in DEFAULT_RT60_GROUPS_S[1:]]
        raw = [sum(rt >= e for e in edges) for rt in rts]
        keys = sorted(set(raw))
        groups = [keys.index(r) for r in raw]
    logger.info("%s: %d impulse responses in %d RT60 groups", root, len(irs), len(set(groups)))
    return _stack(irs, rts, groups, names, sample_rate)


def measure_rt60(ir: torch.Tensor, sample_rate: int, *, lo_db: float = -5.0, hi_db: float = -35.0) -> float:
    """RT60 from the Schroeder backward-integrated energy decay (T30 by default, extrapolated to 60 dB).

    Args:
        ir: ``(channels, samples)`` or ``(samples,)``.

    Returns:
        RT60 in seconds (a line fitted to the decay curve between ``lo_db`` and ``hi_db``).
    """
    e = ir.double().reshape(-1, ir.shape[-1]).square().sum(0)
    edc = torch.flip(torch.cumsum(torch.flip(e, [0]), 0), [0])
    edc_db = 10 * torch.log10(edc / edc[0] + 1e-30)
    sel = (edc_db <= lo_db) & (edc_db >= hi_db)
    if sel.sum() < 2:
        return float("nan")
    t = torch.nonzero(sel).flatten().double() / sample_rate
    y = edc_db[sel]
    slope = ((t - t.mean()) * (y - y.mean())).sum() / ((t - t.mean()).square().sum())
    return float(-60.0 / slope)


def _stack(irs, rts, groups, names, sample_rate) -> IRBank:
    length = max(ir.shape[-1] for ir in irs)
    out = torch.zeros(len(irs), 2, length)
    for i, ir in enumerate(irs):
        out[i, :, : ir.shape[-1]] = ir
    lengths = torch.tensor([ir.shape[-1] for ir in irs])
    return IRBank(out, torch.tensor(rts, dtype=torch.float32), torch.tensor(groups), list(names), sample_rate, lengths)
