"""Exact MixFXcloner inference without recomputed context, in bounded memory (issue 12).

:func:`mixfx.models.apply.apply_with_context` gives every window the cloner's full one-sided reach
of context on both sides; at the paper size (reach 114,681 samples) that recomputes ≈44 % of every
2^19-sample window. :func:`cloner_forward_tiled` instead streams the signal through the network
layer by layer: block ``n`` keeps a buffer of its own input holding only its own halo,
``block.pad = ((k−1)·d_n/2, (k−1)·d_n/2)`` samples, and turns each tile of new input into the same
number of new outputs, which become the next block's input. Every output sample of every layer is
computed exactly once, and the result equals one full-length ``cloner(x, cond)`` pass up to float
rounding (zero padding is applied per layer at the signal ends, exactly as the full pass does).

Memory (4-byte floats, ``B`` rows, block ``n`` with ``C_n`` input channels, ``C`` channels, tile ``L``):

.. math::

    \\text{bytes} \\approx 4 B \\Big[\\sum_n C_n (p_n^{\\text{left}} + p_n^{\\text{right}})
        + L \\big(2 \\sum_n C_n + 5 C\\big)\\Big]

independent of the signal length (the halo term is ≈117 MB per row at paper size);
:func:`tile_for_memory` solves it for ``L``.

Kernels (``fused=True``, the default): BatchNorm is folded into the dilated conv
(``W' = W·s``, ``b' = β − μ·s`` with ``s = γ_BN / √(σ² + ε)`` per output channel), the LeakyReLU,
the FiLM ``γ·y + β`` and a depthwise residual ``r ⊙ x`` are applied in place on the conv output
(no new tensors per layer), and everything runs under :func:`torch.inference_mode`. The conv itself
stays :func:`torch.nn.functional.conv1d` (oneDNN on a CPU, cuDNN on CUDA): hand-written im2col /
per-tap ``addmm`` variants measured slower on the project's CPU (``benchmarks/bench_transfer.py``).
``fused=False`` runs the module's own layers (``block.bn``, ``block.res``), for comparison.

Example:
    >>> psi = MixFXCloner(ClonerConfig.tiny(cond_dim=8)).eval()              # doctest: +SKIP
    >>> y = cloner_forward_tiled(psi, x, cond, max_memory=2**28)              # == psi(x, cond)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from mixfx.errors import MixfxError
from mixfx.progress import ProgressFn

__all__ = ["cloner_forward_tiled", "loud_pieces", "silent_output_mask", "tiled_memory_bytes", "tile_for_memory"]


def _sizes(cloner: torch.nn.Module) -> tuple[int, int, int]:
    """``(Σ C_n · halo_n, Σ C_n, C)`` of a cloner (input channels per block, width)."""
    halo = sum(b.conv1.in_channels * (b.pad[0] + b.pad[1]) for b in cloner.blocks)
    cin = sum(b.conv1.in_channels for b in cloner.blocks)
    return halo, cin, max(b.conv1.out_channels for b in cloner.blocks)


def tiled_memory_bytes(cloner: torch.nn.Module, batch: int, tile: int, *, bytes_per_value: int = 4) -> int:
    """Approximate peak bytes of the buffers and working tensors of :func:`cloner_forward_tiled`.

    Args:
        cloner: a :class:`~mixfx.models.cloner.MixFXCloner`.
        batch: rows processed together.
        tile: tile length ``L`` in samples.
        bytes_per_value: 4 for float32.

    Returns:
        ``bytes_per_value · batch · (Σ C_n·halo_n + L·(2·Σ C_n + 5·C))`` (see the module docstring);
        the full-length output ``(batch, out_channels, T)`` is not included.
    """
    halo, cin, width = _sizes(cloner)
    return int(bytes_per_value * batch * (halo + tile * (2 * cin + 5 * width)))


def tile_for_memory(cloner: torch.nn.Module, batch: int, max_memory: int, *, bytes_per_value: int = 4) -> int:
    """Longest tile whose :func:`tiled_memory_bytes` fits in ``max_memory`` bytes.

    Raises:
        MixfxError: ``max_memory`` is below what the halos plus a one-sample tile need.
    """
    halo, cin, width = _sizes(cloner)
    per_row = max_memory / (bytes_per_value * max(int(batch), 1))
    tile = int((per_row - halo) // (2 * cin + 5 * width))
    if tile < 1:
        need = tiled_memory_bytes(cloner, batch, 1, bytes_per_value=bytes_per_value)
        raise MixfxError(f"cloner_forward_tiled: max_memory {int(max_memory)} bytes is below the {need} bytes that "
                         f"the layer halos of {batch} row(s) need; raise max_memory or convert fewer rows at once")
    return tile


def cloner_forward_tiled(cloner: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | Sequence[torch.Tensor], *,
                         tile: int | None = None, max_memory: int | None = None, device=None,
                         progress: ProgressFn | None = None, fused: bool = True) -> torch.Tensor:
    """``cloner(x, cond)`` streamed layer by layer in tiles: no sample of any layer computed twice.

    Args:
        cloner: a :class:`~mixfx.models.cloner.MixFXCloner` in ``eval()`` mode (BatchNorm uses its
            running statistics, so tiles do not change the result).
        x: ``(B, in_channels, T)`` on any device.
        cond: ``(B or 1, cond_dim)``, or one such tensor per block.
        tile: new samples each layer takes per step (its halo comes on top); default from
            ``max_memory``, or 65,536 when neither is given. Any ``tile ≥ 1`` gives the same result,
            including tiles shorter than a layer's halo (the layer then waits for more input).
        max_memory: byte budget of the buffers and working tensors (:func:`tile_for_memory`).
        device: where the network runs (default: where its weights are); tiles are moved there and
            the output is assembled on ``x.device``.
        progress: :class:`~mixfx.progress.ProgressFn`, called ``(done, T, "samples")`` in final output samples.
        fused: folded BatchNorm and in-place pointwise layers (see the module docstring); ``False``
            calls the block's own BatchNorm and residual modules.

    Returns:
        ``(B, out_channels, T)`` float32 on ``x.device``, clamped to [−1, 1]; equals
        ``cloner(x, cond)`` to float rounding.

    Raises:
        MixfxError: bad shapes, bad ``tile`` / ``max_memory``, or the cloner in training mode.
    """
    conds = cloner._conds(x, cond)  # validates x and cond, one condition per block
    if cloner.training:
        raise MixfxError("cloner_forward_tiled: the cloner is in training mode (BatchNorm would use tile "
                         "statistics); call .eval() first")
    b, _, length = x.shape
    if tile is None:
        tile = tile_for_memory(cloner, b, max_memory) if max_memory is not None else 65536
    if int(tile) != tile or tile < 1:
        raise MixfxError(f"cloner_forward_tiled: tile must be an integer ≥ 1, got {tile}")
    tile = min(int(tile), length)
    weight = cloner.output.weight
    device = torch.device(device) if device is not None else weight.device
    dtype = weight.dtype
    blocks = list(cloner.blocks)
    films = []
    out = torch.empty(b, cloner.output.out_channels, length, dtype=torch.float32, device=x.device)  # a normal tensor
    with torch.inference_mode():
        for block, e in zip(blocks, conds):
            gb = block.film.film_fc(e.to(device=device, dtype=dtype)).unsqueeze(-1)
            films.append(torch.split(gb, block.film.channels, dim=1))
        kernels = [_fused_layer(block, device, dtype) if fused else None for block in blocks]
        # block n's buffer holds its input from absolute sample emitted[n] − pad[n][0] on
        bufs = [torch.zeros(b, blk.conv1.in_channels, blk.pad[0], device=device, dtype=dtype) for blk in blocks]
        received, emitted, closed = [0] * len(blocks), [0] * len(blocks), [False] * len(blocks)
        fed = done = 0
        while done < length:
            chunk = _on(x[:, :, fed:fed + tile], device, dtype) if fed < length else None
            fed = min(fed + tile, length)
            for n, block in enumerate(blocks):
                left, right = block.pad
                if chunk is not None:
                    bufs[n] = torch.cat([bufs[n], chunk], dim=-1)
                    received[n] += chunk.shape[-1]
                if received[n] == length and not closed[n]:  # zero padding past the end, as in the full pass
                    bufs[n] = F.pad(bufs[n], (0, right))
                    closed[n] = True
                count = min(bufs[n].shape[-1] - left - right, tile, length - emitted[n])
                if count <= 0:
                    chunk = None
                    continue
                inp = bufs[n][:, :, :count + left + right]
                gamma, beta = films[n]
                if kernels[n] is None:
                    y = F.conv1d(inp, block.conv1.weight, dilation=block.conv1.dilation)
                    y = F.leaky_relu(block.bn(y), negative_slope=0.01)
                    chunk = gamma * y + beta + block.res(inp[:, :, left:left + count])
                else:
                    weight, bias, scale = kernels[n]
                    chunk = F.conv1d(inp, weight, bias, dilation=block.conv1.dilation)
                    F.leaky_relu_(chunk, negative_slope=0.01)
                    chunk.mul_(gamma).add_(beta)
                    centre = inp[:, :, left:left + count]
                    if scale is not None:
                        chunk.addcmul_(centre, scale)
                    else:
                        chunk.add_(block.res(centre))
                bufs[n] = bufs[n][:, :, count:]
                emitted[n] += count
            if chunk is not None:
                y = cloner.output(chunk)
                if cloner.config.input_skip:
                    y = y + _on(x[:, :, done:done + y.shape[-1]], device, dtype)
                y = torch.clamp(y, -1.0, 1.0)
                out[:, :, done:done + y.shape[-1]] = _on(y, x.device, torch.float32)
                done += y.shape[-1]
                if progress is not None:
                    progress(done, length, "samples")
    return out


def _on(t: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``t`` on ``device`` as ``dtype``, without a call when it is already there (no per-tile copies)."""
    return t if t.device == device and t.dtype == dtype else t.to(device=device, dtype=dtype)


