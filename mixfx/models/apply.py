"""Run models on whole songs: windowed overlap-add for Ψ, segment-averaged embeddings for Φ.

The official inference cuts the input into non-overlapping 2^19-sample chunks (each chunk edge sees
zero context, audible as clicks where chunks join) and zero-pads the last chunk of the reference
before averaging its embeddings (biasing the average towards silence). Here instead:

* :func:`apply_in_windows` runs ``fn`` on overlapping windows and cross-fades them: every window's
  output is multiplied by a triangular weight (largest in the middle, small but positive at the
  edges), the weighted outputs are summed and divided by the summed weights — the scheme of
  ``demucs.apply``. No window is zero-padded: the last one is moved back to end at the last sample.
* :func:`apply_with_context` runs ``fn`` on windows with ``context`` extra samples each side and keeps
  each window's centre (overlap-save): for a TCN whose reach is ``context`` the result equals one pass
  over the whole signal — seamless by construction (:func:`cloner_context` gives a cloner's reach).
* :func:`embed_in_segments` averages the embeddings of full-length segments only; when the length is
  not a multiple of ``segment`` the tail is covered by one extra segment ending at the last sample,
  weighted by the fraction of new samples it adds. With ``max_segments = K`` a reference longer
  than ``K`` such pieces is represented by ``K`` evenly spaced segments instead
  (:func:`reference_pieces`), so a long reference costs at most ``K`` encoder segments.
"""

from __future__ import annotations

import logging
from typing import Callable

import torch
from torch import nn

from mixfx.errors import MixfxError
from mixfx.progress import Progress, ProgressFn, progress_reporter

log = logging.getLogger(__name__)


def window_offsets(length: int, window: int, hop: int) -> list[int]:
    """Start offsets of windows of ``window`` samples every ``hop`` samples covering ``[0, length)``.

    The last window ends exactly at ``length`` (so none reads past the end); ``length ≤ window``
    gives ``[0]``.
    """
    if length <= window:
        return [0]
    offsets = list(range(0, length - window, hop))
    offsets.append(length - window)
    return offsets


def triangular_weight(window: int, *, power: float = 1.0, dtype: torch.dtype = torch.float64,
                      device=None) -> torch.Tensor:
    """``w[n] = min(n + 1, window − n) ** power``: positive, peaked in the middle, ``(window,)``."""
    n = torch.arange(window, dtype=dtype, device=device)
    return torch.minimum(n + 1, window - n) ** power


def _as_batch(x: torch.Tensor, name: str) -> tuple[torch.Tensor, bool]:
    if x.ndim == 2:
        return x.unsqueeze(0), True
    if x.ndim == 3:
        return x, False
    raise MixfxError(f"{name}: expected audio (channels, samples) or (batch, channels, samples), got {tuple(x.shape)}")


