"""FX parameter ranges, application probabilities and the sampled configuration (the *factors*).

Ranges and probabilities follow the official FXmanipulator (``official_code_notes.md`` §4): every
parameter is drawn uniformly from its range; each effect is applied with its own probability.
A sampled :class:`FXConfig` holds per-example tensors, can be applied to any batch of the same
size (positive pairs = same configuration, other content), and exports the parameters both as a
labelled table and as a fixed-length normalised factor matrix for the disentanglement metrics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

FX_NAMES = ("eq", "compressor", "pan", "imager", "reverb", "gain")
"""The six effects, in the chain's outer order (EQ↔compressor and pan↔imager are swapped at random)."""

EQ_BAND_NAMES = ("low_shelf", "peak1", "peak2", "peak3", "high_shelf")
STEM_KINDS = ("drums", "bass", "other", "vocals", "mixture")


@dataclass(frozen=True)
class ParamSpec:
    """One sampled parameter: its range, the value it takes when its effect is off, and its kind.

    ``kind`` is ``"float"`` (uniform in [low, high]), ``"category"`` (integer 0 … n−1, stored in
    ``high`` as n − 1) or ``"bool"``.
    """

    effect: str
    name: str
    low: float
    high: float
    neutral: float
    kind: str = "float"
    unit: str = ""

    @property
    def key(self) -> str:
        return f"{self.effect}.{self.name}"

    def normalize(self, value: torch.Tensor) -> torch.Tensor:
        """Map a value to [0, 1] (linear in the range; clipped)."""
        span = self.high - self.low
        if span == 0:
            return torch.zeros_like(value, dtype=torch.float32)
        return ((value.float() - self.low) / span).clamp(0, 1)


@dataclass(frozen=True)
class FXRanges:
    """Parameter ranges of the official FXmanipulator (uniform sampling)."""

    eq_gain_db: tuple[float, float] = (-15.0, 15.0)
    low_shelf_hz: tuple[float, float] = (30.0, 200.0)
    peak1_hz: tuple[float, float] = (200.0, 1000.0)
    peak2_hz: tuple[float, float] = (1000.0, 3000.0)
    peak3_hz: tuple[float, float] = (3000.0, 8000.0)
    high_shelf_hz: tuple[float, float] = (5000.0, 10000.0)
    peak_q: tuple[float, float] = (0.1, 2.0)
    shelf_q: float = 0.707
    comp_threshold_db: tuple[float, float] = (-80.0, -5.0)
    comp_ratio: tuple[float, float] = (4.0, 40.0)
    comp_attack_ms: tuple[float, float] = (1.0, 20.0)
    comp_release_ms: tuple[float, float] = (50.0, 500.0)
    comp_knee_db: tuple[float, float] = (0.0, 0.0)
    pan: tuple[float, float] = (0.0, 1.0)
    pan_laws: int = 3
    imager_width: tuple[float, float] = (0.0, 2.0)
    reverb_dry_weight: tuple[float, float] = (0.0, 0.5)
    gain_db: tuple[float, float] = (-6.0, 9.0)

    def specs(self, n_irs: int = 1, max_rt60_s: float = 4.0) -> list[ParamSpec]:
        """All sampled parameters in the fixed factor order (without the ``applied`` flags)."""
        s: list[ParamSpec] = []
        for band in EQ_BAND_NAMES:
            s.append(ParamSpec("eq", f"{band}_gain_db", *self.eq_gain_db, neutral=0.0, unit="dB"))
            lo, hi = getattr(self, f"{band}_hz")
            s.append(ParamSpec("eq", f"{band}_hz", lo, hi, neutral=(lo + hi) / 2, unit="Hz"))
            if band.startswith("peak"):
                s.append(ParamSpec("eq", f"{band}_q", *self.peak_q, neutral=sum(self.peak_q) / 2))
        s += [
            ParamSpec("compressor", "threshold_db", *self.comp_threshold_db, neutral=self.comp_threshold_db[1], unit="dB"),
            ParamSpec("compressor", "ratio", *self.comp_ratio, neutral=self.comp_ratio[0]),
            ParamSpec("compressor", "attack_ms", *self.comp_attack_ms, neutral=sum(self.comp_attack_ms) / 2, unit="ms"),
            ParamSpec("compressor", "release_ms", *self.comp_release_ms, neutral=sum(self.comp_release_ms) / 2, unit="ms"),
            ParamSpec("compressor", "knee_db", *self.comp_knee_db, neutral=self.comp_knee_db[0], unit="dB"),
            ParamSpec("pan", "pan", *self.pan, neutral=0.5),
            ParamSpec("pan", "law", 0, self.pan_laws - 1, neutral=2, kind="category"),
            ParamSpec("imager", "width", *self.imager_width, neutral=1.0),
            ParamSpec("reverb", "rt60_s", 0.0, max_rt60_s, neutral=0.0, unit="s"),
            ParamSpec("reverb", "dry_weight", *self.reverb_dry_weight, neutral=self.reverb_dry_weight[1]),
            ParamSpec("reverb", "ir_index", 0, max(n_irs - 1, 0), neutral=0, kind="category"),
            ParamSpec("gain", "gain_db", *self.gain_db, neutral=0.0, unit="dB"),
            ParamSpec("gain", "invert", 0, 1, neutral=0, kind="bool"),
        ]
        return s


