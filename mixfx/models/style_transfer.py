"""Mixing style transfer of stems with Φ and Ψ: tensor functions behind ``mixfx transfer``.

* :func:`normalize_inputs`: FX normalization of the input stems (official inference order), clamped.
* :func:`embed_reference`: per-stem reference embeddings, averaged over segments.
* :func:`interpolate_embeddings`: ``e = (1 − α)·e_A + α·e_B`` (α = 0: reference A, α = 1: B).
* :func:`convert_stems`: Ψ on every stem in windows, joined without seams (:func:`apply_with_context`),
  or cross-faded (:func:`mixfx.models.apply.apply_in_windows`) when asked or when the window is too
  short for the cloner's reach.
* :func:`mix_stems`: their sum.

Why context windows: a window's output is wrong near its edges, where the TCN sees zero padding
instead of the neighbouring audio. Giving every window ``context`` = the cloner's one-sided reach
of extra samples on both sides and keeping only its centre reproduces one pass over the whole song
exactly; a cross-fade only hides the edge errors (the official code joins non-overlapping
zero-padded chunks, which clicks at every join).
"""

from __future__ import annotations

import logging
import math
import zlib
from typing import Callable, Mapping

import numpy as np
import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.models.apply import apply_in_windows, embed_in_segments

log = logging.getLogger(__name__)

INFERENCE_EFFECTS = ("loudness", "eq", "compression", "imager", "panning", "loudness")
"""The official inference normalization order; its ``imager`` step is our ``imager`` + ``panning``."""


def normalize_inputs(stems: Mapping[str, torch.Tensor], features, *, song: str = "", seed: int = 0,
                     effects=INFERENCE_EFFECTS) -> dict[str, torch.Tensor]:
    """FX-normalize input stems (:func:`mixfx.fx.normalize.normalize_stem`), then clamp to [−1, 1].

    Args:
        stems: ``{stem: (2, T)}`` at 44.1 kHz.
        features: :class:`mixfx.fx.normalize_io.FXNormFeatures`.
        song, seed: seed the Haas step per song and stem (independent of processing order).
        effects: normalization steps in order.
    """
    from mixfx.fx.normalize import normalize_stem

    out = {}
    for stem, x in stems.items():
        rng = np.random.default_rng([int(seed), zlib.crc32(song.encode("utf-8")), zlib.crc32(stem.encode("utf-8"))])
        out[stem] = normalize_stem(x, stem, features, sample_rate=SAMPLE_RATE, rng=rng, effects=effects).clamp(-1, 1)
    return out


def embed_reference(stems: Mapping[str, torch.Tensor], encoder: torch.nn.Module, *, segment: int = 2**19,
                    batch_size: int = 1, device=None) -> dict[str, torch.Tensor]:
    """Per-stem reference embeddings ``{stem: (dim,)}``: segment-averaged Φ of the clamped stems."""
    out = {}
    for stem, x in stems.items():
        if not torch.any(x):
            log.warning("reference stem %s is silent; its embedding describes silence", stem)
        out[stem] = embed_in_segments(encoder, x.clamp(-1, 1), segment, batch_size=batch_size, device=device).cpu()
    return out


def interpolate_embeddings(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor],
                           alpha: float) -> dict[str, torch.Tensor]:
    """``(1 − α)·a + α·b`` per stem: α = 0 gives ``a``, α = 1 gives ``b``.

    Raises:
        MixfxError: α outside [0, 1] or different stems.
    """
    if not 0.0 <= alpha <= 1.0:
        raise MixfxError(f"alpha must be in [0, 1] (0 = reference A, 1 = reference B), got {alpha}")
    if set(a) != set(b):
        raise MixfxError(f"interpolation: references have different stems {sorted(a)} and {sorted(b)}")
    return {s: (1.0 - alpha) * a[s] + alpha * b[s] for s in a}


def cloner_context(cloner: torch.nn.Module) -> int:
    """Samples of context a MixFXcloner output sample needs on either side (max of its left/right reach)."""
    left = sum(block.pad[0] for block in cloner.blocks)
    right = sum(block.pad[1] for block in cloner.blocks)
    return max(left, right)