def apply_in_windows(
    fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    *,
    window: int,
    overlap: float = 0.25,
    batch_size: int = 1,
    device: torch.device | str | None = None,
    transition_power: float = 1.0,
    with_index: bool = False,
    progress: Progress = False,
) -> torch.Tensor:
    """Apply a length-preserving ``fn`` to long audio in cross-faded overlapping windows.

    Args:
        fn: ``chunks (n, C, w) → (n, C_out, w)`` treating rows independently (e.g.
            ``lambda c: cloner(c, cond)``). With ``with_index=True`` it is called as
            ``fn(chunks, index)`` where ``index`` ``(n,)`` (long, on ``device``) gives each row's item in
            the input batch (e.g. ``lambda c, i: cloner(c, conds[i])``).
        x: ``(C, T)`` or ``(B, C, T)``, any ``T ≥ 1``.
        window: window length ``w`` in samples; inputs with ``T ≤ w`` go through ``fn`` in one call
            at their own length.
        overlap: fraction of a window shared with the next one, in [0, 1) (hop ``= round(w·(1−overlap))``).
            For a TCN use an overlap of at least its receptive field so every output sample is
            dominated by windows that saw enough context.
        batch_size: windows per ``fn`` call.
        device: where ``fn`` runs (default ``x.device``); the result is assembled on ``x.device``.
        transition_power: the weights are ``triangle ** transition_power`` (as in Demucs); values
            above 1 make each window's edge samples (which saw the least context) count even less.
        with_index: pass the batch-item index to ``fn`` (see above).
        progress: ``True`` for a tqdm bar (stderr), or a :class:`~mixfx.progress.ProgressFn`
            ``(done, total, "windows")`` in windows.

    Returns:
        ``(C_out, T)`` or ``(B, C_out, T)`` like ``x``; dtype of ``fn``'s output.

    Raises:
        MixfxError: bad shapes / arguments, or ``fn`` changed the batch or length.

    Example:
        >>> y = apply_in_windows(lambda c: 0.5 * c, torch.ones(2, 1000), window=256)
        >>> bool(torch.allclose(y, torch.full((2, 1000), 0.5)))
        True
    """
    xb, squeeze = _as_batch(x, "apply_in_windows")
    if window < 1 or batch_size < 1:
        raise MixfxError(f"apply_in_windows: window and batch_size must be ≥ 1, got {window}, {batch_size}")
    if not 0 <= overlap < 1:
        raise MixfxError(f"apply_in_windows: overlap must be in [0, 1), got {overlap}")
    if not transition_power >= 1:
        raise MixfxError(f"apply_in_windows: transition_power must be ≥ 1, got {transition_power}")
    b, _, length = xb.shape
    if length < 1:
        raise MixfxError(f"apply_in_windows: empty audio {tuple(x.shape)}")
    device = torch.device(device) if device is not None else xb.device
    hop = max(1, round(window * (1 - overlap)))
    w = min(window, length)
    offsets = window_offsets(length, w, hop)
    jobs = [(i, off) for off in offsets for i in range(b)]
    report = progress_reporter(progress, unit="window")

    out: torch.Tensor | None = None
    # weights built in float64 on the CPU (exact for long windows / high powers), cast once later
    weight64 = triangular_weight(w, power=transition_power)
    weight64 = weight64 / weight64.max()
    total64 = torch.zeros(length, dtype=torch.float64)
    for off in offsets:
        total64[off:off + w] += weight64
    weight = total_weight = weight64
    try:
        for start in range(0, len(jobs), batch_size):
            group = jobs[start:start + batch_size]
            chunks = torch.stack([xb[i, :, off:off + w] for i, off in group]).to(device)
            if with_index:
                index = torch.tensor([i for i, _ in group], dtype=torch.long, device=device)
                y = fn(chunks, index)
            else:
                y = fn(chunks)
            if not isinstance(y, torch.Tensor) or y.ndim != 3 or y.shape[0] != len(group) or y.shape[-1] != w:
                got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise MixfxError(f"apply_in_windows: fn must return ({len(group)}, channels, {w}), got {got}")
            y = y.to(xb.device)
            if out is None:
                out = torch.zeros(b, y.shape[1], length, dtype=y.dtype, device=xb.device)
                weight = weight64.to(device=xb.device, dtype=y.dtype)
                total_weight = total64.to(device=xb.device, dtype=y.dtype)
            for row, (i, off) in enumerate(group):
                out[i, :, off:off + w] += y[row] * weight
            report(start + len(group), len(jobs), "windows")
    finally:
        report.close()
    assert out is not None  # at least one window always runs
    out = out / total_weight
    return out[0] if squeeze else out


