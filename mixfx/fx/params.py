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
from typing import Iterator, Mapping, NamedTuple

import torch

from mixfx.fx.effects import EQ_BAND_NAMES, TABLES, compressor, eq, gain, imager, panner, reverb
from mixfx.fx.paramspec import DRAWN_IR_INDEX, DRAWN_IR_RT60, ParamKind, ParamSpec

FX_NAMES = tuple(t.name for t in TABLES)
"""The six effects, in the chain's outer order (EQ↔compressor and pan↔imager are swapped at random)."""

STEM_KINDS = ("drums", "bass", "other", "vocals", "mixture")

__all__ = ["EQ_BAND_NAMES", "FX_NAMES", "OFFICIAL_EFFECTIVE_REVERB", "STEM_KINDS", "FXConfig", "FXProbabilities",
           "FXRanges", "FactorColumn", "FrozenMap", "ParamKind", "ParamSpec"]


class FrozenMap(Mapping):
    """A read-only, hashable, picklable mapping (the frozen dataclasses' dict-valued fields)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping | None = None) -> None:
        object.__setattr__(self, "_items", tuple(dict(items or {}).items()))

    def __getitem__(self, key):
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items))

    def __setattr__(self, name, value) -> None:
        raise AttributeError("FrozenMap is read-only")

    def __reduce__(self):
        return FrozenMap, (dict(self._items),)

    def __repr__(self) -> str:
        return repr(dict(self._items))


_PEAKS = tuple(b for b in EQ_BAND_NAMES if b.startswith("peak"))
_FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "eq_gain_db": tuple(f"eq.{b}_gain_db" for b in EQ_BAND_NAMES),
    **{f"{b}_hz": (f"eq.{b}_hz",) for b in EQ_BAND_NAMES},
    "peak_q": tuple(f"eq.{b}_q" for b in _PEAKS),
    **{f"comp_{n}": (f"compressor.{n}",) for n in ("threshold_db", "ratio", "attack_ms", "release_ms", "knee_db")},
    "pan": ("pan.pan",), "imager_width": ("imager.width",), "reverb_dry_weight": ("reverb.dry_weight",),
    "gain_db": ("gain.gain_db",),
}
"""Which table parameters each range field of :class:`FXRanges` sets."""


@dataclass(frozen=True)
class FXRanges:
    """Parameter ranges of the chain, grouped as the official FXmanipulator's settings.

    The defaults are the effects' ranges (the constants their tables are built from); a field set here
    overrides the range of the table parameters it names (:data:`_FIELD_KEYS`: ``eq_gain_db``
    sets all five band gains, ``peak_q`` the three peaks' Q), and :meth:`specs` derives the
    sampled parameters from the tables with those ranges.
    """

    eq_gain_db: tuple[float, float] = eq.GAIN_DB
    low_shelf_hz: tuple[float, float] = eq.BAND_HZ["low_shelf"]
    peak1_hz: tuple[float, float] = eq.BAND_HZ["peak1"]
    peak2_hz: tuple[float, float] = eq.BAND_HZ["peak2"]
    peak3_hz: tuple[float, float] = eq.BAND_HZ["peak3"]
    high_shelf_hz: tuple[float, float] = eq.BAND_HZ["high_shelf"]
    peak_q: tuple[float, float] = eq.PEAK_Q
    shelf_q: float = eq.SHELF_Q
    comp_threshold_db: tuple[float, float] = compressor.THRESHOLD_DB
    comp_ratio: tuple[float, float] = compressor.RATIO
    comp_attack_ms: tuple[float, float] = compressor.ATTACK_MS
    comp_release_ms: tuple[float, float] = compressor.RELEASE_MS
    comp_knee_db: tuple[float, float] = compressor.KNEE_DB
    pan: tuple[float, float] = panner.PAN
    pan_laws: int = len(panner.PAN_LAWS)
    imager_width: tuple[float, float] = imager.WIDTH
    reverb_dry_weight: tuple[float, float] = reverb.DRY_WEIGHT
    gain_db: tuple[float, float] = gain.GAIN_DB

    def specs(self, n_irs: int = 1, max_rt60_s: float = 4.0) -> list[ParamSpec]:
        """All sampled parameters in the fixed factor order (without the ``applied`` flags).

        The tables' rows with these ranges; the pan law over ``pan_laws`` laws, the reverb's IR
        index over the bank's ``n_irs`` IRs and its RT60 over ``[0, max_rt60_s]``.
        """
        ranges = {key: getattr(self, name) for name, keys in _FIELD_KEYS.items() for key in keys}
        ranges["pan.law"] = (0, self.pan_laws - 1)
        out = []
        for table in TABLES:
            for p in table.params:
                if p.drawn == DRAWN_IR_INDEX:
                    p = p.with_range(p.low, max(n_irs - 1, 0))
                elif p.drawn == DRAWN_IR_RT60:
                    p = p.with_range(p.low, max_rt60_s)
                elif p.key in ranges:
                    p = p.with_range(*ranges[p.key])
                out.append(p)
        return out


_INTENDED_REVERB = {"drums": 0.5, "bass": 0.01, "other": 0.7, "vocals": 0.9, "mixture": 0.7}


@dataclass(frozen=True)
class FXProbabilities:
    """Per-effect application probabilities (official defaults).

    ``reverb`` is per stem kind (any mapping; kept as a read-only :class:`FrozenMap`). The official
    code *intends* drums 0.5, bass 0.01, other 0.7, vocals 0.9, but a dict mutation makes the
    effective values 0.5 / 0.05 / 0.05 / 0.05 (:data:`OFFICIAL_EFFECTIVE_REVERB`); we default to
    the intended ones. ``mixture`` (a sum of stems) uses the ``other`` value.
    """

    eq: float = 0.9
    compressor: float = 0.9
    pan: float = 0.3
    imager: float = 0.8
    gain: float = 0.5
    reverb: Mapping[str, float] = field(default_factory=lambda: FrozenMap(_INTENDED_REVERB))

    def __post_init__(self) -> None:
        object.__setattr__(self, "reverb", FrozenMap(self.reverb))

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
        """Plain values (``reverb`` a dict): JSON-ready, and ``dataclasses.replace(FXProbabilities(), **d)`` restores it."""
        return {f.name: dict(getattr(self, f.name)) if f.name == "reverb" else getattr(self, f.name)
                for f in dataclasses.fields(self)}


OFFICIAL_EFFECTIVE_REVERB = {"drums": 0.5, "bass": 0.05, "other": 0.05, "vocals": 0.05, "mixture": 0.05}


class FactorColumn(NamedTuple):
    """One column of :meth:`FXConfig.factor_matrix`: its name, its effect (or ``"order"``) and its
    parameter (None for the ``applied`` and order flags)."""

    name: str
    effect: str
    spec: ParamSpec | None


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

    def factor_columns(self) -> list[FactorColumn]:
        """The columns of :meth:`factor_matrix`: per effect its ``applied`` flag then its parameters
        (in table order), then the two order flags."""
        cols = []
        for fx in FX_NAMES:
            cols.append(FactorColumn(f"{fx}.applied", fx, None))
            cols += [FactorColumn(s.key, fx, s) for s in self.specs if s.effect == fx]
        return cols + [FactorColumn("order.eq_first", "order", None), FactorColumn("order.pan_first", "order", None)]

    def factor_names(self) -> list[str]:
        """Names of the columns of :meth:`factor_matrix`."""
        return [c.name for c in self.factor_columns()]

    def factor_matrix(self) -> torch.Tensor:
        """Fixed-length normalised factors ``(batch, n_factors)`` in [0, 1].

        Per effect: an ``applied`` flag, then each parameter normalised to its range, or its
        neutral value when the effect was off; categorical parameters become ``index / (n − 1)``;
        then the two order flags.
        """
        cols = []
        for column in self.factor_columns():
            s = column.spec
            if column.effect == "order":
                cols.append((self.eq_first if column.name == "order.eq_first" else self.pan_first).float())
            elif s is None:
                cols.append(self.applied[column.effect].float())
            else:
                on = self.applied[column.effect]
                v = torch.where(on, self.values[s.key].float(), torch.full_like(self.values[s.key].float(), s.neutral))
                cols.append(s.normalize(v))
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
