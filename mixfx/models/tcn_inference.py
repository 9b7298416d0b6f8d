"""Exact MixFXcloner inference without recomputed context, in bounded memory (issue 12).

:func:`mixfx.models.apply.apply_with_context` gives every window the cloner's full one-sided reach
of context on both sides; at the paper size (reach 114,681 samples) that recomputes ≈44 % of every
2^19-sample window. :func:`cloner_forward_tiled` instead streams the signal through the network
layer by layer: block ``n`` keeps a store of its own input holding its own halo,
``block.pad = ((k−1)·d_n/2, (k−1)·d_n/2)`` samples, and a few tiles; it turns each tile of new input
into the same number of new outputs, written straight into the next block's store. Every output sample of every layer is
computed exactly once, and the result equals one full-length ``cloner(x, cond)`` pass up to float
rounding (zero padding is applied per layer at the signal ends, exactly as the full pass does).

Memory (4-byte floats, ``B`` rows, block ``n`` with ``C_n`` input channels, ``C`` channels, tile ``L``):

.. math::

    \\text{bytes} \\approx 4 B \\Big[2 \\sum_n C_n (p_n^{\\text{left}} + p_n^{\\text{right}})
        + L \\big(3 \\sum_n C_n + 5 C\\big)\\Big]

independent of the signal length (each store holds two halos and three tiles so that moving its
live part to the front is one non-overlapping copy every few tiles; the halo term is ≈235 MB per
row at paper size);
:func:`tile_for_memory` solves it for ``L``.

Kernels (``fused=True``, the default): BatchNorm is folded into the dilated conv
(``W' = W·s``, ``b' = β − μ·s`` with ``s = γ_BN / √(σ² + ε)`` per output channel), the LeakyReLU,
the FiLM ``γ·y + β`` and a depthwise residual ``r ⊙ x`` are applied in place on the conv output
(no new tensors per layer; the FiLM pass writes conv1d's result into the next block's store), and
everything runs under :func:`torch.inference_mode`. The conv itself (``conv``):

- ``"auto"`` (default): the kernel measured fastest for the CPU (:func:`auto_kernel`;
  ``benchmarks/bench_transfer.py`` prints what it picks):

  * Intel CPUs with AVX-512 kernels, cloners of ≥ 64 channels (:data:`TAPS_FROM_CHANNELS`): the per-tap
    GEMMs (``"taps"``). On a 2-core Intel Xeon with AVX-512 and AMX (2026-12-03) they ran the paper-size
    pass at 74 % of the best GEMM against 60 % for conv1d and 53 % for the phase split below (1.31× and
    1.39× faster); at 32 and 64 channels taps and conv1d tied, at 16 channels taps were 1.3× slower, and
    the phase split was slower than conv1d at every width. An Intel Sapphire Rapids measured taps 1.46×
    faster than conv1d at the paper size.
  * other CPUs with AVX-512 kernels (measured on AMD): :func:`torch.nn.functional.conv1d` (oneDNN), with
    convs of dilation ``d ≥ 1024`` run as one conv of dilation 64 over the ``d / 64`` interleaved phases
    of the input (:func:`_conv_by_phases`: same kernel, same values; one copy of the input into phase
    order). On a 2-core AMD EPYC with AVX-512 oneDNN's conv1d ran at 270–310 GFLOP/s up to d = 512,
    but fell to ≈ 130 at d = 2048 and ≈ 100 at d = 8192 (the taps of one output lie 14·d samples
    apart); split into phases those layers ran at 170–250, while taps ran 2.0× slower than conv1d (MKL's
    GEMM reaches only ≈ 180 GFLOP/s there against oneDNN's ≈ 340).
  * everything else (CUDA, AVX2, narrow Intel cloners): the plain conv1d. On a 2-core AMD EPYC with AVX2
    (Zen 3) oneDNN's conv1d kept its rate at every dilation (≈ 140 GFLOP/s, about the GEMM rate) and the
    phase split made the whole pass 11 % slower.
- ``"conv1d"``: always the direct conv1d.
- ``"taps"``: ``k`` GEMMs ``y += W_j · x[:, j·d : j·d + L]`` on shifted time slices of the buffer
  (:func:`_conv_by_taps`: no copies, cost independent of the dilation); it runs at the BLAS GEMM rate.

``fused=False`` runs the module's own layers (``block.bn``, ``block.res``), for comparison.

Example:
    >>> psi = MixFXCloner(ClonerConfig.tiny(cond_dim=8)).eval()              # doctest: +SKIP
    >>> y = cloner_forward_tiled(psi, x, cond, max_memory=2**28)              # == psi(x, cond)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from mixfx.cpu import cpu_vendor
from mixfx.errors import MixfxError
from mixfx.progress import ProgressFn

CONV_KERNELS = ("auto", "conv1d", "taps")
STORE_HALOS, STORE_TILES = 2, 3  # a block's input store: 2 halos + 3 tiles (see _LayerInput)
PHASE_FROM, PHASE_DILATION = 1024, 64  # "phases": convs of dilation ≥ 1024 run as dilation-64 convs over d / 64 phases
AVX512_CAPABILITIES = ("AVX512",)  # torch.backends.cpu.get_cpu_capability() prefixes of the AVX-512 rules of auto_kernel
TAPS_FROM_CHANNELS = 64  # on Intel AVX-512 CPUs, "auto" runs per-tap GEMMs from this width on

__all__ = ["CONV_KERNELS", "auto_kernel", "cloner_forward_tiled", "loud_pieces", "silent_output_mask", "tiled_memory_bytes", "tile_for_memory"]


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
        ``bytes_per_value · batch · (Σ C_n·store_n + 5·C·L)`` with ``store_n = 2·halo_n + 3·L`` samples
        per block (:func:`store_length`) and ``5·C·L`` for the working tensors (see the module
        docstring); the full-length output ``(batch, out_channels, T)`` is not included.
    """
    halo, cin, width = _sizes(cloner)
    return int(bytes_per_value * batch * (STORE_HALOS * halo + tile * (STORE_TILES * cin + 5 * width)))