def reference_pieces(length: int, segment: int, max_segments: int | None = None) -> list[tuple[int, int, float]]:
    """The ``(start, samples, weight)`` pieces :func:`embed_in_segments` averages.

    ``length ≤ segment``: one piece, the whole signal. Otherwise the covering tiling: pieces at
    ``0, segment, 2·segment, …`` while they fit (weight 1), plus, for a remainder ``r > 0``, one
    piece ending at ``length`` with weight ``r / segment``; ``n = ⌈length / segment⌉`` pieces. When
    ``max_segments = K < n``: ``K`` evenly spaced full segments of equal weight instead, starting
    at ``round(k · (length − segment) / (K − 1))`` for ``k = 0 … K−1`` (the first at 0, the last
    ending at ``length``); ``K = 1`` is the centre segment, starting at ``(length − segment) // 2``.

    Raises:
        MixfxError: ``max_segments`` is not an integer ≥ 1 (``None`` means no cap).
    """
    if max_segments is not None and (isinstance(max_segments, bool) or int(max_segments) != max_segments
                                     or max_segments < 1):
        raise MixfxError(f"reference segments must be an integer ≥ 1 (or None for all), got {max_segments!r}")
    if length <= segment:
        return [(0, length, 1.0)]
    full = length // segment
    pieces = [(k * segment, segment, 1.0) for k in range(full)]
    rest = length - full * segment
    if rest:
        pieces.append((length - segment, segment, rest / segment))
    if max_segments is None or max_segments >= len(pieces):
        return pieces
    k = int(max_segments)
    if k == 1:
        return [((length - segment) // 2, segment, 1.0)]
    return [(round(j * (length - segment) / (k - 1)), segment, 1.0) for j in range(k)]


def embed_in_segments(
    encoder: nn.Module,
    x: torch.Tensor,
    segment: int,
    *,
    max_segments: int | None = None,
    batch_size: int = 1,
    device: torch.device | str | None = None,
    progress: Progress = False,
) -> torch.Tensor:
    """Embedding of long audio: weighted mean of the embeddings of ``segment``-sample pieces.

    ``T ≤ segment`` is encoded in one pass. Otherwise the pieces start at ``0, segment, 2·segment, …``
    while they fit; a remainder ``r = T mod segment > 0`` is covered by one more piece ending at ``T``,
    weighted ``r / segment`` (the share of samples it adds), so every sample counts about equally and
    no zero padding biases the mean (the official code zero-pads the last chunk). With
    ``max_segments = K`` and more than ``K`` such pieces, ``K`` evenly spaced segments are averaged
    instead (:func:`reference_pieces`). Runs without gradients; put the encoder in ``eval()`` mode first.

    Args:
        encoder: ``(n, C, segment) → (n, dim)`` (an :class:`~mixfx.models.encoder.FXEncoder`).
        x: ``(C, T)`` or ``(B, C, T)``.
        segment: piece length in samples (official: 2^19 for references, 441,000 for features).
        max_segments: most encoder segments per row (``None``: the whole covering tiling).
        batch_size: pieces per encoder call.
        device: where the encoder runs (default ``x.device``); the result is on ``x.device``.
        progress: ``True`` for a tqdm bar, or a :class:`~mixfx.progress.ProgressFn`
            ``(done, total, "segments")`` in pieces.

    Returns:
        ``(dim,)`` for ``(C, T)`` input, ``(B, dim)`` for ``(B, C, T)``.

    Raises:
        MixfxError: bad shapes or arguments.
    """
    xb, squeeze = _as_batch(x, "embed_in_segments")
    if segment < 1 or batch_size < 1:
        raise MixfxError(f"embed_in_segments: segment and batch_size must be ≥ 1, got {segment}, {batch_size}")
    b, _, length = xb.shape
    device = torch.device(device) if device is not None else xb.device
    pieces = reference_pieces(length, segment, max_segments)
    jobs = [(i, off, n, wt) for off, n, wt in pieces for i in range(b)]
    report = progress_reporter(progress, unit="segment")
    acc: torch.Tensor | None = None
    total = sum(wt for _, _, wt in pieces)
    try:
        with torch.no_grad():
            for start in range(0, len(jobs), batch_size):
                group = jobs[start:start + batch_size]
                # pieces in one call share a length (all `segment`, or the single short piece)
                chunks = torch.stack([xb[i, :, off:off + n] for i, off, n, _ in group]).to(device)
                e = encoder(chunks).to(xb.device)
                if e.ndim != 2 or e.shape[0] != len(group):
                    raise MixfxError(f"embed_in_segments: encoder must return ({len(group)}, dim), got {tuple(e.shape)}")
                if acc is None:
                    acc = torch.zeros(b, e.shape[1], dtype=e.dtype, device=xb.device)
                for row, (i, _, _, wt) in enumerate(group):
                    acc[i] += wt * e[row]
                report(start + len(group), len(jobs), "segments")
    finally:
        report.close()
    assert acc is not None
    mean = acc / total
    return mean[0] if squeeze else mean


def cloner_context(cloner: torch.nn.Module) -> int:
    """Samples of context a MixFXcloner output sample needs on either side (max of its left/right reach)."""
    left = sum(block.pad[0] for block in cloner.blocks)
    right = sum(block.pad[1] for block in cloner.blocks)
    return max(left, right)


def apply_with_context(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor, *, window: int,
                       context: int, batch_size: int = 1, device=None,
                       progress: ProgressFn | None = None) -> torch.Tensor:
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
        progress: :class:`~mixfx.progress.ProgressFn`, called ``(done, total, "windows")`` in windows.

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
            progress(start + len(group), len(jobs), "windows")
    assert out is not None
    return out
