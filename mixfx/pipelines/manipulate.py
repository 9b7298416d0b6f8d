"""Apply random FXmanipulator configurations to audio files (the chain from the command line)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from mixfx import SAMPLE_RATE
from mixfx.errors import MixfxError
from mixfx.fx.chain import FXManipulator
from mixfx.fx.ir import load_ir_folder
from mixfx.fx.params import STEM_KINDS
from mixfx.io.atomic import atomic_write
from mixfx.io.audio import load_audio, save_audio
from mixfx.io.paths import check_output_dir

logger = logging.getLogger(__name__)


def manipulate_files(
    inputs: list[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    seed: int,
    variants: int = 1,
    stem: str = "mixture",
    single_fx: str | None = None,
    same_config: bool = False,
    ir_dir: str | os.PathLike | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> Path:
    """Write ``variants`` randomly manipulated versions of each input and a parameter table.

    Args:
        inputs: audio files.
        out_dir: output folder: ``<name>_fx<k>.wav`` per input and variant, plus ``parameters.csv``
            (one row per file, effect and parameter) and ``factors.csv`` (normalised factor vectors).
        seed: seed of the configurations.
        variants: configurations per input.
        stem: stem kind of the inputs (drums/bass/other/vocals/mixture: reverb probability and routing).
        single_fx: apply only this effect.
        same_config: apply configuration ``k`` to every input (positive pairs across files).
        ir_dir: folder of impulse responses (default: the built-in synthetic bank).

    Returns:
        The output folder.

    Raises:
        MixfxError: no inputs, ``variants`` < 1, two inputs with the same file name, an unknown
            stem kind, an output folder that is a file or cannot be written (all before any audio
            is read), or a bad input file or IR folder (before anything is written).
    """
    if not inputs:
        raise MixfxError("no input files given")
    if variants < 1:
        raise MixfxError(f"--variants: expected ≥ 1 configuration per input, got {variants}")
    stems_out = [Path(p).stem for p in inputs]
    clash = sorted({n for n in stems_out if stems_out.count(n) > 1})
    if clash:
        raise MixfxError(f"inputs {', '.join(str(p) for p in inputs if Path(p).stem == clash[0])} share the name "
                         f"{clash[0]!r}: their outputs {clash[0]}_fx*.wav would overwrite each other; rename one")
    if stem not in STEM_KINDS:
        raise MixfxError(f"unknown stem kind {stem!r}; expected one of {', '.join(STEM_KINDS)}")
    out = check_output_dir(out_dir, option="output folder")
    bank = load_ir_folder(ir_dir, sample_rate=sample_rate) if ir_dir is not None else None
    chain = FXManipulator(sample_rate=sample_rate, ir_bank=bank)
    audio = [load_audio(p, sample_rate=sample_rate) for p in inputs]
    g = torch.Generator().manual_seed(seed)
    tables, factors = [], []
    shared = [chain.sample(1, generator=g, stems=stem, single_fx=single_fx) for _ in range(variants)] if same_config else None
    for path, x in zip(inputs, audio):
        for k in range(variants):
            config = shared[k] if shared else chain.sample(1, generator=g, stems=stem, single_fx=single_fx)
            y = chain.apply(x[None], config)[0]
            name = f"{Path(path).stem}_fx{k}.wav"
            save_audio(out / name, y, sample_rate)
            t = config.table().drop(columns=["example"])
            t.insert(0, "file", name)
            tables.append(t)
            row = dict(zip(config.factor_names(), config.factor_matrix()[0].tolist()))
            factors.append({"file": name, **row})
    import pandas as pd

    with atomic_write(out / "parameters.csv", "w", newline="") as f:
        pd.concat(tables).to_csv(f, index=False)
    with atomic_write(out / "factors.csv", "w", newline="") as f:
        pd.DataFrame(factors).to_csv(f, index=False)
    logger.info("wrote %d files to %s", len(inputs) * variants, out)
    return out
