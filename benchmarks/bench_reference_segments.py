"""How close is the K-segment reference embedding to the full average? (``--reference-segments K``)

On the shared real songs (``/work/shared/data/real_audio/song_a``, ``song_b``; 44.1 kHz stems), for
every stem: the full average ``e_full`` (every segment of the covering tiling,
:func:`mixfx.models.apply.reference_pieces` without a cap) and the average ``e_K`` of ``K`` evenly
spaced segments. Prints, per encoder size and ``K``, the distance
``d_K = λ · mean_d |e_K − e_full|`` (the scale of :func:`mixeval.metrics.style.embedding_distance`)
averaged over the songs' stems, and its ratio to the distance between the two songs' full
averages of the same stem, ``d_AB = λ · mean_d |e_full(A) − e_full(B)|`` (a ratio well below 1:
K segments describe the song much better than another song does).

No trained FXencoder weights are available here: the encoders are randomly initialised (paper size,
81 M parameters, and the tiny test size), so the figures say how much a random projection of the
segments' statistics varies along a song, not what the trained encoder does.

The songs are 20 s long: with the official 2^19-sample segment (11.9 s) they hold under two
segments, so ``--segment`` defaults to 2^16 (1.49 s; 14 segments per song), which makes K = 1…8
a real subsample.

    python benchmarks/bench_reference_segments.py                   # paper and tiny, 2^16
    python benchmarks/bench_reference_segments.py --sizes tiny --segment 32768
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch

from mixeval.metrics.style import LAMBDA
from mixfx import SAMPLE_RATE, STEMS
from mixfx.io.audio import load_audio
from mixfx.models.apply import reference_pieces
from mixfx.models.encoder import FXEncoder, FXEncoderConfig

SONGS = Path("/work/shared/data/real_audio")


def averaged(encoder: FXEncoder, x: torch.Tensor, pieces, cache: dict[int, torch.Tensor]) -> torch.Tensor:
    """Weighted mean of the encoder's embeddings of ``pieces`` of ``x`` ``(2, T)`` (segments cached by start)."""
    total = torch.zeros(encoder.dim, dtype=torch.float64)
    for start, n, weight in pieces:
        if start not in cache:
            with torch.no_grad():
                cache[start] = encoder(x[None, :, start:start + n].clamp(-1, 1))[0].double()
        total += weight * cache[start]
    return total / sum(w for _, _, w in pieces)


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(LAMBDA * (a - b).abs().mean())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["paper", "tiny"], choices=["paper", "tiny"])
    p.add_argument("--segment", type=int, default=2**16, help="encoder segment in samples")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--stems", nargs="+", default=list(STEMS), choices=list(STEMS))
    p.add_argument("--songs", type=Path, default=SONGS, help="folder with song_a/ and song_b/ stem folders")
    args = p.parse_args(argv)
    audio = {song: {s: load_audio(args.songs / song / f"{s}.wav", sample_rate=SAMPLE_RATE) for s in args.stems}
             for song in ("song_a", "song_b")}
    length = min(x.shape[-1] for stems in audio.values() for x in stems.values())
    n_full = len(reference_pieces(length, args.segment))
    print(f"# songs song_a, song_b ({length / SAMPLE_RATE:.1f} s), stems {', '.join(args.stems)}; segment "
          f"{args.segment} samples ({args.segment / SAMPLE_RATE:.2f} s), {n_full} segments cover a song; "
          f"λ = {LAMBDA}; random-init encoders (no trained weights here)")
    print("| encoder | K | encoder input (s) | d_K = λ·mean|e_K − e_full| | d_AB (two songs) | d_K / d_AB |")
    print("|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        torch.manual_seed(0)
        encoder = FXEncoder(FXEncoderConfig.paper() if size == "paper" else FXEncoderConfig.tiny()).eval()
        start = time.perf_counter()
        caches = {(song, s): {} for song in audio for s in args.stems}
        full = {(song, s): averaged(encoder, audio[song][s][:, :length], reference_pieces(length, args.segment),
                                    caches[song, s]) for song in audio for s in args.stems}
        between = sum(distance(full["song_a", s], full["song_b", s]) for s in args.stems) / len(args.stems)
        for k in args.ks:
            pieces = reference_pieces(length, args.segment, k)
            d = [distance(averaged(encoder, audio[song][s][:, :length], pieces, caches[song, s]), full[song, s])
                 for song in audio for s in args.stems]
            mean = sum(d) / len(d)
            print(f"| {size} | {k} | {len(pieces) * args.segment / SAMPLE_RATE:.1f} | {mean:.4g} | {between:.4g} | "
                  f"{mean / between:.3f} |")
        print(f"# {size}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
