"""Throughput of MixFXcloner inference: context windows (earlier path) vs the tiled layer-by-layer pass.

Prints one table: the measured fp32 GEMM rate (``torch.mm`` of two 2048² matrices), then per cloner
size and path the audio seconds (44.1 kHz stereo) converted per wall second and the useful FLOP rate
as a share of the GEMM rate. Useful FLOPs per output sample: ``2·C_in·C_out·k`` for every dilated
conv, ``2·C_out`` for every depthwise residual and for every FiLM, and ``2·C·out_channels`` for the
output conv; context windows do more work than that (their recomputed context), which is what
the share shows.

At the paper size a real 2^19-sample context window takes minutes on a CPU, so the row
"context windows (derived)" is the measured one-pass rate times the kept share
``(segment − 2·reach) / segment`` (0.5625 for 2^19); at the tiny size context windows are measured.

    python benchmarks/bench_transfer.py                      # paper 2^15 samples, tiny 30 s
    python benchmarks/bench_transfer.py --paper-samples 8192 --tiny-seconds 5
"""

from __future__ import annotations

import argparse
import platform
import time

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch

from mixfx.models.apply import apply_with_context, cloner_context
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.tcn_inference import cloner_forward_tiled, tile_for_memory

SR = 44100


def gemm_rate(n: int = 2048, repeats: int = 5) -> float:
    """fp32 FLOP/s of ``torch.mm`` on ``n × n`` matrices."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    t = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * n**3 * repeats / (time.perf_counter() - t)


def flops_per_sample(cloner: MixFXCloner) -> int:
    """Useful FLOPs per output sample (conv layers, residuals, FiLM, output conv)."""
    total = 0
    for b in cloner.blocks:
        cin, cout, k = b.conv1.in_channels, b.conv1.out_channels, b.conv1.kernel_size[0]
        total += 2 * cin * cout * k + 2 * cout + 2 * cout
    return total + 2 * cloner.output.in_channels * cloner.output.out_channels


def timed(fn) -> float:
    t = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - t


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper-samples", type=int, default=2**15, help="signal length at the paper size")
    p.add_argument("--tiny-seconds", type=float, default=30.0, help="signal length at the tiny size")
    p.add_argument("--segment", type=int, default=2**19, help="context-window length (StyleTransfer's segment)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    gemm = gemm_rate()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 GEMM (torch.mm 2048²): {gemm / 1e9:.1f} GFLOP/s")
    print(f"| size | samples | path | tile | audio s/s | GFLOP/s (useful) | share of GEMM |")
    print("|---|---:|---|---:|---:|---:|---:|")

    def row(size, n, path, tile, seconds, cloner):
        rate = n * flops_per_sample(cloner) / seconds
        print(f"| {size} | {n} | {path} | {tile} | {n / SR / seconds:.3f} | {rate / 1e9:.2f} | {rate / gemm:.1%} |")

    for size, config, n in (("paper", ClonerConfig.paper(), args.paper_samples),
                            ("tiny", ClonerConfig.tiny(), int(args.tiny_seconds * SR))):
        cloner = MixFXCloner(config).eval()
        x = 0.3 * torch.randn(1, 2, n)
        e = torch.randn(1, config.cond_dim)
        reach = cloner_context(cloner)
        one = timed(lambda: cloner(x, e))
        row(size, n, "eager cloner(x, cond), one pass", n, one, cloner)
        core = args.segment - 2 * reach
        if size == "paper" and n < args.segment:
            row(size, n, f"context windows {args.segment} (derived, keeps {core / args.segment:.1%})", "",
                one * args.segment / core, cloner)
        else:
            ctx = timed(lambda: apply_with_context(lambda c, i: cloner(c, e), x, window=args.segment,
                                                   context=reach))
            row(size, n, f"context windows {args.segment} (eager, today's path)", "", ctx, cloner)
        for budget in (2**30, 2**28):
            tile = min(tile_for_memory(cloner, 1, budget), n)
            dt = timed(lambda: cloner_forward_tiled(cloner, x, e, tile=tile))
            row(size, n, f"tiled, max_memory {budget >> 20} MiB", tile, dt, cloner)
        tile = 4096
        dt = timed(lambda: cloner_forward_tiled(cloner, x, e, tile=tile))
        row(size, n, "tiled", tile, dt, cloner)


if __name__ == "__main__":
    main()
