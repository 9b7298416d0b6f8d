"""MixFXcloner training on CPU: PyTorch's dilated-conv backward vs the two-convolution backward.

Times, in one run on the same machine, (1) one dilated ``conv1d`` forward + backward per dilation at
the ``small`` cloner's width and (2) one whole training step of the ``small`` cloner (forward, the
multi-scale spectral loss of eq. 1, backward) with :func:`mixfx.models.dilated_conv.dilated_conv1d`
(ours) against the same step with plain ``F.conv1d`` (PyTorch's autograd backward). Each figure is
the median of ``--repeats`` runs after a warm-up; the ratio is plain / ours.

    python benchmarks/bench_cloner_backward.py               # 1 thread, 4 × 1 s, like the small preset
    python benchmarks/bench_cloner_backward.py --threads 2 --seconds 2
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch
import torch.nn.functional as F

import mixfx.models.cloner as cloner_module
from mixfx.losses.spectral import SpectralLossConfig, spectral_loss
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.dilated_conv import dilated_conv1d


def median_seconds(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _plain(x, w, d):
    return F.conv1d(x, w, dilation=d)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t = int(args.seconds * 44100)
    config = dataclasses.replace(ClonerConfig.small(), input_skip=True)
    c, k = config.channels, config.kernel_size
    print(f"threads {args.threads}, batch {args.batch} × {args.seconds:g} s, width {c}, kernel {k}")
    print("| case | PyTorch backward (ms) | two-conv backward (ms) | ratio |")
    print("|---|---:|---:|---:|")
    for d in config.dilations():
        x = torch.randn(args.batch, c, t + (k - 1) * d, requires_grad=True)
        w = torch.randn(c, c, k, requires_grad=True)
        g = torch.randn(args.batch, c, t)
        plain = median_seconds(lambda: _plain(x, w, d).backward(g), args.repeats)
        ours = median_seconds(lambda: dilated_conv1d(x, w, d).backward(g), args.repeats)
        print(f"| conv fwd+bwd, dilation {d} | {plain * 1e3:.1f} | {ours * 1e3:.1f} | {plain / ours:.2f}× |")

    torch.manual_seed(0)
    net = MixFXCloner(config)
    x = 0.1 * torch.randn(args.batch, 2, t)
    gt = 0.1 * torch.randn(args.batch, 2, t)
    cond = torch.randn(args.batch, config.cond_dim)
    loss_config = SpectralLossConfig(fft_sizes=(4096, 2048, 1024, 512))

    def step() -> None:
        net.zero_grad(set_to_none=True)
        spectral_loss(net(x, cond), gt, config=loss_config).backward()

    ours = median_seconds(step, args.repeats)
    cloner_module.dilated_conv1d = _plain
    try:
        plain = median_seconds(step, args.repeats)
    finally:
        cloner_module.dilated_conv1d = dilated_conv1d
    print(f"| small cloner training step | {plain * 1e3:.0f} | {ours * 1e3:.0f} | {plain / ours:.2f}× |")


if __name__ == "__main__":
    main()