def _fused_layer(block: torch.nn.Module, device, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(W', b', r)`` of a block in eval mode: the conv weight and bias with BatchNorm folded in, and
    the depthwise residual as a ``(C, 1)`` scale (``None`` when the residual conv is not one-to-one)."""
    bn = block.bn  # folded in float32 whatever the weights' dtype, then cast
    s = bn.weight.float() / torch.sqrt(bn.running_var.float() + bn.eps)
    weight = (block.conv1.weight.float() * s[:, None, None]).to(device=device, dtype=dtype)
    bias = (bn.bias.float() - bn.running_mean.float() * s).to(device=device, dtype=dtype)
    res = block.res
    one_to_one = res.in_channels == res.out_channels == res.groups
    scale = res.weight[:, 0, :].to(device=device, dtype=dtype) if one_to_one else None
    return weight, bias, scale


def silent_output_mask(x: torch.Tensor, left: int, right: int, threshold: float) -> torch.Tensor:
    """Output samples whose whole input reach is quiet: ``(B, C, T) → (B, T)`` bool.

    Sample ``t`` is ``True`` when every input sample in ``[t − left, t + right]`` inside the signal
    has ``max_c |x[c, s]| ≤ threshold`` (a linear amplitude). Such a sample sees only a quiet span
    longer than the receptive field (or quiet input plus the zero padding at a signal end).

    Args:
        x: ``(B, C, T)``.
        left, right: the network's reach in samples on each side (sums of ``block.pad``).
        threshold: linear amplitude, e.g. ``10 ** (−60 / 20)``.
    """
    loud = (x.abs().amax(dim=1) > threshold).to(torch.int64)
    b, length = loud.shape
    counts = F.pad(torch.cumsum(loud, dim=1), (1, 0))
    t = torch.arange(length, device=x.device)
    hi = torch.clamp(t + right + 1, max=length)
    lo = torch.clamp(t - left, min=0)
    return (counts[:, hi] - counts[:, lo]) == 0


def loud_pieces(quiet: torch.Tensor, left: int, right: int) -> list[tuple[int, int, int, int]]:
    """Input pieces that cover the non-quiet outputs of one row: ``[(a, s, e, b), …]``.

    Every run ``[s, e)`` of ``False`` in ``quiet`` ``(T,)`` (from :func:`silent_output_mask`) needs the
    input ``[a, b) = [max(0, s − left), min(T, e + right))``; the network on that piece alone gives
    the full pass's values on ``[s, e)`` exactly (every such sample's whole reach lies inside it or
    outside the signal). Overlapping pieces are merged, so no sample is computed twice, and the input
    between pieces (quiet spans longer than the receptive field) is never run through the network.
    """
    length = int(quiet.shape[0])
    keep = (~quiet.bool()).to(torch.int8).cpu()
    zero = torch.zeros(1, dtype=torch.int8)
    edges = torch.nonzero(torch.diff(torch.cat([zero, keep, zero]))).flatten().tolist()
    pieces: list[tuple[int, int, int, int]] = []
    for s, e in zip(edges[0::2], edges[1::2]):
        a, b = max(0, s - left), min(length, e + right)
        if pieces and a <= pieces[-1][3]:
            pieces[-1] = (pieces[-1][0], pieces[-1][1], e, b)
        else:
            pieces.append((a, s, e, b))
    return pieces
