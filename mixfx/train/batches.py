"""Training batches: raw segments read by (seed, step), FX applied on the training device.

Every batch is a pure function of ``(seed, step, rank)``: a run resumed at step ``k`` sees exactly
the batches an uninterrupted run would, and each DDP rank draws its own. Raw audio is read on CPU
(in DataLoader workers); the FXmanipulator runs afterwards on the training device, in batches.

Contrastive batch (paper §2.2): ``M`` content pairs ``(A_j, B_j)`` from different songs, every
content manipulated twice with two configurations, so the batch holds ``N = 2M`` positive pairs
``(FX_{j,c}(A_j), FX_{j,c}(B_j))`` and, for each content, a same-content/other-FX negative. Each item
is a mix of the same 1–4 stem types (drawn per batch, so positives and negatives share them; step
``k`` uses ``k mod 4 + 1`` stems, the paper's 4-step iteration); each
stem gets its own configuration and the manipulated stems are summed. As in the official loader,
each stem of a content is drawn independently (file and start), and view A and view B have their own
random length in the segment range.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from mixfx import SAMPLE_RATE, STEMS
from mixfx.data.musdb import MultitrackSegments
from mixfx.errors import MixfxError
from mixfx.fx.chain import FXManipulator
from mixfx.fx.params import FXProbabilities
from mixfx.seeds import seeded_generator

STEM_COMBINATIONS = [c for r in range(1, 5) for c in itertools.combinations(STEMS, r)]


def step_generator(seed: int, step: int, rank: int = 0, stream: int = 0) -> torch.Generator:
    """The CPU generator of ``(seed, step, rank, stream)``: :func:`mixfx.seeds.seeded_generator` of the four.

    Raises:
        MixfxError: a negative entry.
    """
    return seeded_generator(seed, step, rank, stream)


def segment_samples(generator: torch.Generator, seconds: tuple[float, float], sample_rate: int) -> int:
    lo, hi = seconds
    return int((lo + (hi - lo) * float(torch.rand(1, generator=generator))) * sample_rate)


@dataclass
class RawContrastiveBatch:
    """Unprocessed stems of one contrastive batch: ``a`` ``(S, M, 2, Ta)`` and ``b`` ``(S, M, 2, Tb)``."""

    stems: tuple[str, ...]
    a: torch.Tensor
    b: torch.Tensor


class ContrastiveSegments(torch.utils.data.Dataset):
    """Map-style dataset: item ``step`` is the raw contrastive batch of that step (for a DataLoader).

    Args:
        data: segment source of the training (or validation) split.
        contents: ``M``, content pairs per batch (the batch has ``2M`` pairs).
        seconds: segment-length range (paper: 5.9–11.8 s).
        seed, rank: determine the batches.
        stems: fix the stem combination (e.g. ``("vocals",)``); default: step ``k`` mixes ``k mod 4 + 1``
            random stems (the paper's iteration = 4 steps of 1…4-stem mixes).
    """

    def __init__(self, data: MultitrackSegments, *, contents: int, seconds=(5.9, 11.8), seed: int = 0, rank: int = 0,
                 stems: tuple[str, ...] | None = None, length: int = 10**9) -> None:
        self.data, self.contents, self.seconds = data, contents, seconds
        self.seed, self.rank, self.stems, self.length = seed, rank, stems, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, step: int) -> RawContrastiveBatch:
        g = step_generator(self.seed, step, self.rank)
        if self.stems:
            stems = self.stems
        else:
            pool = [c for c in STEM_COMBINATIONS if len(c) == step % 4 + 1]
            stems = pool[int(torch.randint(len(pool), (1,), generator=g))]
        sr = self.data.sample_rate
        ta, tb = segment_samples(g, self.seconds, sr), segment_samples(g, self.seconds, sr)
        a = torch.empty(len(stems), self.contents, 2, ta)
        b = torch.empty(len(stems), self.contents, 2, tb)
        n_songs = len(self.data.songs)
        for s, stem in enumerate(stems):
            for j in range(self.contents):
                a[s, j], song_a, _ = self.data.sample(stem, ta, generator=g)
                other = None
                if n_songs > 1:
                    other = int(torch.randint(n_songs - 1, (1,), generator=g))
                    other += other >= song_a
                try:
                    b[s, j], _, _ = self.data.sample(stem, tb, generator=g, song=other)
                except MixfxError:  # that song has too little active audio: any song will do
                    b[s, j], _, _ = self.data.sample(stem, tb, generator=g)
        return RawContrastiveBatch(tuple(stems), a, b)


def contrastive_views(
    raw: RawContrastiveBatch,
    chain: FXManipulator,
    generator: torch.Generator,
    *,
    device: torch.device | str = "cpu",
    probabilities: FXProbabilities | None = None,
    single_fx: str | None = None,
    configs_per_content: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Manipulate a raw batch into the two views of ``N = configs_per_content · M`` positive pairs.

    Item ``i = j·configs_per_content + c`` is content pair ``j`` under configuration ``c``; row ``i`` of
    view A and row ``i`` of view B are a positive pair.

    Returns:
        ``(view_a (N, 2, Ta), view_b (N, 2, Tb))`` on ``device``.
    """
    k = configs_per_content
    view_a = view_b = None
    for s, stem in enumerate(raw.stems):
        a = raw.a[s].to(device).repeat_interleave(k, dim=0)
        b = raw.b[s].to(device).repeat_interleave(k, dim=0)
        config = chain.sample(a.shape[0], generator=generator, stems=stem, single_fx=single_fx, probabilities=probabilities)
        ya, yb = chain.apply(a, config), chain.apply(b, config)
        view_a = ya if view_a is None else view_a + ya
        view_b = yb if view_b is None else view_b + yb
    return view_a, view_b


@dataclass
class RawClonerBatch:
    """Stems for MixFXcloner training: ``x`` (input content), ``ref`` (other content), one stem kind each."""

    stems: list[str]
    x: torch.Tensor
    ref: torch.Tensor


class ClonerSegments(torch.utils.data.Dataset):
    """Item ``step``: ``batch`` stems (random kind each), content A (input) and content B (reference)."""

    def __init__(self, data: MultitrackSegments, *, batch: int, seconds: float = 11.8, seed: int = 0, rank: int = 0,
                 length: int = 10**9) -> None:
        self.data, self.batch, self.seconds, self.seed, self.rank, self.length = data, batch, seconds, seed, rank, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, step: int) -> RawClonerBatch:
        g = step_generator(self.seed, step, self.rank)
        n = int(self.seconds * self.data.sample_rate)
        stems = [self.data.stems[int(i)] for i in torch.randint(len(self.data.stems), (self.batch,), generator=g)]
        x = torch.empty(self.batch, 2, n)
        ref = torch.empty(self.batch, 2, n)
        for i, stem in enumerate(stems):
            x[i], ref[i], _ = self.data.sample_pair(stem, n, generator=g)
        return RawClonerBatch(stems, x, ref)


def cloner_triplet(raw: RawClonerBatch, chain: FXManipulator, generator: torch.Generator, *, device="cpu",
                   probabilities: FXProbabilities | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input, reference, ground truth)``: the same configuration manipulates the reference and the input.

    The official loader takes A and B from two random segments; here they are two different segments
    of the same song (``sample_pair``), so the reference shares the instrument's timbre family.
    """
    x = raw.x.to(device)
    ref = raw.ref.to(device)
    config = chain.sample(x.shape[0], generator=generator, stems=raw.stems, probabilities=probabilities)
    return x, chain.apply(ref, config), chain.apply(x, config)


__all__ = [
    "ContrastiveSegments", "ClonerSegments", "contrastive_views", "cloner_triplet", "step_generator",
    "STEM_COMBINATIONS", "SAMPLE_RATE",
]
