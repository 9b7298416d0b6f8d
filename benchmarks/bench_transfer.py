"""Throughput of MixFXcloner inference: context windows (earlier path) vs the tiled layer-by-layer pass.

Prints one table: per cloner size and path the audio seconds (44.1 kHz stereo) converted per wall
second and the useful FLOP rate as a share of the machine's fp32 GEMM rate — ``torch.mm`` (MKL) and
a 1×1 ``conv1d`` (oneDNN) of two 2048² matrices, measured just before and just after every timed
run (a shared VM's speed drifts within minutes). Useful FLOPs per output sample: ``2·C_in·C_out·k``
for every dilated conv, ``2·C_out`` for every depthwise residual and for every FiLM, and
``2·C·out_channels`` for the output conv; context windows do more work than that (their
recomputed context), which is what the share shows. The tiled pass is timed with each conv kernel
(``cloner_forward_tiled(conv=...)``) and with the module's own layers, alternated.

At the paper size a real 2^19-sample context window takes minutes on a CPU, so the row
"context windows (derived)" is the measured one-pass rate times the kept share
``(segment − 2·reach) / segment`` (0.5625 for 2^19); at the tiny size context windows are measured.

The second table times ``mixfx transfer`` (:func:`mixfx.pipelines.transfer.transfer`) end to end on
a synthetic 4-stem song (default 3 minutes) with a synthetic reference (default 3 minutes), split
into load (audio and models), reference (reading and embedding the reference stems), Ψ (FX
normalization is off: no features) and write, for the earlier path (context windows, every
reference segment, one song at a time: ``TransferConfig(context_windows=True,
reference_segments=None)``) and ours (tiled Ψ, at most 8 reference segments), in the same run,
and the ratio. At the paper size a 3-minute song takes about an hour of Ψ on a 2-core CPU; shorter
runs scale the song (``--e2e-seconds``), the cloner width (``--e2e-channels``; the receptive field
and so the context-window overhead stay the paper's) and the encoder (``--e2e-encoder tiny``).

    PYTHONPATH=. python benchmarks/bench_transfer.py                     # paper kernels + 3-min song
    PYTHONPATH=. python benchmarks/bench_transfer.py --paper-samples 8192 --tiny-seconds 5 \
        --e2e-seconds 20 --e2e-channels 32 --reference-seconds 60 --reference-segment 65536
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch
import torch.nn.functional as F

from mixfx.cpu import cpu_name, cpu_vendor
from mixfx.models.apply import apply_with_context, cloner_context
from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.tcn_inference import cloner_forward_tiled, tile_for_memory

SR = 44100


def gemm_rates(n: int = 2048, repeats: int = 3) -> dict[str, float]:
    """fp32 FLOP/s of an ``n × n`` by ``n × n`` GEMM through the two CPU GEMM libraries torch uses:
    ``torch.mm`` (BLAS: MKL in the pip wheels) and a 1×1 ``conv1d`` (oneDNN, which also runs Ψ's
    convs). They differ by up to 2× on some CPUs (MKL takes a slower path on AMD), so the floor is
    the faster of the two."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    x, w = b.unsqueeze(0), a.unsqueeze(-1)  # conv1d(x, w) = a @ b
    rates = {}
    with torch.inference_mode():
        for name, fn in (("torch.mm", lambda: torch.mm(a, b)), ("oneDNN", lambda: F.conv1d(x, w))):
            fn()
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
            rates[name] = 2 * n**3 * repeats / (time.perf_counter() - t)
    return rates


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


