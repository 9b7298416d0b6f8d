"""Where one paper-size Ψ layer spends its time in the tiled pass: the dilated conv vs the pointwise passes.

For one tile of one 128 → 128, k = 15 block (tile 37,197 samples, what the 1 GiB budget gives at the paper
size) at several dilations, it times, each the median of ``--repeats`` runs:

* the dilated conv as :func:`mixfx.models.tcn_inference.cloner_forward_tiled` runs it with
  ``conv="conv1d"`` and ``conv="taps"`` (its GFLOP/s beside the machine's 2048² fp32 GEMM rate);
* the three in-place pointwise passes the tiled pass applies to the conv output (LeakyReLU, FiLM
  ``γ·y + β`` into the next block's store, depthwise residual ``r ⊙ x``), exactly as it calls them;
* the same three as one separate fused pass into the same destination (``torch.compile`` of the pointwise
  expression, compiled afresh per dilation for the strided input slice the tiled pass uses; the compile
  time is its own column and not counted; ``--no-compile`` skips it), checked equal to the eager passes.

Two bounds follow. "pointwise share" = eager / (conv + eager) is the most a conv kernel that applied the
pointwise step in its own output loop (no separate pass) could save. "separate fused pass saves" =
(eager − fused) / (conv + eager) is what one fused pass after the conv saves.

    PYTHONPATH=. python benchmarks/bench_layer_breakdown.py [--dilations 1,64,1024,8192] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch
import torch.nn.functional as F

from bench_cloner_backward import median_seconds  # this folder (the script's own directory is on sys.path)
from bench_transfer import gemm_rates
from mixfx.cpu import cpu_name
from mixfx.models.tcn_inference import _conv_by_taps

CHANNELS, KERNEL, TILE, SLOPE = 128, 15, 37_197, 0.01


def _pointwise_eager(y: torch.Tensor, gamma, beta, centre, scale, dest: torch.Tensor) -> torch.Tensor:
    """The tiled pass's three in-place passes over a conv output ``y`` (see ``cloner_forward_tiled``)."""
    F.leaky_relu_(y, negative_slope=SLOPE)
    torch.addcmul(beta, y, gamma, out=dest)
    return dest.addcmul_(centre, scale)


def _pointwise_into(y, gamma, beta, centre, scale, dest):
    """The three passes as one expression written into ``dest`` (what torch.compile fuses into one loop)."""
    return dest.copy_(torch.where(y > 0, y, SLOPE * y) * gamma + beta + centre * scale)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dilations", default="1,64,1024,8192")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile-fused pointwise pass")
    args = p.parse_args()
    torch.manual_seed(0)
    gemm = gemm_rates()
    print(f"# {cpu_name()} ({torch.backends.cpu.get_cpu_capability()} kernels), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 GEMM 2048²: torch.mm {gemm['torch.mm'] / 1e9:.0f}, oneDNN "
          f"{gemm['oneDNN'] / 1e9:.0f} GFLOP/s (at the start); one tile of "
          f"{TILE} samples, {CHANNELS} → {CHANNELS} channels, k = {KERNEL}")
    gamma, beta = torch.randn(1, CHANNELS, 1), torch.randn(1, CHANNELS, 1)
    scale = torch.randn(CHANNELS, 1)
    print("| dilation | conv1d ms | conv1d GFLOP/s | taps ms | taps GFLOP/s | 3 pointwise passes ms | fused pass ms "
          "| compile s | pointwise share of the layer (faster conv) | separate fused pass saves |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    flops = 2 * CHANNELS * CHANNELS * KERNEL * TILE
    for d in (int(v) for v in args.dilations.split(",")):
        halo = (KERNEL - 1) * d
        x = 0.3 * torch.randn(1, CHANNELS, TILE + halo)
        weight = torch.randn(CHANNELS, CHANNELS, KERNEL) / (CHANNELS * KERNEL) ** 0.5
        bias = torch.randn(CHANNELS)
        taps = weight.permute(2, 0, 1).contiguous()
        dest = torch.empty(1, CHANNELS, TILE)
        centre = x[:, :, halo // 2:halo // 2 + TILE]
        with torch.inference_mode():
            conv1d = median_seconds(lambda: F.conv1d(x, weight, bias, dilation=d), args.repeats)
            by_taps = median_seconds(lambda: _conv_by_taps(x, taps, bias, d, TILE, out=dest), args.repeats)
            y0 = F.conv1d(x, weight, bias, dilation=d)
            work = y0.clone()
            eager = median_seconds(lambda: _pointwise_eager(work.copy_(y0), gamma, beta, centre, scale, dest),
                                    args.repeats) - median_seconds(lambda: work.copy_(y0), args.repeats)
            cell, compile_s, saving = "–", "–", "–"
            if not args.no_compile:
                torch._dynamo.reset()  # a fresh compile for this dilation's input strides
                fused = torch.compile(_pointwise_into, dynamic=False)
                start = time.perf_counter()
                got = fused(y0, gamma, beta, centre, scale, torch.empty_like(dest)).clone()
                compile_s = f"{time.perf_counter() - start:.1f}"
                expected = _pointwise_eager(y0.clone(), gamma, beta, centre, scale, dest.clone())
                if not torch.allclose(got, expected, rtol=1e-5, atol=1e-5):
                    raise SystemExit("the fused pointwise pass differs from the eager passes")
                one = median_seconds(lambda: fused(y0, gamma, beta, centre, scale, dest), args.repeats)
                cell = f"{one * 1e3:.1f}"
                saving = f"{(eager - one) / (min(conv1d, by_taps) + eager):.1%}"
        conv = min(conv1d, by_taps)
        print(f"| {d} | {conv1d * 1e3:.1f} | {flops / conv1d / 1e9:.0f} | {by_taps * 1e3:.1f} | {flops / by_taps / 1e9:.0f} "
              f"| {eager * 1e3:.1f} | {cell} | {compile_s} | {eager / (conv + eager):.1%} | {saving} |", flush=True)


if __name__ == "__main__":
    main()
