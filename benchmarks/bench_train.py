"""Training throughput: steps/s and audio-seconds/s of the FXencoder and MixFXcloner trainers.

Runs short trainings on a small built-in synthetic dataset and prints a table: the ``tiny`` presets
on CPU, and the ``paper`` sizes on CUDA when present (``--paper-contents`` / ``--paper-batch`` keep
them within one GPU's memory). Data share and FX share are the fractions of a step spent waiting for
raw audio and running the FXmanipulator.

    python benchmarks/bench_train.py            # tiny on CPU (+ paper sizes on CUDA when present)
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import mixfx  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch loads OpenMP)
import torch

from mixfx.data.synth import make_synth_dataset
from mixfx.pipelines.train_cloner import train_cloner
from mixfx.pipelines.train_encoder import train_encoder
from mixfx.train.config import ClonerTrainConfig, EncoderTrainConfig


def summary(run: Path, skip: int) -> dict[str, float]:
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["kind"] == "train" and int(r["step"]) > skip]
    out = {}
    for name in ("audio_seconds_per_second", "data_share", "fx_share"):
        vals = [float(r["value"]) for r in rows if r["name"] == name]
        out[name] = sum(vals) / max(len(vals), 1)
    return out


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    # paper-size models at these batch sizes fit an 80 GB H100 (16 contents ran out of its memory)
    parser.add_argument("--paper-contents", type=int, default=6)
    parser.add_argument("--paper-batch", type=int, default=4)
    parser.add_argument("--no-cpu", action="store_true", help="skip the tiny CPU runs")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = make_synth_dataset(tmp / "data", songs=8, seconds=14.0, seed=0)
        setups = [] if args.no_cpu else [("cpu", "tiny", EncoderTrainConfig.tiny(variant="none", steps=args.steps, val_every=10**6, log_every=1),
                   ClonerTrainConfig.tiny(steps=args.steps, val_every=10**6, log_every=1))]
        if torch.cuda.is_available():
            setups.append(("cuda", "paper",
                           EncoderTrainConfig.paper(variant="none", steps=args.steps, contents=args.paper_contents,
                                                    val_every=10**6, log_every=1, workers=4),
                           ClonerTrainConfig.paper(steps=args.steps, batch=args.paper_batch, val_every=10**6, log_every=1)))
        for device, preset, enc_cfg, cl_cfg in setups:
            enc_run = tmp / f"enc_{device}"
            seconds = timed(lambda: train_encoder(data, enc_run, enc_cfg, device=device, allow_unnormalized=True))
            s = summary(enc_run, skip=2)
            rows.append((device, preset, "FXencoder", enc_cfg.steps / seconds, s))
            cl_run = tmp / f"cl_{device}"
            seconds = timed(lambda: train_cloner(data, enc_run / "checkpoints" / "last.pt", cl_run, cl_cfg, device=device))
            rows.append((device, preset, "MixFXcloner", cl_cfg.steps / seconds, summary(cl_run, skip=2)))
    print("| device | preset | model | steps/s (incl. start-up) | audio-s/s | data share | FX share |")
    print("|---|---|---|---:|---:|---:|---:|")
    for device, preset, model, sps, s in rows:
        print(f"| {device} | {preset} | {model} | {sps:.2f} | {s['audio_seconds_per_second']:.1f} | "
              f"{100 * s['data_share']:.0f} % | {100 * s['fx_share']:.0f} % |")


if __name__ == "__main__":
    main()