def apply_with_context(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, *, window: int,
                       context: int, batch_size: int = 1, device=None,
                       progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Run ``fn`` on ``window``-sample windows and keep each one's centre (overlap-save).

    Window ``k`` covers its core ``[k·c, (k+1)·c)``, ``c = window − 2·context``, plus ``context``
    samples on each side (shifted inwards at the ends of the signal, so every window has the same
    length and none is padded). For any ``fn`` whose output at a sample depends only on inputs at
    most ``context`` samples away (a TCN with that reach), the result equals ``fn`` on the whole
    signal at once: the joins are seamless by construction.

    Args:
        fn: ``(chunks (n, C, w), index (n,)) → (n, C_out, w)``; ``index`` is each row's item in ``x``.
        x: ``(B, C, T)``.
        window: window length ``w`` (> 2·context unless ``T ≤ w``).
        context: reach of ``fn`` in samples.
        batch_size: windows per call.
        device: where ``fn`` runs; the result is assembled on ``x.device``.
        progress: callback ``(done, total)`` in windows.

    Returns:
        ``(B, C_out, T)``.
    """
    b, _, length = x.shape
    device = torch.device(device) if device is not None else x.device
    if length <= window:
        jobs = [(i, 0, 0, length) for i in range(b)]
        width = length
    else:
        core = window - 2 * context
        if core < 1:
            raise MixfxError(f"apply_with_context: window {window} leaves no core for context {context} on each side")
        width = window
        jobs = [(i, min(max(s - context, 0), length - window), s, min(s + core, length))
                for s in range(0, length, core) for i in range(b)]
    out: torch.Tensor | None = None
    for start in range(0, len(jobs), batch_size):
        group = jobs[start:start + batch_size]
        chunks = torch.stack([x[i, :, a:a + width] for i, a, _, _ in group]).to(device)
        index = torch.tensor([i for i, _, _, _ in group], dtype=torch.long, device=device)
        y = fn(chunks, index).to(x.device)
        if out is None:
            out = torch.zeros(b, y.shape[1], length, dtype=y.dtype, device=x.device)
        for row, (i, a, s, e) in enumerate(group):
            out[i, :, s:e] = y[row, :, s - a:e - a]
        if progress is not None:
            progress(start + len(group), len(jobs))
    assert out is not None
    return out


def convert_stems(stems: Mapping[str, torch.Tensor], embeddings: Mapping[str, torch.Tensor], cloner: torch.nn.Module,
                  *, segment: int = 2**19, overlap: float | None = None, batch_size: int = 1,
                  silence_db: float | None = -60.0, device=None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, torch.Tensor]:
    """Convert every stem with Ψ conditioned on its reference embedding.

    Args:
        stems: ``{stem: (2, T)}`` (already normalized when that is wanted), all the same length.
        embeddings: ``{stem: (dim,)}`` for every stem of ``stems``.
        cloner: a :class:`~mixfx.models.cloner.MixFXCloner` in eval mode.
        segment: window length in samples.
        overlap: ``None``: context windows (exact) when the kept centre ``segment − 2·reach`` is
            at least a quarter of ``segment`` (at most 4× the work of one pass), else cross-faded
            windows with overlap 0.5; a fraction in [0, 1): cross-faded windows with that overlap.
        batch_size: windows per Ψ call.
        silence_db: stems peaking at or below this level (dBFS) are output as silence (not run
            through Ψ); ``None`` converts every stem.
        device: where Ψ runs (default: where its weights are).
        progress: callback ``(done, total)`` in windows.

    Returns:
        ``{stem: (2, T)}`` float32 on the CPU, in [−1, 1].
    """
    names = list(stems)
    missing = [s for s in names if s not in embeddings]
    if missing:
        raise MixfxError(f"convert_stems: no reference embedding for stem(s) {', '.join(missing)}")
    x = torch.stack([stems[s].to(torch.float32).cpu() for s in names])
    peak = x.abs().amax(dim=(1, 2))
    active = [k for k in range(len(names))
              if silence_db is None or 20 * math.log10(max(float(peak[k]), 1e-12)) > silence_db]
    for k in set(range(len(names))) - set(active):
        log.info("stem %s is silent (peak ≤ %s dBFS): output is silence", names[k], silence_db)
    out = torch.zeros_like(x)
    if active:
        device = torch.device(device) if device is not None else next(cloner.parameters()).device
        conds = torch.stack([embeddings[names[k]].reshape(-1) for k in active]).to(device=device, dtype=torch.float32)

        def fn(chunks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return cloner(chunks, conds[index])

        context = cloner_context(cloner)
        with torch.no_grad():
            if overlap is None and (x.shape[-1] <= segment or 4 * (segment - 2 * context) >= segment):
                y = apply_with_context(fn, x[active], window=segment, context=context,
                                       batch_size=batch_size, device=device, progress=progress)
            else:
                if overlap is None:
                    overlap = 0.5
                    log.warning("segment %d is too short for the cloner's reach (%d samples each side): windows are "
                                "cross-faded with overlap 0.5 and differ slightly from one pass", segment, context)
                y = apply_in_windows(fn, x[active], window=segment, overlap=overlap, batch_size=batch_size,
                                     device=device, with_index=True, progress=progress or False)
        out[active] = y.float().cpu()
    return {s: out[k] for k, s in enumerate(names)}


def mix_stems(stems: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The mixture ``(2, T)``: sum of the stems (not limited; see ``TransferConfig.peak_db``)."""
    return torch.stack(list(stems.values())).sum(0)
