r"""NT-Xent contrastive loss on a DirectCLR sub-vector, with a gradient-preserving all-gather.

The FXencoder is trained with the normalized temperature-scaled cross entropy of SimCLR (Chen et
al. 2020) and τ = 0.1; following DirectCLR (Jing et al. 2022) there is no projector and the loss sees
only the first ``d0 = 360`` dimensions of the 2048-d embedding (paper §2.2, §3.2).

For ``N`` positive pairs ``(a_i, b_i)`` the ``2N`` sub-vectors ``z_k`` are L2-normalised and

.. math::

    \ell_k = -\log \frac{\exp(\cos(z_k, z_{p(k)}) / \tau)}
                          {\sum_{j \ne k} \exp(\cos(z_k, z_j) / \tau)}, \qquad
    \mathcal{L} = \frac{1}{2N} \sum_{k=1}^{2N} \ell_k,

where ``p(k)`` is the other view of the same pair; every other one of the ``2N − 2`` items is a
negative (strong negatives — same content, other FX — are simply other rows of the batch). This is
the official ``NT_Xent`` (Spijkervet's SimCLR port) and, being symmetric in the two views, also the
symmetrised DirectCLR ``infoNCE`` plus the within-view negatives.

Distributed training: with ``gather=True`` (default) and an initialised ``torch.distributed`` process
group, each rank's sub-vectors are all-gathered with :func:`gather_with_grad` and every rank computes
the loss over the global batch. The backward of the gather sums the gradients of all ranks' copies of
the loss, so after DistributedDataParallel's gradient averaging each rank holds exactly the gradient
of the global loss. Every rank must contribute the same number of pairs. Without a process group (or
with one rank) gathering is a no-op.

References:
    Chen et al., "A simple framework for contrastive learning of visual representations", ICML 2020.
    Jing et al., "Understanding dimensional collapse in contrastive self-supervised learning", ICLR 2022.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mixfx.errors import MixfxError

TEMPERATURE = 0.1
"""Paper / official τ."""

D0 = 360
"""DirectCLR sub-vector size used by the paper."""


def _distributed_world() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward all-reduces (sums) the gradients and returns this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        out = [torch.zeros_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        return tuple(out)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        stacked = torch.stack([g.contiguous() for g in grads])
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        return stacked[dist.get_rank()]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` ``(n, ...)`` from all ranks along dim 0, keeping gradients.

    Rank ``r``'s rows sit at ``[r·n, (r+1)·n)``. A no-op without an initialised process group or with
    a single rank. All ranks must pass tensors of the same shape.
    """
    if _distributed_world() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


def _check_views(z_a: torch.Tensor, z_b: torch.Tensor) -> None:
    if z_a.ndim != 2 or z_a.shape != z_b.shape or z_a.shape[0] < 1 or z_a.shape[1] < 1:
        raise MixfxError(
            f"nt_xent: expected two (batch ≥ 1, dim ≥ 1) embeddings of equal shape, got "
            f"{tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )


def nt_xent(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    *,
    temperature: float = TEMPERATURE,
    d0: int | None = D0,
    gather: bool | Callable[[torch.Tensor], torch.Tensor] = True,
    output: str = "loss",
) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """NT-Xent loss of two views (lower is better; ≥ 0).

    Args:
        z_a: embeddings of the first views ``(N, dim)``; row ``i`` is positive with ``z_b[i]``.
        z_b: embeddings of the second views ``(N, dim)``.
        temperature: τ > 0.
        d0: use only ``z[:, :d0]`` (DirectCLR); clamped to ``dim``; ``None`` uses all dimensions.
        gather: ``True`` all-gathers across ranks when ``torch.distributed`` is initialised
            (:func:`gather_with_grad`); ``False`` never; or a callable ``(n, d) → (n_total, d)``
            applied to each view.
        output: ``"loss"`` for the scalar, ``"full"`` for ``(loss, terms)`` where ``terms`` holds
            ``accuracy`` (fraction of items whose most similar other item is their positive) and
            ``positive_cosine`` (mean cosine of positive pairs), both detached.

    Returns:
        Scalar loss (mean over the ``2N`` items); with one pair the loss is 0 (no negatives).

    Raises:
        MixfxError: shapes differ / not 2-D, ``temperature`` ≤ 0, ``d0`` < 1, unknown ``output``.
    """
    _check_views(z_a, z_b)
    if not temperature > 0:
        raise MixfxError(f"nt_xent: temperature must be > 0, got {temperature}")
    if d0 is not None and d0 < 1:
        raise MixfxError(f"nt_xent: d0 must be ≥ 1 or None, got {d0}")
    if output not in ("loss", "full"):
        raise MixfxError(f"nt_xent: output must be 'loss' or 'full', got {output!r}")
    d = z_a.shape[1] if d0 is None else min(d0, z_a.shape[1])
    a, b = z_a[:, :d], z_b[:, :d]
    if gather is True:
        a, b = gather_with_grad(a), gather_with_grad(b)
    elif callable(gather):
        a, b = gather(a), gather(b)
    n = a.shape[0]
    z = torch.cat([a, b], dim=0)
    z = F.normalize(z.to(torch.promote_types(z.dtype, torch.float32)), dim=1)
    sim = (z @ z.t()) / temperature
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    idx = torch.arange(2 * n, device=z.device)
    target = (idx + n) % (2 * n)
    loss = F.cross_entropy(sim, target)
    if output == "loss":
        return loss
    with torch.no_grad():
        terms = {
            "accuracy": (sim.argmax(dim=1) == target).float().mean(),
            "positive_cosine": (z[:n] * z[n:]).sum(dim=1).mean(),
        }
    return loss, terms


class NTXentLoss(nn.Module):
    """Module form of :func:`nt_xent` (settings stored, ``forward(z_a, z_b)``).

    Args:
        temperature: τ (paper 0.1).
        d0: DirectCLR sub-vector size (paper 360), clamped to the embedding size.
        gather: see :func:`nt_xent`.
        output: ``"loss"`` or ``"full"``.

    Example:
        >>> loss_fn = NTXentLoss()
        >>> z = torch.randn(8, 2048)
        >>> float(loss_fn(z, z)) < float(loss_fn(z, torch.randn(8, 2048)))
        True
    """

    def __init__(self, temperature: float = TEMPERATURE, d0: int | None = D0,
                 gather: bool | Callable[[torch.Tensor], torch.Tensor] = True, output: str = "loss") -> None:
        super().__init__()
        if not temperature > 0:
            raise MixfxError(f"NTXentLoss: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.d0 = d0
        self.gather = gather
        self.output = output

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor):
        return nt_xent(z_a, z_b, temperature=self.temperature, d0=self.d0, gather=self.gather, output=self.output)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, d0={self.d0}"
