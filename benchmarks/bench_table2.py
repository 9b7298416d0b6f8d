"""Benchmark ``mixeval table2``: items per second of each stage, on CPU (and CUDA when present).

Run from the repository root::

    python benchmarks/bench_table2.py                 # CPU: 8 items of 3 s, tiny models (about a minute)
    python benchmarks/bench_table2.py --paper-size    # paper-size FXencoder / MixFXcloner (GPU)

It renders a small synthetic dataset, saves random-init FXencoder and MixFXcloner checkpoints
(tiny, or the paper's sizes), runs the whole pipeline once per device and prints, per stage
(render of x / ref / gt, DSP baseline, models, measures), its time and items per second. An item
is one multitrack example (four stems). Numbers are for the machine it runs on; paste them with
its name.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mixeval.pipelines.table2 import ModelSpec, Table2Config, run_table2  # noqa: E402
from mixeval.transfer_set import TransferSetConfig  # noqa: E402
from mixfx.data.synth import make_synth_dataset  # noqa: E402
from mixfx.io.checkpoint import save_model_checkpoint  # noqa: E402
from mixfx.models.cloner import ClonerConfig, MixFXCloner  # noqa: E402
from mixfx.models.encoder import FXEncoder, FXEncoderConfig  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--paper-size", action="store_true", help="paper-size models instead of the tiny presets")
    p.add_argument("--no-cpu", action="store_true", help="skip the CPU run")
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_synth_dataset(root / "data", songs=6, seconds=max(8.0, 2.5 * args.seconds), seed=0)
        enc_cfg = FXEncoderConfig() if args.paper_size else FXEncoderConfig.tiny()
        torch.manual_seed(0)
        enc = FXEncoder(enc_cfg)
        cl = MixFXCloner(ClonerConfig(cond_dim=enc.dim) if args.paper_size else ClonerConfig.tiny(cond_dim=enc.dim))
        e_path = save_model_checkpoint(root / "enc.pt", enc)
        c_path = save_model_checkpoint(root / "cl.pt", cl)
        devices = ([] if args.no_cpu else ["cpu"]) + (["cuda"] if torch.cuda.is_available() else [])
        size = "paper-size" if args.paper_size else "tiny"
        print(f"{args.examples} items × {args.seconds:g} s, {size} models, batch {args.batch_size}")
        print(f"| device | stage | seconds | items/s |\n|---|---|---:|---:|")
        for device in devices:
            cfg = Table2Config(evalset=TransferSetConfig(examples=args.examples, seconds=args.seconds),
                               batch_size=args.batch_size, device=device, bootstrap=200,
                               autocast=device == "cuda")
            res = run_table2(data, root / f"out_{device}", models=[ModelSpec("Ψ", e_path, c_path)], config=cfg)
            name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
            for stage in ("render", "dsp", "models", "measures", "total"):
                t = res.timings[stage]
                print(f"| {name} | {stage} | {t:.2f} | {args.examples / t:.2f} |")


if __name__ == "__main__":
    main()
