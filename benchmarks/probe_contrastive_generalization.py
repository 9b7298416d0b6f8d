"""Diagnostic: does an FXencoder's contrastive skill carry over to new songs and to eval mode? (issue 10)

Prints the NT-Xent loss of a checkpoint on contrastive batches (the trainer's construction: content
pairs from different songs, two configurations each; ``--fx`` picks the full chain or one effect) for

* the ``train`` and the ``valid`` split: a loss far lower on train than on valid is content memorization
  (too few training songs);
* three ways of running the BatchNorm layers: ``eval`` (the running statistics, as every evaluation and
  ``mixfx transfer`` embed), ``batch`` (the batch's own statistics, as the training step sees them) and
  ``eval, k-stem stats`` (running statistics recomputed on training batches with the same stem count
  only): a gap between ``eval`` and ``batch`` is what evaluation loses to BatchNorm, and the third
  column shows how much of it is the mix of 1–4-stem statistics.

Rows are per stem count (the trainer's step ``k`` mixes ``k mod 4 + 1`` stems); chance is ln(2N − 1).

    python benchmarks/probe_contrastive_generalization.py DATA CKPT [--fx full|eq|gain|...] [--seconds 1.0,1.5]
        [--contents 8] [--batches 4] [--temperature 0.1] [--d0 64]
"""
from __future__ import annotations

import argparse
import copy
import math

import torch

from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixfx.losses.contrastive import nt_xent
from mixfx.models.loading import load_encoder
from mixfx.train.batches import ContrastiveSegments, contrastive_views, step_generator

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("data"), parser.add_argument("checkpoint")
parser.add_argument("--fx", default="full", help="full, or one effect (single-FX batches)")
parser.add_argument("--seconds", default="1.0,1.5", help="segment-length range, as in training")
parser.add_argument("--contents", type=int, default=8)
parser.add_argument("--batches", type=int, default=4, help="batches per stem count and split")
parser.add_argument("--calibration-batches", type=int, default=10)
parser.add_argument("--temperature", type=float, default=0.1)
parser.add_argument("--d0", type=int, default=64)
args = parser.parse_args()
torch.set_num_threads(min(2, torch.get_num_threads()))
seconds = tuple(float(v) for v in args.seconds.split(","))
single_fx = None if args.fx == "full" else args.fx
chain = FXManipulator()
encoder = load_encoder(args.checkpoint)
splits = {s: ContrastiveSegments(MultitrackSegments(args.data, s), contents=args.contents, seconds=seconds, seed=seed)
          for s, seed in (("train", 555), ("valid", 999))}


def views(split: str, step: int):
    return contrastive_views(splits[split][step], chain, step_generator(9, step, 0, 3), single_fx=single_fx)


def mean_loss(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], batch_stats: bool) -> float:
    model.train(batch_stats)
    with torch.no_grad():
        losses = [float(nt_xent(model(a), model(b), temperature=args.temperature, d0=args.d0, gather=False))
                  for a, b in batches]
    return sum(losses) / len(losses)


def recalibrated(stems: int) -> torch.nn.Module:
    """The encoder with BatchNorm running statistics averaged over ``stems``-stem training batches only."""
    model = copy.deepcopy(encoder)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for j in range(args.calibration_batches):
            a, b = views("train", stems - 1 + 4 * (j + args.batches))  # steps not used for the losses
            model(a), model(b)
    return model


print(f"NT-Xent on {args.fx} batches, {2 * args.contents} pairs (chance {math.log(4 * args.contents - 1):.3f}), "
      f"{args.batches} batches per cell")
print(f"| stems | split | eval | batch | eval, k-stem stats |\n|---:|---|---:|---:|---:|")
for stems in (1, 2, 3, 4):
    steps = [stems - 1 + 4 * j for j in range(args.batches)]
    calibrated = recalibrated(stems)
    for split in ("train", "valid"):
        batches = [views(split, s) for s in steps]  # the same batches for the three columns
        print(f"| {stems} | {split} | {mean_loss(encoder, batches, False):.3f} | "
              f"{mean_loss(encoder, batches, True):.3f} | {mean_loss(calibrated, batches, False):.3f} |", flush=True)