@dataclass(frozen=True)
class FXProbabilities:
    """Per-effect application probabilities (official defaults).

    ``reverb`` is per stem kind. The official code *intends* drums 0.5, bass 0.01, other 0.7,
    vocals 0.9, but a dict mutation makes the effective values 0.5 / 0.05 / 0.05 / 0.05
    (:data:`OFFICIAL_EFFECTIVE_REVERB`); we default to the intended ones. ``mixture`` (a sum of
    stems) uses the ``other`` value.
    """

    eq: float = 0.9
    compressor: float = 0.9
    pan: float = 0.3
    imager: float = 0.8
    gain: float = 0.5
    reverb: dict = field(default_factory=lambda: {"drums": 0.5, "bass": 0.01, "other": 0.7, "vocals": 0.9, "mixture": 0.7})

    def for_effect(self, effect: str, stems: list[str]) -> torch.Tensor:
        """``(batch,)`` probabilities of ``effect`` for the given per-example stem kinds."""
        if effect == "reverb":
            return torch.tensor([float(self.reverb.get(s, self.reverb.get("other", 0.7))) for s in stems])
        return torch.full((len(stems),), float(getattr(self, effect)))

    def scaled(self, per_fx: dict[str, float]) -> "FXProbabilities":
        """New probabilities with the given effects replaced (reverb: the value for vocals/other, scaled per stem
        as the official chain does: drums ×0.5, bass ×0.1)."""
        kw = {k: v for k, v in per_fx.items() if k != "reverb"}
        out = dataclasses.replace(self, **kw)
        if "reverb" in per_fx:
            p = float(per_fx["reverb"])
            out = dataclasses.replace(out, reverb={"drums": 0.5 * p, "bass": 0.1 * p, "other": p, "vocals": p, "mixture": p})
        return out

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


OFFICIAL_EFFECTIVE_REVERB = {"drums": 0.5, "bass": 0.05, "other": 0.05, "vocals": 0.05, "mixture": 0.05}


@dataclass
class FXConfig:
    """A sampled FXmanipulator configuration for a batch: per-example parameters and flags.

    Attributes:
        stems: stem kind of each example (drums, bass, other, vocals, mixture).
        applied: effect name → ``(batch,)`` bool.
        values: ``"effect.param"`` → ``(batch,)`` tensor, the drawn value (also for effects that
            were not applied; :meth:`factor_matrix` substitutes the neutral value).
        eq_first, pan_first: ``(batch,)`` bool, the random order of the swapped pairs.
        single_fx: the effect of a single-FX configuration (reverb is then fully wet), else None.
        specs: the parameter specs (ranges) the values were drawn from.
    """

    stems: list[str]
    applied: dict[str, torch.Tensor]
    values: dict[str, torch.Tensor]
    eq_first: torch.Tensor
    pan_first: torch.Tensor
    specs: list[ParamSpec]
    single_fx: str | None = None

    def __len__(self) -> int:
        return len(self.stems)

    def select(self, index: torch.Tensor | list[int]) -> "FXConfig":
        """The configuration of a subset of examples (e.g. to apply one config to another batch size)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return FXConfig(
            stems=[self.stems[i] for i in idx.tolist()],
            applied={k: v[idx] for k, v in self.applied.items()},
            values={k: v[idx] for k, v in self.values.items()},
            eq_first=self.eq_first[idx],
            pan_first=self.pan_first[idx],
            specs=self.specs,
            single_fx=self.single_fx,
        )

    def factor_names(self) -> list[str]:
        """Names of the columns of :meth:`factor_matrix`."""
        names = []
        for fx in FX_NAMES:
            names.append(f"{fx}.applied")
            names += [s.key for s in self.specs if s.effect == fx]
        return names + ["order.eq_first", "order.pan_first"]

    def factor_matrix(self) -> torch.Tensor:
        """Fixed-length normalised factors ``(batch, n_factors)`` in [0, 1].

        Per effect: an ``applied`` flag, then each parameter normalised to its range, or its
        neutral value when the effect was off; categorical parameters become ``index / (n − 1)``;
        then the two order flags.
        """
        cols = []
        for fx in FX_NAMES:
            on = self.applied[fx]
            cols.append(on.float())
            for s in (s for s in self.specs if s.effect == fx):
                v = torch.where(on, self.values[s.key].float(), torch.full_like(self.values[s.key].float(), s.neutral))
                cols.append(s.normalize(v))
        cols += [self.eq_first.float(), self.pan_first.float()]
        return torch.stack(cols, dim=1)

    def table(self):
        """A labelled long table: one row per (example, effect, parameter) with value and applied flag.

        Returns:
            ``pandas.DataFrame`` with columns ``example, stem, effect, parameter, value, unit, applied``.
        """
        import pandas as pd

        rows = []
        for i, stem in enumerate(self.stems):
            for s in self.specs:
                rows.append(
                    dict(example=i, stem=stem, effect=s.effect, parameter=s.name, value=float(self.values[s.key][i]),
                         unit=s.unit, applied=bool(self.applied[s.effect][i]))
                )
            rows.append(dict(example=i, stem=stem, effect="order", parameter="eq_first", value=float(self.eq_first[i]),
                             unit="", applied=True))
            rows.append(dict(example=i, stem=stem, effect="order", parameter="pan_first", value=float(self.pan_first[i]),
                             unit="", applied=True))
        return pd.DataFrame(rows)
