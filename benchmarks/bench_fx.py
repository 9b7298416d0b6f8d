"""Real-time factor of the FXmanipulator: seconds of 44.1 kHz stereo audio processed per wall second.

Prints a table for the full chain (all six effects on) and each effect alone, on CPU with one
thread and with all threads, and on CUDA when present (batch 256 × 10 s there, as the issue asks).

    python benchmarks/bench_fx.py                 # batch 16 × 10 s on CPU (+ CUDA when present)
    python benchmarks/bench_fx.py --seconds 2     # quicker
    python benchmarks/bench_fx.py --no-cpu --profile   # CUDA only, with a kernel-time profile of the chain
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch

from mixfx.fx.chain import FXManipulator
from mixfx.fx.params import FX_NAMES, FXProbabilities

SR = 44100
STEMS = ("drums", "bass", "other", "vocals", "mixture")


def all_on() -> FXProbabilities:
    return FXProbabilities(1.0, 1.0, 1.0, 1.0, 1.0, {k: 1.0 for k in STEMS})


def bench_config(chain: FXManipulator, batch: int, single_fx: str | None = None):
    """Every effect on, stems vocals/other/bass/drums in turn (so the drums routing runs too)."""
    stems = (["vocals", "other", "bass", "drums"] * batch)[:batch]
    return chain.sample(batch, generator=torch.Generator().manual_seed(0), stems=stems, single_fx=single_fx,
                        probabilities=all_on())


def time_config(chain: FXManipulator, x: torch.Tensor, single_fx: str | None, repeats: int) -> float:
    config = bench_config(chain, x.shape[0], single_fx)
    chain.apply(x, config)  # warm-up (numba compile, FFT plans, CUDA kernels)
    best = float("inf")
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        chain.apply(x, config)
        if x.is_cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return x.shape[0] * x.shape[-1] / SR / best


def profile_cuda(chain: FXManipulator, x: torch.Tensor) -> None:
    config = bench_config(chain, x.shape[0])
    chain.apply(x, config)
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
        chain.apply(x, config)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cuda-batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU rows")
    parser.add_argument("--profile", action="store_true", help="print the CUDA kernel times of one full-chain call")
    args = parser.parse_args()

    chain = FXManipulator()
    rows = []
    cases = [("full chain", None)] + [(fx, fx) for fx in FX_NAMES]
    g = torch.Generator().manual_seed(1)
    x = 0.1 * torch.randn(args.batch, 2, int(args.seconds * SR), generator=g)
    all_threads = os.cpu_count() or 1
    for threads in [] if args.no_cpu else sorted({1, all_threads}):
        torch.set_num_threads(threads)
        for name, fx in cases:
            rows.append((f"cpu ×{threads} thread(s)", f"{args.batch}×{args.seconds:g}s", name, time_config(chain, x, fx, args.repeats)))
    torch.set_num_threads(all_threads)
    if torch.cuda.is_available():
        xc = 0.1 * torch.randn(args.cuda_batch, 2, int(args.seconds * SR), device="cuda")
        for name, fx in cases:
            rows.append((torch.cuda.get_device_name(), f"{args.cuda_batch}×{args.seconds:g}s", name, time_config(chain, xc, fx, args.repeats)))
        if args.profile:
            profile_cuda(chain, xc)

    print(f"machine: {platform.processor() or platform.machine()}, {all_threads} cores, torch {torch.__version__}")
    print(f"| device | batch | effect | real-time factor |\n|---|---|---|---:|")
    for dev, batch, name, rtf in rows:
        print(f"| {dev} | {batch} | {name} | {rtf:,.0f}× |")


if __name__ == "__main__":
    main()
