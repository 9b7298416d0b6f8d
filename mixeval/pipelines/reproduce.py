"""``mixeval reproduce``: the whole paper pipeline in one command (the README's main job).

Stages, each skipped when its output already exists (so an interrupted run continues):

1. dataset: the built-in synthetic multitrack set (or ``--data``, a MUSDB18-HQ folder);
2. FX features of the training split, then the FX-normalized dataset;
3. FXencoders Φ∅ (raw stems), Φnorm and Φp.s. (normalized stems, the latter with probability
   scheduling);
4. one MixFXcloner per encoder (Ψ w/ Φ∅, Ψ w/ Φnorm, Ψ w/ Φp.s.);
5. style transfer of one test song to the mixing style of another (Ψ w/ Φp.s.);
6. Table 1 and Fig. 2 (``mixeval disentangle``) for the three encoders and the baselines;
7. Table 2 (``mixeval table2``): Input, oracle, the DSP baseline and the three Ψ, ΔΦ measured with Φp.s.

The ``tiny`` preset runs everything on a CPU in minutes — a smoke-sized reproduction whose numbers
show that the pipeline works, not the paper's results; ``paper`` uses the paper's sizes (GPU).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mixeval.errors import MixevalError
from mixfx.data.musdb import list_songs
from mixfx.io.atomic import atomic_write

logger = logging.getLogger(__name__)
PRESETS = ("tiny", "paper")
VARIANTS = ("none", "norm", "ps")
LABELS = ("Φ∅", "Φnorm", "Φp.s.")


@dataclass(frozen=True)
class ReproduceConfig:
    """Sizes of :func:`reproduce` (``tiny``: CPU minutes; ``paper``: the paper's training sizes)."""

    preset: str = "tiny"
    songs: int = 12
    seconds: float = 20.0
    seed: int = 0
    encoder_steps: int | None = 60
    cloner_steps: int | None = 30
    evaluation: str = "quick"

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise MixevalError(f"unknown preset {self.preset!r}; expected one of {', '.join(PRESETS)}")
        if self.evaluation not in ("quick", "paper"):
            raise MixevalError(f"unknown evaluation size {self.evaluation!r}; expected 'quick' or 'paper'")
        if self.songs < 6:
            raise MixevalError(f"--songs: the synthetic dataset needs ≥ 6 songs (train, validation and 2 test songs), got {self.songs}")
        if not self.seconds >= 4:
            raise MixevalError(f"--seconds: synthetic songs need ≥ 4 s, got {self.seconds}")
        for name in ("encoder_steps", "cloner_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MixevalError(f"{name}: expected ≥ 1, got {value}")

    @classmethod
    def paper(cls, **changes) -> "ReproduceConfig":
        return cls(**{"preset": "paper", "encoder_steps": None, "cloner_steps": None, "evaluation": "paper", **changes})


def _trained(run: Path, steps: int) -> bool:
    from mixfx.io.checkpoint import load_model_checkpoint

    last = run / "checkpoints" / "last.pt"
    return last.is_file() and int(load_model_checkpoint(last).step or 0) >= steps


def reproduce(
    out: str | os.PathLike,
    config: ReproduceConfig = ReproduceConfig(),
    *,
    data: str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = logger.info,
) -> dict[str, Path]:
    """Run (or continue) the whole pipeline into ``out``; returns the main output paths.

    Args:
        out: output folder (``data/``, ``features.npz``, ``data_normalized/``, ``runs/``,
            ``transfer/``, ``reports/disentangle/``, ``summary.md``).
        config: sizes (:class:`ReproduceConfig`).
        data: use this dataset (MUSDB18-HQ layout) instead of rendering the synthetic one.
        device: ``cpu``/``cuda`` for training, transfer and embedding (default: CUDA when available).
        progress: progress bars on stderr.
        log: receives one line per stage.
    """
    from mixeval.pipelines.disentangle import DisentangleConfig, run_disentangle
    from mixeval.pipelines.table2 import ModelSpec, Table2Config, run_table2
    from mixfx.data.synth import make_synth_dataset
    from mixfx.pipelines.fx_normalize import compute_features, normalize_dataset
    from mixfx.pipelines.train_cloner import train_cloner
    from mixfx.pipelines.train_encoder import train_encoder
    from mixfx.pipelines.transfer import transfer
    from mixfx.train.config import ClonerTrainConfig, EncoderTrainConfig

    from mixfx.io.paths import check_output_dir

    out = check_output_dir(out, option="OUT")
    if data is not None and not Path(data).is_dir():
        raise MixevalError(f"--data {data}: no such folder")
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    raw = Path(data) if data is not None else out / "data"
    if data is None and not (raw / "dataset.json").is_file():
        log(f"1/7 rendering the synthetic dataset ({config.songs} songs × {config.seconds:g} s) → {raw}")
        make_synth_dataset(raw, songs=config.songs, seconds=config.seconds, seed=config.seed)
    paths["data"] = raw

    features = out / "features.npz"
    if not features.is_file():
        log(f"2/7 FX features of the training split → {features}")
        compute_features(raw, features)
    normalized = out / "data_normalized"
    if not (normalized / "test").is_dir():
        log(f"2/7 FX-normalizing the dataset → {normalized}")
        normalize_dataset(raw, features, normalized, seed=config.seed)
    paths.update(features=features, normalized=normalized)

    encoders = []
    for variant in VARIANTS:
        cfg = (EncoderTrainConfig.tiny if config.preset == "tiny" else EncoderTrainConfig.paper)(variant=variant, seed=config.seed)
        if config.encoder_steps is not None:
            cfg = dataclasses.replace(cfg, steps=config.encoder_steps,
                                      val_every=min(cfg.val_every, config.encoder_steps),
                                      checkpoint_every=min(cfg.checkpoint_every, config.encoder_steps))
        run = out / "runs" / f"encoder_{variant}"
        if not _trained(run, cfg.steps):
            log(f"3/7 training FXencoder variant {variant!r} ({cfg.steps} steps) → {run}")
            train_encoder(raw if variant == "none" else normalized, run, cfg, resume=(run / "checkpoints" / "last.pt").is_file(),
                          device=device, progress=progress, allow_unnormalized=False)
        encoders.append(run / "checkpoints" / "last.pt")
    paths["encoders"] = out / "runs"

    ccfg = (ClonerTrainConfig.tiny if config.preset == "tiny" else ClonerTrainConfig.paper)(seed=config.seed)
    if config.cloner_steps is not None:
        ccfg = dataclasses.replace(ccfg, steps=config.cloner_steps, val_every=min(ccfg.val_every, config.cloner_steps),
                                   checkpoint_every=min(ccfg.checkpoint_every, config.cloner_steps))
    cloners = []
    for variant, encoder in zip(VARIANTS, encoders):
        cloner_run = out / "runs" / f"cloner_{variant}"
        if not _trained(cloner_run, ccfg.steps):
            log(f"4/7 training the MixFXcloner for encoder {variant!r} ({ccfg.steps} steps) → {cloner_run}")
            train_cloner(normalized, encoder, cloner_run, ccfg, resume=(cloner_run / "checkpoints" / "last.pt").is_file(),
                         device=device, progress=progress)
        cloners.append(cloner_run / "checkpoints" / "last.pt")
    cloner = cloners[-1]

    tests = list_songs(raw, "test")
    if len(tests) < 2:
        raise MixevalError(f"{raw}: the style-transfer demo needs 2 test songs, found {len(tests)}")
    transferred = out / "transfer"
    log(f"5/7 style transfer: {tests[0].name} in the mixing style of {tests[1].name} → {transferred}")
    transfer(tests[0].folder, tests[1].folder, transferred, encoder=encoders[-1], cloner=cloner, features=features, device=device)
    paths["transfer"] = transferred

    reports = out / "reports" / "disentangle"
    baselines = ("random", "mfcc")  # floors beside the always-present pure-noise row
    dcfg = DisentangleConfig.quick(baselines=baselines) if config.evaluation == "quick" else DisentangleConfig(baselines=baselines)
    log(f"6/7 Table 1 and Fig. 2 → {reports}")
    run_disentangle(encoders, normalized, reports, labels=list(LABELS), config=dcfg,
                             progress=progress)
    paths["reports"] = reports

    table2_dir = out / "reports" / "table2"
    log(f"7/7 Table 2 → {table2_dir}")
    specs = [ModelSpec(f"Ψ w/ {label}", enc, cl) for label, enc, cl in zip(LABELS, encoders, cloners)]
    t2cfg = Table2Config.quick() if config.evaluation == "quick" else Table2Config()
    t2 = run_table2(normalized, table2_dir, models=specs, evaluator=encoders[-1],
                    config=dataclasses.replace(t2cfg, device=device or "auto"), progress=progress)
    paths["table2"] = table2_dir

    summary = out / "summary.md"
    table = (reports / "table1.md").read_text() if (reports / "table1.md").is_file() else ""
    with atomic_write(summary, "w") as f:
        f.write(f"# mixeval reproduce ({config.preset})\n\nSettings: `{json.dumps(dataclasses.asdict(config))}`\n\n")
        f.write("| output | path |\n|---|---|\n")
        for k, v in paths.items():
            f.write(f"| {k} | `{v}` |\n")
        f.write(f"\n## Table 1\n\n{table}\n")
        f.write(f"\n## Table 2\n\nλ·ΔΦ measured with Φp.s. of this run; values on the built-in data are not MUSDB18 results.\n\n")
        f.write(t2.markdown)
    paths["summary"] = summary
    return paths
