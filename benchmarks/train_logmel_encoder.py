"""Experiment (issue 10): train the `small` recipe's encoder with the log-mel front end, batch size of your choice.

``mixfx train-encoder`` has no option for the encoder architecture; this trains
:meth:`EncoderTrainConfig.small` with :meth:`FXEncoderConfig.small_logmel` and ``--contents`` / ``--steps``
overridden (the number of NT-Xent negatives grows with ``--contents``). Read the result with
``benchmarks/probe_fx_information.py`` and ``benchmarks/probe_contrastive_generalization.py``.

    PYTHONPATH=. python benchmarks/train_logmel_encoder.py DATA RUN --contents 32 --steps 200 --val-every 50
"""

from __future__ import annotations

import argparse
import time

from mixfx.models.encoder import FXEncoderConfig
from mixfx.pipelines.train_encoder import train_encoder
from mixfx.train.config import EncoderTrainConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", help="FX-normalized dataset (mixfx fx-normalize)")
    p.add_argument("run", help="run folder")
    p.add_argument("--contents", type=int, default=8, help="content pairs per step (small: 8)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--val-every", type=int, default=0, help="validation period (0: at the start and end only)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    config = EncoderTrainConfig.small(encoder=FXEncoderConfig.small_logmel().to_dict(), contents=args.contents,
                                      steps=args.steps, val_every=args.val_every or args.steps,
                                      checkpoint_every=max(args.steps // 4, 1), seed=args.seed)
    start = time.perf_counter()
    last = train_encoder(args.data, args.run, config, device="cpu", progress=True)
    print(f"{last}  ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