def tile_for_memory(cloner: torch.nn.Module, batch: int, max_memory: int, *, bytes_per_value: int = 4) -> int:
    """Longest tile whose :func:`tiled_memory_bytes` fits in ``max_memory`` bytes.

    Raises:
        MixfxError: ``max_memory`` is below what the halos plus a one-sample tile need.
    """
    halo, cin, width = _sizes(cloner)
    per_row = max_memory / (bytes_per_value * max(int(batch), 1))
    tile = int((per_row - STORE_HALOS * halo) // (STORE_TILES * cin + 5 * width))
    if tile < 1:
        need = tiled_memory_bytes(cloner, batch, 1, bytes_per_value=bytes_per_value)
        raise MixfxError(f"cloner_forward_tiled: max_memory {int(max_memory)} bytes is below the {need} bytes that "
                         f"the layer halos of {batch} row(s) need; raise max_memory or convert fewer rows at once")
    return tile


def cloner_forward_tiled(cloner: torch.nn.Module, x: torch.Tensor, cond: torch.Tensor | Sequence[torch.Tensor], *,
                         tile: int | None = None, max_memory: int | None = None, device=None,
                         progress: ProgressFn | None = None, fused: bool = True, conv: str = "auto") -> torch.Tensor:
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
        conv: kernel of the fused dilated convs: ``"auto"`` (conv1d; on a CPU the large dilations
            split into phases), ``"conv1d"`` (:func:`torch.nn.functional.conv1d` always) or
            ``"taps"`` (``k`` GEMMs on shifted slices); see the module docstring. All give the same
            values to float rounding.

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
        kernel = _kernel(conv, device, cloner.config.channels)
        taps, phases = kernel == "taps" and fused, kernel == "phases"
        kernels = [_fused_layer(block, device, dtype, taps) if fused else None for block in blocks]
        # block n's input from absolute sample emitted[n] − pad[n][0] on; block n writes its output
        # straight into block n + 1's input (the last block into a working tensor)
        inputs = [_LayerInput(b, blk.conv1.in_channels, blk.pad, tile, device, dtype) for blk in blocks]
        received, emitted, closed = [0] * len(blocks), [0] * len(blocks), [False] * len(blocks)
        fed = done = 0
        while done < length:
            if fed < length:
                piece = x[:, :, fed:fed + tile]
                inputs[0].reserve(piece.shape[-1]).copy_(piece)
                received[0] += piece.shape[-1]
                fed += piece.shape[-1]
            chunk = None
            for n, block in enumerate(blocks):
                left, right = block.pad
                buf = inputs[n]
                if received[n] == length and not closed[n]:  # zero padding past the end, as in the full pass
                    buf.reserve(right).zero_()
                    closed[n] = True
                count = min(buf.available - left - right, tile, length - emitted[n])
                if count <= 0:
                    chunk = None
                    continue
                inp = buf.window(count + left + right)
                last = n + 1 == len(blocks)
                dest = None if last else inputs[n + 1].reserve(count)
                if not last:
                    received[n + 1] += count
                gamma, beta = films[n]
                if kernels[n] is None:
                    y = F.conv1d(inp, block.conv1.weight, dilation=block.conv1.dilation)
                    y = F.leaky_relu(block.bn(y), negative_slope=0.01)
                    chunk = gamma * y + beta + block.res(inp[:, :, left:left + count])
                else:
                    weight, bias, scale = kernels[n]
                    dilation = block.conv1.dilation[0]
                    if taps:
                        chunk = _conv_by_taps(inp, weight, bias, dilation, count, out=dest)
                    elif phases and dilation >= PHASE_FROM and dilation % PHASE_DILATION == 0:
                        chunk = _conv_by_phases(inp, weight, bias, dilation, count, out=dest)
                    else:
                        chunk = F.conv1d(inp, weight, bias, dilation=dilation)
                    F.leaky_relu_(chunk, negative_slope=0.01)
                    target = chunk if dest is None else dest  # conv1d's new tensor: FiLM writes the copy
                    chunk = torch.addcmul(beta, chunk, gamma, out=target)  # γ·y + β in one pass
                    centre = inp[:, :, left:left + count]
                    if scale is not None:
                        chunk.addcmul_(centre, scale)
                    else:
                        chunk.add_(block.res(centre))
                if dest is not None and chunk is not dest:
                    dest.copy_(chunk)
                buf.consume(count)
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


class _LayerInput:
    """The unconsumed input of one block, ``(B, C, ·)``, in a store allocated once.

    New samples are written at the end (:meth:`reserve` returns the view to write into), consumed
    samples leave at the front (:meth:`consume`). When the end of the store is reached, the live part
    is moved to its front — at most ``left + right + tile`` samples, every few tiles, instead of a copy
    of the whole buffer per tile. The store holds ``2·(left + right) + 3·tile`` samples, so the move's
    source and destination do not overlap (live ≤ left + right whenever a tile arrives); the zero
    padding at the signal's end can find less room, and then a fresh store is allocated.
    """

    def __init__(self, rows: int, channels: int, pad: tuple[int, int], tile: int, device, dtype) -> None:
        left, right = pad
        self.capacity = store_length(pad, tile)
        self.store = torch.empty(rows, channels, self.capacity, device=device, dtype=dtype)
        self.store[:, :, :left].zero_()  # the zero padding before the signal, as in the full pass
        self.lo, self.hi = 0, left

    @property
    def available(self) -> int:
        return self.hi - self.lo

    def window(self, n: int) -> torch.Tensor:
        """The first ``n`` unconsumed samples (a view)."""
        return self.store[:, :, self.lo:self.lo + n]

    def consume(self, n: int) -> None:
        self.lo += n

    def reserve(self, m: int) -> torch.Tensor:
        """A view of ``m`` new samples at the end, to be written by the caller."""
        if self.hi + m > self.store.shape[-1]:
            live = self.hi - self.lo
            if live > self.lo or live + m > self.store.shape[-1]:  # not reached with the store's length
                fresh = torch.empty(*self.store.shape[:2], max(self.capacity, live + m),
                                    device=self.store.device, dtype=self.store.dtype)
                fresh[:, :, :live].copy_(self.store[:, :, self.lo:self.hi])
                self.store = fresh
            else:
                self.store[:, :, :live].copy_(self.store[:, :, self.lo:self.hi])
            self.lo, self.hi = 0, live
        view = self.store[:, :, self.hi:self.hi + m]
        self.hi += m
        return view


def store_length(pad: tuple[int, int], tile: int) -> int:
    """Samples of one block's input store: ``2·(left + right) + 3·tile`` (see :class:`_LayerInput`)."""
    return STORE_HALOS * (pad[0] + pad[1]) + STORE_TILES * tile


def _on(t: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """``t`` on ``device`` as ``dtype``, without a call when it is already there (no per-tile copies)."""
    return t if t.device == device and t.dtype == dtype else t.to(device=device, dtype=dtype)


def auto_kernel(device: torch.device, channels: int) -> str:
    """The conv kernel ``conv="auto"`` runs for a cloner of ``channels`` channels on ``device``:
    ``"taps"``, ``"phases"`` (conv1d with the phase split at large dilations) or ``"conv1d"``
    (the rules and their measurements are in the module docstring)."""
    if device.type != "cpu" or not torch.backends.cpu.get_cpu_capability().startswith(AVX512_CAPABILITIES):
        return "conv1d"
    if cpu_vendor() == "GenuineIntel":
        return "taps" if channels >= TAPS_FROM_CHANNELS else "conv1d"
    return "phases"


def _kernel(conv: str, device: torch.device, channels: int) -> str:
    """The kernel of ``conv`` (``auto`` resolved by :func:`auto_kernel`); validates ``conv``."""
    if conv not in CONV_KERNELS:
        raise MixfxError(f"cloner_forward_tiled: conv must be one of {', '.join(CONV_KERNELS)}, got {conv!r}")
    return auto_kernel(device, channels) if conv == "auto" else conv


def _conv_by_phases(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, dilation: int, count: int,
                    out: torch.Tensor | None = None, step: int = 0) -> torch.Tensor:
    """``F.conv1d(x, W, bias, dilation=d)[..., :count]`` as one conv of dilation ``step`` over ``P = d / step``
    interleaved phases.

    Output sample ``t = q·P + r`` only reads inputs ``≡ r (mod P)``:
    ``y[qP + r] = Σ_j W_j · x[(q + j·step)·P + r]``, a conv of dilation ``step`` over the phase
    ``x[r::P]``. The ``P`` phases become the batch of one :func:`torch.nn.functional.conv1d` (one
    copy of the input into phase order; the output goes back to time order in the copy into ``out``).
    The same kernel on the same products, so the values equal the direct conv; what changes is the
    memory access: the taps of one output lie ``step`` phase samples apart instead of ``d`` samples,
    and oneDNN's dilated conv slows down at large dilations (see the module docstring).
    ``step`` (default :data:`PHASE_DILATION`) must divide ``d``.
    """
    step = step or PHASE_DILATION
    if dilation % step:
        raise ValueError(f"_conv_by_phases: step {step} does not divide the dilation {dilation}")
    p = dilation // step
    b, c, n = x.shape
    m = -(-n // p)  # samples per phase (the last one zero-padded)
    phased = x.new_empty(b, p, c, m)
    as_time = phased.permute(0, 2, 3, 1)  # (b, c, m, p) view: as_time[..., q, r] is sample q·p + r
    full = n // p
    as_time[:, :, :full].copy_(x[:, :, :full * p].view(b, c, full, p))
    if full < m:
        as_time[:, :, full, :n - full * p].copy_(x[:, :, full * p:])
        as_time[:, :, full, n - full * p:].zero_()
    y = F.conv1d(phased.view(b * p, c, m), weight, bias, dilation=step)  # (b·p, C_out, m − (k−1)·step)
    y = y.view(b, p, y.shape[1], y.shape[2]).permute(0, 2, 3, 1)  # (b, C_out, q, p): sample q·p + r
    if out is None:
        out = torch.empty(b, y.shape[1], count, dtype=x.dtype, device=x.device)
    whole = count // p
    out[:, :, :whole * p].view(b, y.shape[1], whole, p).copy_(y[:, :, :whole])
    if whole * p < count:
        out[:, :, whole * p:].copy_(y[:, :, whole, :count - whole * p])
    return out


def _conv_by_taps(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor, dilation: int, count: int,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """``F.conv1d(x, W, bias, dilation=d)`` as ``k`` GEMMs: ``y[b] = bias + Σ_j W_j · x[b, :, j·d : j·d + count]``.

    ``taps`` is ``W`` as ``(k, C_out, C_in)``. Each tap's input is a contiguous time slice of the
    buffer (row stride = the buffer length), so nothing is copied and the cost does not depend on the
    dilation.
    ``out`` (``(B, C_out, count)``, any row stride) receives the result, e.g. the next block's input.
    """
    if out is None:
        out = torch.empty(x.shape[0], taps.shape[1], count, dtype=x.dtype, device=x.device)
    column = bias.unsqueeze(1)
    for r in range(x.shape[0]):
        torch.addmm(column, taps[0], x[r, :, :count], out=out[r])
        for j in range(1, taps.shape[0]):
            out[r].addmm_(taps[j], x[r, :, j * dilation:j * dilation + count])
    return out


def _fused_layer(block: torch.nn.Module, device, dtype,
                 taps: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(W', b', r)`` of a block in eval mode: the conv weight and bias with BatchNorm folded in, and
    the depthwise residual as a ``(C, 1)`` scale (``None`` when the residual conv is not one-to-one).
    With ``taps``, ``W'`` comes as ``(k, C_out, C_in)`` for :func:`_conv_by_taps`."""
    bn = block.bn  # folded in float32 whatever the weights' dtype, then cast
    s = bn.weight.float() / torch.sqrt(bn.running_var.float() + bn.eps)
    weight = block.conv1.weight.float() * s[:, None, None]
    weight = (weight.permute(2, 0, 1).contiguous() if taps else weight).to(device=device, dtype=dtype)
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
