"""GPU check of MixFXcloner inference (issue 12): the official eager module vs our paths, on one GPU.

Prints one table: audio seconds (44.1 kHz stereo stems) converted per wall second for

* the official eager module (``cloner(x, cond)``, fp32; and under bf16 autocast),
* our tiled pass (:func:`mixfx.models.tcn_inference.cloner_forward_tiled`) with cuDNN benchmark,
  fp32 and with a bf16 copy of the weights,
* ``torch.compile`` of the eager module (bf16 weights), where it compiles,

each with its max |error| against the fp32 eager output, and the time of a whole 3-minute 4-stem
song through :meth:`mixfx.models.style_transfer.StyleTransfer.convert` (rows moved to the GPU
once, tiled pass; fp32 and bf16 weights). Timings synchronize the device and skip a warm-up call.
Random weights at the paper size (the speed does not depend on the values).

    python benchmarks/gpu_check.py                   # on a CUDA machine (≈ 2–4 minutes)
    python benchmarks/gpu_check.py --dry-run         # on a CPU: tiny sizes, checks that it runs

Not run in the session that wrote it (no GPU was lent); targets (issue 12): ≥ 3× the official
module, ≥ 1,000 audio-s/s bf16, a 3-minute song in ≤ 5 s on one H100/H200.
"""

from __future__ import annotations

import argparse
import copy
import time

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch

from mixfx.models.cloner import ClonerConfig, MixFXCloner
from mixfx.models.style_transfer import StyleTransfer
from mixfx.models.tcn_inference import cloner_forward_tiled

SR = 44100


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_of(fn, device: torch.device, repeats: int) -> tuple[float, torch.Tensor]:
    """Mean wall seconds of ``fn()`` over ``repeats`` calls after one warm-up call, and its last output."""
    with torch.inference_mode():
        y = fn()
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            y = fn()
        sync(device)
    return (time.perf_counter() - start) / repeats, y


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny cloner, short signals: only checks that it runs")
    p.add_argument("--batch", type=int, default=4, help="stems per call (a song's four stems)")
    p.add_argument("--samples", type=int, default=2**20, help="samples per stem in the throughput rows")
    p.add_argument("--song-seconds", type=float, default=180.0, help="length of the whole-song row")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-memory", type=float, default=16e9, help="byte budget of the tiled pass")
    args = p.parse_args(argv)
    if args.dry_run:
        device, config = torch.device("cpu"), ClonerConfig.tiny(cond_dim=64)
        args.samples, args.song_seconds, args.repeats, args.max_memory = 4096, 0.5, 1, 2**26
    else:
        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: no CUDA device here (use --dry-run on a CPU)")
        device, config = torch.device("cuda"), ClonerConfig.paper()
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 rows are true fp32
        torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    torch.manual_seed(0)
    fp32 = MixFXCloner(config).eval().to(device)
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    x = 0.3 * torch.randn(args.batch, 2, args.samples, device=device)
    cond = torch.randn(args.batch, config.cond_dim, device=device)
    audio = args.batch * args.samples / SR
    print(f"# {name}, torch {torch.__version__}; MixFXcloner {sum(q.numel() for q in fp32.parameters()) / 1e6:.1f} M "
          f"params; {args.batch} × {args.samples} samples per call")
    print("| path | audio s/s | × official fp32 | max |Δ| vs fp32 eager |")
    print("|---|---:|---:|---:|")
    reference_time, reference = seconds_of(lambda: fp32(x, cond), device, args.repeats)

    def row(label: str, fn) -> None:
        try:
            t, y = seconds_of(fn, device, args.repeats)
        except Exception as err:  # a path that does not run here (e.g. no compiler for torch.compile)
            print(f"| {label} | failed: {type(err).__name__}: {str(err).splitlines()[0][:80]} | | |")
            return
        err = float((y.float() - reference).abs().max())
        print(f"| {label} | {audio / t:.1f} | {reference_time / t:.2f} | {err:.2e} |")

    row("official eager module, fp32", lambda: fp32(x, cond))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)

    def eager_bf16():
        with autocast:
            return fp32(x, cond)

    row("official eager module, bf16 autocast", eager_bf16)
    row("ours: tiled, fp32", lambda: cloner_forward_tiled(fp32, x, cond, max_memory=args.max_memory))
    row("ours: tiled, bf16 weights", lambda: cloner_forward_tiled(bf16, x, cond, max_memory=args.max_memory))
    if not args.dry_run:
        compiled = torch.compile(bf16, mode="max-autotune-no-cudagraphs", dynamic=False)
        row("torch.compile(eager module), bf16 weights", lambda: compiled(x.to(torch.bfloat16), cond.to(torch.bfloat16)))

    n = int(args.song_seconds * SR)
    song = 0.3 * torch.randn(4, 2, n)  # on the host, as after reading the files
    emb = torch.randn(4, config.cond_dim)
    for label, model in (("fp32", fp32), ("bf16 weights", bf16)):
        st = StyleTransfer(None, model, max_memory=int(args.max_memory), device=device, silence_db=None)
        t, y = seconds_of(lambda: st.convert(song, emb.to(next(model.parameters()).dtype)), device, 1)
        assert y.shape == song.shape and y.device == song.device
        print(f"# whole song, {args.song_seconds:.1f} s × 4 stems through StyleTransfer.convert ({label}): {t:.2f} s "
              f"({4 * args.song_seconds / t:.1f} audio s/s, host → device → host included)")


if __name__ == "__main__":
    main()