class Floor:
    """The GEMM floor measured around every timed run: the machine's load drifts (a shared 2-core
    VM moved by ±30 % within minutes here), so each row's share is taken against the GEMM rate
    measured just before and just after it (their mean), not against one reading at the start."""

    def __init__(self) -> None:
        self.readings: list[dict[str, float]] = []

    def run(self, fn, warm_up: bool = False) -> tuple[float, dict[str, float]]:
        """``fn``'s wall time and the GEMM rates around it; ``warm_up`` runs it once untimed first
        (kernel selection and first-touch page faults are a per-call cost only a short run notices)."""
        if warm_up:
            timed(fn)
        before = gemm_rates()
        seconds = timed(fn)
        after = gemm_rates()
        self.readings += [before, after]
        return seconds, {k: (before[k] + after[k]) / 2 for k in before}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper-samples", type=int, default=2**19,
                   help="signal length at the paper size (long enough that the stores' first-touch cost amortizes)")
    p.add_argument("--tiny-seconds", type=float, default=30.0, help="signal length at the tiny size")
    p.add_argument("--segment", type=int, default=2**19, help="context-window length (StyleTransfer's segment)")
    p.add_argument("--skip-kernels", action="store_true", help="only the end-to-end table")
    p.add_argument("--ab-repeats", type=int, default=3,
                   help="alternated runs of the tiled pass per kernel (fused=False, conv1d, taps, auto = ours)")
    p.add_argument("--e2e-seconds", type=float, default=180.0, help="synthetic song length (0: skip end to end)")
    p.add_argument("--e2e-channels", type=int, default=128, help="cloner width of the end-to-end run (paper 128)")
    p.add_argument("--e2e-encoder", choices=["paper", "tiny"], default="paper")
    p.add_argument("--reference-seconds", type=float, default=180.0, help="synthetic reference length")
    p.add_argument("--reference-segment", type=int, default=2**19, help="encoder segment (official 2^19)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    gemm = gemm_rates()
    print(f"# {cpu_name()} ({torch.backends.cpu.get_cpu_capability()} kernels), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; fp32 GEMM 2048² at the "
          f"start: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in gemm.items()))
    if not args.skip_kernels:
        kernels(args)
    if args.e2e_seconds > 0:
        end_to_end(args)


def _auto_kernel(channels: int) -> str:
    """What ``conv="auto"`` runs on this CPU for a cloner of ``channels`` channels."""
    from mixfx.models import tcn_inference

    kernel = tcn_inference.auto_kernel(torch.device("cpu"), channels)
    return {"phases": f"conv1d + phase split at d ≥ {tcn_inference.PHASE_FROM}", "taps": "per-tap GEMMs",
            "conv1d": "conv1d"}[kernel] + f" on {cpu_vendor()} {torch.backends.cpu.get_cpu_capability()}"


def kernels(args) -> None:
    """The Ψ table: eager one pass, context windows, and the tiled pass with each kernel."""
    floor = Floor()
    print("\nShares: useful FLOP/s over the fp32 GEMM rate measured around the same run (mean of the readings "
          "just before and after); 'best' is the faster of torch.mm (MKL) and oneDNN.")
    print("| size | samples | path | tile | audio s/s | GFLOP/s (useful) | GEMM torch.mm / oneDNN | "
          "share of torch.mm | share of best GEMM |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")

    def row(size, n, path, tile, seconds, gemm, cloner):
        rate = n * flops_per_sample(cloner) / seconds
        mm, dnn = gemm["torch.mm"], gemm["oneDNN"]
        print(f"| {size} | {n} | {path} | {tile} | {n / SR / seconds:.3f} | {rate / 1e9:.1f} | "
              f"{mm / 1e9:.0f} / {dnn / 1e9:.0f} | {rate / mm:.0%} | {rate / max(mm, dnn):.0%} |", flush=True)

    for size, config, n in (("paper", ClonerConfig.paper(), args.paper_samples),
                            ("tiny", ClonerConfig.tiny(), int(args.tiny_seconds * SR))):
        cloner = MixFXCloner(config).eval()
        x = 0.3 * torch.randn(1, 2, n)
        e = torch.randn(1, config.cond_dim)
        reach = cloner_context(cloner)
        warm = size == "tiny"  # the paper-size signal is long enough to carry its one-off costs
        one, gemm = floor.run(lambda: cloner(x, e), warm)
        row(size, n, "eager cloner(x, cond), one pass", n, one, gemm, cloner)
        core = args.segment - 2 * reach
        if size == "paper":
            row(size, n, f"context windows {args.segment} (derived, keeps {core / args.segment:.1%})", "",
                one * args.segment / core, gemm, cloner)
        else:
            ctx, gemm = floor.run(lambda: apply_with_context(lambda c, i: cloner(c, e), x, window=args.segment,
                                                             context=reach), warm)
            row(size, n, f"context windows {args.segment} (eager, today's path)", "", ctx, gemm, cloner)
        small = min(tile_for_memory(cloner, 1, 2**28), n)  # the 1 GiB default is the alternated rows below
        dt, gemm = floor.run(lambda: cloner_forward_tiled(cloner, x, e, tile=small), warm)
        row(size, n, "tiled, max_memory 256 MiB (ours)", small, dt, gemm, cloner)
        tile = min(tile_for_memory(cloner, 1, 2**30), n)
        variants = {"tiled, module's own BN / residual layers (fused=False)": dict(fused=False),
                    "tiled, fused, direct conv1d (conv='conv1d')": dict(conv="conv1d"),
                    "tiled, fused, per-tap GEMMs (conv='taps')": dict(conv="taps"),
                    f"tiled, fused, conv='auto' (ours: {_auto_kernel(cloner.config.channels)})": dict(conv="auto")}
        ours_name = list(variants)[-1]
        runs = {name: [] for name in variants}
        for _ in range(args.ab_repeats):  # alternated, so drifting load hits every variant alike
            for name, kw in variants.items():
                runs[name].append(floor.run(lambda: cloner_forward_tiled(cloner, x, e, tile=tile, **kw), warm))
        ours = [dt for dt, _ in runs[ours_name]]
        for name, pairs in runs.items():
            k = sorted(range(len(pairs)), key=lambda i: pairs[i][0])[len(pairs) // 2]  # the median run
            ratios = sorted(dt / o for (dt, _), o in zip(pairs, ours))
            spread = "" if name == ours_name else (
                f"; time / ours median {ratios[len(ratios) // 2]:.2f}×, range {ratios[0]:.2f}–{ratios[-1]:.2f}×")
            shares = sorted(n * flops_per_sample(cloner) / dt / max(g.values()) for dt, g in pairs)
            spread += (f"; share of best GEMM run by run (each against its own readings) median "
                       f"{shares[len(shares) // 2]:.0%}, range {shares[0]:.0%}–{shares[-1]:.0%}")
            row(size, n, f"{name}, max_memory 1024 MiB (median of {len(pairs)} alternated{spread})", tile, pairs[k][0], pairs[k][1], cloner)
        half = copy.deepcopy(cloner).to(torch.bfloat16)
        with torch.no_grad():
            exact = cloner(x, e)
        dt, gemm = floor.run(lambda: cloner_forward_tiled(half, x, e, tile=tile), warm)
        err = float((cloner_forward_tiled(half, x, e, tile=tile) - exact).abs().max())
        row(size, n, f"tiled, bf16 weights (opt-in --bf16; max |err| vs fp32 {err:.1e}, not exact)", tile, dt, gemm,
            cloner)
    for name in ("torch.mm", "oneDNN"):
        seen = sorted(r[name] / 1e9 for r in floor.readings)
        print(f"\n# {name} GEMM readings during the table: {seen[0]:.0f}–{seen[-1]:.0f} GFLOP/s "
              f"(median {seen[len(seen) // 2]:.0f}, {len(seen)} readings)", end="")
    print()


# ----------------------------------------------------------------------------------------- end to end


def _write_song(folder: Path, seconds: float, seed: int) -> Path:
    """Four synthetic stems: band-limited noise bursts at different levels (no long silences)."""
    import numpy as np
    import soundfile as sf

    g = np.random.default_rng(seed)
    n = int(seconds * SR)
    folder.mkdir(parents=True)
    envelope = 0.5 + 0.5 * np.abs(np.sin(np.arange(n) / SR * 2 * np.pi * 0.5))
    for k, stem in enumerate(("drums", "bass", "other", "vocals")):
        x = g.standard_normal((n, 2)).astype(np.float32)
        if stem == "bass":
            x = np.cumsum(x, axis=0) * 0.002
            x -= x.mean(axis=0)
        sf.write(folder / f"{stem}.wav", (0.05 * (k + 1) * envelope[:, None] * x).astype(np.float32), SR,
                 subtype="FLOAT")
    return folder


class _StageClock:
    """Accumulates wall time of wrapped functions per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, stage: str, fn):
        def timed_call(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t
        return timed_call


def _timed_transfer(song: Path, reference: Path, out: Path, enc: Path, cl: Path, config) -> dict[str, float]:
    """``transfer`` with its stages timed (the stage functions are wrapped only for this call;
    ``convert_stems`` goes through ``convert_songs``, so Ψ is counted once)."""
    from unittest import mock

    from mixfx.models.style_transfer import StyleTransfer
    from mixfx.pipelines import transfer as pipeline

    clock = _StageClock()
    read = pipeline.load_stems

    def load_stems(src, **kw):  # reading the reference counts for the reference stage
        return clock.wrap("reference" if Path(src.path) == reference else "load", read)(src, **kw)

    start = time.perf_counter()
    with mock.patch.object(pipeline, "load_stems", load_stems), \
            mock.patch.object(pipeline, "load_models", clock.wrap("load", pipeline.load_models)), \
            mock.patch.object(StyleTransfer, "embed_stems", clock.wrap("reference", StyleTransfer.embed_stems)), \
            mock.patch.object(StyleTransfer, "convert_songs", clock.wrap("Ψ", StyleTransfer.convert_songs)), \
            mock.patch.object(pipeline, "_write_song", clock.wrap("write", pipeline._write_song)):
        pipeline.transfer(song, reference, out, encoder=enc, cloner=cl, device="cpu", config=config)
    clock.seconds["total"] = time.perf_counter() - start
    return clock.seconds


def end_to_end(args) -> None:
    """The ``mixfx transfer`` table: earlier path vs ours on one synthetic song, same run."""
    import dataclasses

    from mixfx.io.checkpoint import save_model_checkpoint
    from mixfx.models.encoder import FXEncoder, FXEncoderConfig
    from mixfx.pipelines.transfer import TransferConfig

    torch.manual_seed(0)
    enc_config = FXEncoderConfig.paper() if args.e2e_encoder == "paper" else FXEncoderConfig.tiny()
    cl_config = dataclasses.replace(ClonerConfig.paper(), channels=args.e2e_channels, cond_dim=enc_config.dim)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        enc = save_model_checkpoint(root / "enc.pt", FXEncoder(enc_config))
        cl = save_model_checkpoint(root / "cl.pt", MixFXCloner(cl_config))
        song = _write_song(root / "song", args.e2e_seconds, 1)
        ref = _write_song(root / "ref", args.reference_seconds, 2)
        common = dict(segment=args.segment, reference_segment=args.reference_segment)
        paths = {"earlier: context windows, all reference segments":
                 TransferConfig(context_windows=True, reference_segments=None, songs_per_batch=1, **common),
                 "ours: tiled Ψ, ≤ 8 reference segments": TransferConfig(**common)}
        times, outputs = {}, {}
        for k, (name, config) in enumerate(paths.items()):
            times[name] = _timed_transfer(song, ref, root / f"out{k}", enc, cl, config)
            outputs[name] = root / f"out{k}" / "song"
        import soundfile as sf

        a, b = (sf.read(str(p / "vocals.wav"), dtype="float32")[0] for p in outputs.values())
        print(f"\n# mixfx transfer, one {args.e2e_seconds:.0f} s 4-stem song, reference {args.reference_seconds:.0f} s "
              f"(encoder segment {args.reference_segment}); cloner width {args.e2e_channels} (paper 128, receptive "
              f"field {cl_config.receptive_field()} samples), encoder {args.e2e_encoder}; max |Δ| of the vocals between "
              f"the paths: {abs(a - b).max():.2e} (from the reference embedding when the reference is over 8 "
              f"segments; both Ψ paths equal one full pass, tests/test_tcn_inference.py, tests/test_transfer.py)")
        print("| path | load s | reference s | Ψ s | write s | total s | Ψ audio s/s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, t in times.items():
            print(f"| {name} | {t.get('load', 0):.1f} | {t.get('reference', 0):.1f} | {t.get('Ψ', 0):.1f} | "
                  f"{t.get('write', 0):.1f} | {t['total']:.1f} | {4 * args.e2e_seconds / t.get('Ψ', float('nan')):.3f} |")
        old, new = times.values()
        print(f"| ratio earlier / ours | | {old.get('reference', 0) / max(new.get('reference', 0), 1e-9):.2f}× | "
              f"{old['Ψ'] / new['Ψ']:.2f}× | | {old['total'] / new['total']:.2f}× | |")


if __name__ == "__main__":
    main()
