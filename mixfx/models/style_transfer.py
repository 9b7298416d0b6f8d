"""Mixing style transfer with Φ and Ψ: the one inference object behind ``mixfx transfer``, the
listening-test renderer and ``mixeval table2``.

:class:`StyleTransfer` holds an FXencoder Φ, a MixFXcloner Ψ and optional FX-normalization features
and runs ``y = Ψ(normalize(x), Φ(ref))`` on batches ``(B, 2, T)``:

* :meth:`StyleTransfer.normalize`: FX normalization of the input rows (official inference order),
  clamped to [−1, 1]; identity without features.
* :meth:`StyleTransfer.embed`: reference embeddings, averaged over segments
  (:func:`mixfx.models.apply.embed_in_segments`; references are only clamped, as in the official code).
  At most ``reference_segments`` (default :data:`REFERENCE_SEGMENTS` = 8) segments of
  ``reference_segment`` samples per reference: a reference up to 8 segments long (95 s at the official
  2^19) is covered whole; a longer one by 8 evenly spaced segments (:func:`mixfx.models.apply.reference_pieces`),
  so a 5-minute reference costs 95 s of encoder input, not 300 s.
* :meth:`StyleTransfer.convert`: Ψ on every row, streamed layer by layer in tiles within a memory
  budget (:func:`mixfx.models.tcn_inference.cloner_forward_tiled`: one full pass, nothing
  recomputed), or in cross-faded windows (:func:`mixfx.models.apply.apply_in_windows`) when an
  overlap is asked for. Rows peaking at or below ``silence_db`` give silence, and so do the output
  samples whose whole input reach lies at or below it (quiet spans longer than the receptive field,
  shrunk by the reach on each side): a TCN with biases does not map silence to silence, so this is
  a deliberate rule, not what Ψ computes there (:func:`mixfx.models.tcn_inference.silent_output_mask`).
  On the tiled pass those spans are not run through Ψ at all (:func:`mixfx.models.tcn_inference.loud_pieces`).
* calling the object does all three.

Device: :meth:`StyleTransfer.convert` moves its input rows to the network's device once, runs the
silence test, Ψ and the masking there, and moves the result back once (nothing per tile or per
layer); the embeddings it gets are moved there too (a few kB).

All windowing lives in :mod:`mixfx.models.apply`; the context windows
(:func:`mixfx.models.apply.apply_with_context`) are the earlier exact path, kept for comparison
(``benchmarks/bench_transfer.py``). Why exact passes: a window's output is wrong
near its edges, where the TCN sees zero padding instead of the neighbouring audio. Giving every
window ``context`` = the cloner's one-sided reach of extra samples on both sides and keeping only its
centre reproduces one pass over the whole song exactly; a cross-fade only hides the edge errors (the
official code joins non-overlapping zero-padded chunks, which clicks at every join).

Example:
    >>> st = StyleTransfer(encoder, cloner, features)                      # doctest: +SKIP
    >>> y = st(x, ref, stems=["vocals"] * len(x))                          # (B, 2, T) each
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Mapping, Sequence

import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.models.apply import apply_in_windows, apply_with_context, cloner_context, embed_in_segments, reference_pieces
from mixfx.models.tcn_inference import cloner_forward_tiled, loud_pieces, silent_output_mask, tile_for_memory
from mixfx.progress import ProgressFn

log = logging.getLogger(__name__)

__all__ = ["INFERENCE_EFFECTS", "REFERENCE_SEGMENTS", "StyleTransfer", "interpolate_embeddings", "mix_stems"]

INFERENCE_EFFECTS = ("loudness", "eq", "compression", "imager", "panning", "loudness")
"""The official inference normalization order; its ``imager`` step is our ``imager`` + ``panning``."""

REFERENCE_SEGMENTS = 8
"""Default cap on the encoder segments per reference (see :func:`mixfx.models.apply.reference_pieces`)."""


def _batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.ndim != 3 or x.shape[1] != 2 or x.shape[-1] < 1:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise MixfxError(f"StyleTransfer: {name} must be stereo audio (batch, 2, samples), got {got}")
    return x


class StyleTransfer:
    """``y = Ψ(normalize(x), Φ(ref))`` on batches of stereo stems, device-aware.

    Args:
        encoder: FXencoder Φ ``(n, 2, T) → (n, dim)`` (eval mode is set here).
        cloner: MixFXcloner Ψ conditioned on ``dim``-d embeddings.
        features: FX-normalization targets (:class:`mixfx.fxnorm.targets.FXNormFeatures`) for the
            inputs; ``None`` feeds the inputs as they are.
        segment: Ψ window in samples for cross-faded windows (official 2^19 ≈ 11.9 s).
        overlap: ``None``: the exact tiled pass (:func:`~mixfx.models.tcn_inference.cloner_forward_tiled`);
            a fraction in [0, 1): cross-faded ``segment``-sample windows with that overlap.
        reference_segment: piece length of the reference embedding (official 2^19).
        reference_segments: most encoder segments per reference (``None``: all of the covering
            tiling); longer references are represented by this many evenly spaced segments.
        batch_size: windows per network call (cross-faded windows) and encoder segments per call
            (at least the number of rows embedded together). The tiled pass takes as many rows
            at once as ``max_memory`` allows with tiles of at least 2^15 samples.
        max_memory: byte budget of one tiled pass (buffers and working tensors of its rows,
            output excluded), which sets its tile length (:func:`~mixfx.models.tcn_inference.tile_for_memory`).
        silence_db: input rows peaking at or below this level (dBFS) give silence (not run through
            Ψ), and so do output samples whose whole input reach (the cloner's left/right reach
            around them) is at or below it; ``None`` converts everything as Ψ computes it.
        effects: FX-normalization steps, in order.
        context_windows: with ``overlap=None``, the earlier exact path instead of the tiled pass:
            ``segment``-sample windows with the cloner's reach of context on each side
            (:func:`~mixfx.models.apply.apply_with_context`; same output, recomputed context), kept
            for comparison (``benchmarks/bench_transfer.py``).
        precision: ``"fp32"`` (exact: equals the full fp32 pass to 1e-5) or ``"bf16"``: Ψ runs on a
            bfloat16 copy of its weights (inputs cast per tile, outputs float32); faster where the
            hardware has bf16 units (AMX / AVX-512 BF16 CPUs, GPUs), with errors of about 5e-3 at
            the paper size (printed by ``benchmarks/bench_transfer.py``).
        seed: seed of the Haas step of FX normalization (per key and stem, see :func:`mixfx.fxnorm.matching.stem_rng`).
        device: where the networks run (default: where Ψ's weights are). Results come back on the
            input's device.

    Raises:
        MixfxError: the cloner's condition size differs from the encoder's embedding size, or bad settings.
    """

    def __init__(self, encoder: torch.nn.Module | None, cloner: torch.nn.Module, features=None, *,
                 segment: int = 2**19, overlap: float | None = None, reference_segment: int = 2**19,
                 reference_segments: int | None = REFERENCE_SEGMENTS, batch_size: int = 1, max_memory: int = 2**30, silence_db: float | None = -60.0,
                 effects: Sequence[str] = INFERENCE_EFFECTS, context_windows: bool = False,
                 precision: str = "fp32", seed: int = 0, device=None) -> None:
        if segment < 1 or reference_segment < 1 or batch_size < 1:
            raise MixfxError(f"StyleTransfer: segment, reference_segment and batch_size must be ≥ 1, got "
                             f"{segment}, {reference_segment}, {batch_size}")
        if not max_memory >= 1:
            raise MixfxError(f"StyleTransfer: max_memory must be a positive number of bytes, got {max_memory}")
        reference_pieces(2, 1, reference_segments)  # validates the cap (one-line MixfxError)
        if precision not in ("fp32", "bf16"):
            raise MixfxError(f"StyleTransfer: precision must be fp32 or bf16, got {precision!r}")
        if overlap is not None and not 0 <= overlap < 1:
            raise MixfxError(f"StyleTransfer: overlap must be in [0, 1) or None, got {overlap}")
        cond = getattr(getattr(cloner, "config", None), "cond_dim", None)
        dim = getattr(encoder, "dim", None)
        if encoder is not None and cond is not None and dim is not None and cond != dim:
            raise MixfxError(f"StyleTransfer: the MixFXcloner is conditioned on {cond}-d embeddings but the FXencoder "
                             f"gives {dim}-d ones; use the encoder it was trained with")
        self.encoder = encoder.eval() if encoder is not None else None
        self.cloner = cloner.eval() if precision == "fp32" else copy.deepcopy(cloner).eval().to(torch.bfloat16)
        self.precision = precision
        self.features = features
        self.segment, self.overlap, self.reference_segment = int(segment), overlap, int(reference_segment)
        self.reference_segments = None if reference_segments is None else int(reference_segments)
        self.batch_size, self.max_memory, self.silence_db = int(batch_size), int(max_memory), silence_db
        self.effects, self.seed, self.context_windows = tuple(effects), int(seed), bool(context_windows)
        self.device = torch.device(device) if device is not None else next(cloner.parameters()).device

    # ------------------------------------------------------------------------------------------ stages

    def normalize(self, x: torch.Tensor, stems: Sequence[str], keys: Sequence[str] | None = None) -> torch.Tensor:
        """FX-normalize every row (:func:`mixfx.fxnorm.matching.normalize_stem`), then clamp to [−1, 1].

        Args:
            x: ``(B, 2, T)``.
            stems: the stem kind of each row (a key of the features).
            keys: a name per row (e.g. the song) that seeds its Haas step; default ``""``.

        Returns:
            ``x`` unchanged without features, else the normalized rows ``(B, 2, T)`` float32.
        """
        _batch(x, "x")
        if self.features is None:
            return x
        from mixfx.fxnorm.matching import normalize_stem, stem_rng

        if len(stems) != x.shape[0] or (keys is not None and len(keys) != x.shape[0]):
            raise MixfxError(f"StyleTransfer.normalize: {x.shape[0]} rows but {len(stems)} stem names")
        keys = keys if keys is not None else [""] * x.shape[0]
        return torch.stack([
            normalize_stem(x[i], stems[i], self.features, sample_rate=SAMPLE_RATE,
                           rng=stem_rng(self.seed, keys[i], stems[i]), effects=self.effects).clamp(-1, 1)
            for i in range(x.shape[0])
        ])

    def embed(self, reference: torch.Tensor) -> torch.Tensor:
        """Segment-averaged Φ of the clamped reference rows: ``(B, 2, T) → (B, dim)`` on ``reference``'s device.

        At most ``reference_segments`` segments per row; all rows' segments at one offset go through
        the encoder in one call (``max(batch_size, B)`` segments per call).
        """
        if self.encoder is None:
            raise MixfxError("StyleTransfer: no FXencoder to embed references with")
        _batch(reference, "reference")
        for i in torch.nonzero(~reference.flatten(1).any(dim=1)).flatten().tolist():
            log.warning("reference row %d is silent; its embedding describes silence", i)
        return embed_in_segments(self.encoder, reference.clamp(-1, 1), self.reference_segment,
                                 max_segments=self.reference_segments,
                                 batch_size=max(self.batch_size, reference.shape[0]), device=self.device)

    def convert(self, x: torch.Tensor, embedding: torch.Tensor,
                progress: ProgressFn | None = None) -> torch.Tensor:
        """Ψ on every row of ``x`` ``(B, 2, T)`` conditioned on ``embedding`` ``(B, dim)``; ``(B, 2, T)`` float32.

        Rows at or below ``silence_db`` peak come back silent; ``progress(done, total, label)`` counts
        windows (``"windows"``: cross-faded or context windows) or output samples of all rows
        (``"samples"``: tiled).
        """
        _batch(x, "x")
        if embedding.ndim != 2 or embedding.shape[0] != x.shape[0]:
            raise MixfxError(f"StyleTransfer.convert: expected ({x.shape[0]}, dim) embeddings, got {tuple(embedding.shape)}")
        xf = x.to(device=self.device, dtype=torch.float32)  # the one move to the network's device
        peak = xf.abs().amax(dim=(1, 2)).cpu()  # B numbers
        active = [k for k in range(x.shape[0])
                  if self.silence_db is None or 20 * math.log10(max(float(peak[k]), 1e-12)) > self.silence_db]
        for k in sorted(set(range(x.shape[0])) - set(active)):
            log.info("row %d is silent (peak ≤ %s dBFS): output is silence", k, self.silence_db)
        out = torch.zeros_like(xf)
        if not active:
            return out.to(x.device)
        conds = embedding[active].to(device=self.device, dtype=torch.float32)
        cloner, dtype = self.cloner, next(self.cloner.parameters()).dtype

        def psi(chunks: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            return cloner(chunks.to(dtype), conds[index].to(dtype)).float()

        rows = xf[active]
        quiet = None
        if self.silence_db is not None and hasattr(cloner, "blocks"):
            left = sum(block.pad[0] for block in cloner.blocks)
            right = sum(block.pad[1] for block in cloner.blocks)
            quiet = silent_output_mask(rows, left, right, 10 ** (self.silence_db / 20))
        with torch.no_grad():
            if self.overlap is None and self.context_windows:
                y = apply_with_context(psi, rows, window=self.segment,
                                       context=cloner_context(cloner), batch_size=self.batch_size,
                                       device=self.device, progress=progress)
            elif self.overlap is None:
                y = self._tiled(rows, conds, quiet, progress)
            else:
                y = apply_in_windows(psi, rows, window=self.segment, overlap=self.overlap, batch_size=self.batch_size,
                                     device=self.device, with_index=True, progress=progress)
        if quiet is not None:
            y = y.masked_fill(quiet[:, None, :], 0.0)
        out[active] = y.to(torch.float32)
        return out.to(x.device)  # the one move back

    def _tiled(self, rows: torch.Tensor, conds: torch.Tensor, quiet: torch.Tensor | None,
               progress: ProgressFn | None) -> torch.Tensor:
        """The tiled pass over ``rows`` ``(n, 2, T)``: rows without long quiet spans in batches, the others
        piece by piece (:func:`~mixfx.models.tcn_inference.loud_pieces`), skipping their quiet spans."""
        n_rows, _, length = rows.shape
        whole = [(0, 0, length, length)]
        left = sum(block.pad[0] for block in self.cloner.blocks)
        right = sum(block.pad[1] for block in self.cloner.blocks)
        pieces = [loud_pieces(q, left, right) for q in quiet] if quiet is not None else [whole] * n_rows
        batched = [k for k in range(n_rows) if pieces[k] == whole]
        y = torch.zeros_like(rows)
        total, done = n_rows * length, 0
        if batched:
            step, tile = self._rows_and_tile(len(batched), length)
            for g in range(0, len(batched), step):
                idx = batched[g:g + step]
                tick = None if progress is None else (
                    lambda d, t, label, o=done, m=len(idx): progress(o + m * d, total, label))
                y[idx] = cloner_forward_tiled(self.cloner, rows[idx], conds[idx], tile=tile, device=self.device,
                                              progress=tick)  # same device and dtype as y
                done += len(idx) * length
        for k in sorted(set(range(n_rows)) - set(batched)):
            tile = tile_for_memory(self.cloner, 1, self.max_memory)
            skipped = length - sum(b - a for a, _, _, b in pieces[k])
            log.info("row %d: %d quiet samples skipped (quiet longer than the receptive field)", k, skipped)
            for a, s, e, b in pieces[k]:
                part = cloner_forward_tiled(self.cloner, rows[k:k + 1, :, a:b], conds[k:k + 1], tile=tile,
                                            device=self.device)
                y[k, :, s:e] = part[0, :, s - a:e - a]
            done += length
            if progress is not None:
                progress(done, total, "samples")
        return y

    def _rows_and_tile(self, rows: int, length: int) -> tuple[int, int]:
        """Rows per tiled pass (≤ ``rows``, halved while the budget leaves tiles under 2^15 samples) and its tile.

        Long tiles keep the convolutions near the GEMM rate on a CPU; several rows per pass fill a GPU.
        """
        want = min(2**15, length)
        while rows > 1:
            try:
                tile = tile_for_memory(self.cloner, rows, self.max_memory)
            except MixfxError:
                tile = 0
            if tile >= want:
                return rows, tile
            rows //= 2
        return 1, tile_for_memory(self.cloner, 1, self.max_memory)

    def __call__(self, x: torch.Tensor, reference: torch.Tensor | None = None, *, embedding: torch.Tensor | None = None,
                 stems: Sequence[str] | None = None, keys: Sequence[str] | None = None) -> torch.Tensor:
        """``Ψ(normalize(x), Φ(reference))`` (or a given ``embedding``); ``stems`` is needed with features."""
        if (reference is None) == (embedding is None):
            raise MixfxError("StyleTransfer: give exactly one of reference and embedding")
        if self.features is not None:
            if stems is None:
                raise MixfxError("StyleTransfer: the stem kind of every row (stems=...) is needed for FX normalization")
            x = self.normalize(x, stems, keys)
        e = self.embed(reference) if embedding is None else embedding
        return self.convert(x, e)

    # ------------------------------------------------------------------------------------------ stems

    def embed_stems(self, stems: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{stem: (2, T)} → {stem: (dim,)}`` on the CPU; equal-length stems are embedded in one batch
        (stems of different lengths one by one)."""
        names = list(stems)
        if len({stems[s].shape[-1] for s in names}) == 1:
            e = self.embed(torch.stack([stems[s] for s in names])).cpu()
            return {s: e[k] for k, s in enumerate(names)}
        return {s: self.embed(x[None])[0].cpu() for s, x in stems.items()}

    def convert_stems(self, stems: Mapping[str, torch.Tensor], embeddings: Mapping[str, torch.Tensor], *,
                      song: str = "", progress: ProgressFn | None = None) -> dict[str, torch.Tensor]:
        """Normalize (with features) and convert equal-length stems ``{stem: (2, T)}``, all in one batch.

        Returns ``{stem: (2, T)}`` float32 on the CPU.
        """
        return self.convert_songs([(stems, embeddings, song)], progress=progress)[0]

    def convert_songs(self, songs: Sequence[tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor], str]], *,
                      progress: ProgressFn | None = None) -> list[dict[str, torch.Tensor]]:
        """:meth:`convert_stems` of several songs ``[(stems, embeddings, song), …]`` of one length, in one batch.

        Every stem of every song is one row of a single :meth:`convert` call (rows are independent,
        so the result equals converting the songs one by one).

        Raises:
            MixfxError: a stem without an embedding, or songs of different lengths.
        """
        rows, conds, names = [], [], []
        for stems, embeddings, song in songs:
            missing = [s for s in stems if s not in embeddings]
            if missing:
                raise MixfxError(f"convert_stems: no reference embedding for stem(s) {', '.join(missing)}")
            x = torch.stack([stems[s].to(torch.float32).cpu() for s in stems])
            if self.features is not None:
                x = self.normalize(x, list(stems), [song] * len(stems))
            rows.append(x)
            conds += [embeddings[s].reshape(-1) for s in stems]
            names.append(list(stems))
        if len({x.shape[-1] for x in rows}) > 1:
            raise MixfxError(f"convert_songs: songs of one batch must have one length, got "
                             f"{sorted({x.shape[-1] for x in rows})} samples")
        y = self.convert(torch.cat(rows), torch.stack(conds), progress=progress).cpu()
        out, k = [], 0
        for stems in names:
            out.append({s: y[k + j] for j, s in enumerate(stems)})
            k += len(stems)
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


def mix_stems(stems: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The mixture ``(2, T)``: sum of the stems (not limited; see ``TransferConfig.peak_db``)."""
    return torch.stack(list(stems.values())).sum(0)
