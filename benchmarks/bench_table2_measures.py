"""Table 2's L_MSS columns: a whole case per row (before) vs chunks with gt's spectrograms shared by the rows (now).

``mixeval table2`` scores every row's examples against the same gt. It used to call
``lmss_terms(y_case, gt_case)`` once per row on the whole case (every stem of every item): gt's STFTs were
recomputed for every row and the spectrogram temporaries grew with the case. :func:`measure_rows` now
measures :data:`CHUNK_SAMPLES`-sized chunks of examples and computes each chunk's gt spectrograms once
(:func:`mixeval.metrics.style.lmss_target`). Each mode runs in its own process so its peak RSS is its own.

    python benchmarks/bench_table2_measures.py [--examples 96] [--seconds 4] [--rows 6]

(96 examples of 4 s = the single-stem case of the ``small`` preset's 24 items.)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def _run(mode: str, examples: int, seconds: float, rows: int) -> dict:
    import numpy as np
    import torch

    from mixeval.metrics import style as M
    from mixeval.pipelines.table2_measures import CHUNK_SAMPLES
    from mixfx import SAMPLE_RATE

    torch.manual_seed(0)
    samples = int(seconds * SAMPLE_RATE)
    gt = torch.randn(examples, 2, samples) * 0.1
    ys = [gt * (0.5 + 0.1 * r) + 0.01 * torch.randn_like(gt) for r in range(rows)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if mode == "whole":
        values = [M.lmss_terms(y, gt)["left_right"] for y in ys]
    else:
        chunk = max(1, CHUNK_SAMPLES // samples)
        parts = [[] for _ in ys]
        for lo in range(0, examples, chunk):
            target = M.lmss_target(gt[lo:lo + chunk])
            for r, y in enumerate(ys):
                parts[r].append(M.lmss_terms(y[lo:lo + chunk], target)["left_right"])
        values = [np.concatenate(p) for p in parts]
    seconds_taken = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base  # KiB on Linux
    return {"seconds": seconds_taken, "peak_gb": peak * 1024 / 1e9, "values": [v.tolist() for v in values]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=96)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--mode", choices=("whole", "chunked"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(_run(args.mode, args.examples, args.seconds, args.rows)))
        return
    import numpy as np

    results = {}
    for mode in ("whole", "chunked"):
        cmd = [sys.executable, __file__, "--mode", mode, "--examples", str(args.examples), "--seconds", str(args.seconds),
               "--rows", str(args.rows)]
        results[mode] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    diff = max(float(np.max(np.abs(np.subtract(a, b)) / np.abs(a))) for a, b in
               zip(results["whole"]["values"], results["chunked"]["values"]))
    print(f"L_MSS of {args.rows} rows × {args.examples} examples of {args.seconds:g} s (stereo), one process each\n")
    print("| procedure | seconds | s / example-row | peak RSS added (GB) | speed-up |")
    print("|---|---:|---:|---:|---:|")
    w = results["whole"]["seconds"]
    labels = {"whole": "whole case per row (before)", "chunked": "chunks, gt spectrograms shared (now)"}
    for mode, r in results.items():
        print(f"| {labels[mode]} | {r['seconds']:.1f} | {r['seconds'] / (args.rows * args.examples):.3f} | "
              f"{r['peak_gb']:.2f} | {w / r['seconds']:.2f}× |")
    print(f"\nlargest relative difference of the values: {diff:.1e}")


if __name__ == "__main__":
    main()
