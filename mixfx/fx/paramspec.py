"""The parameter tables of the effects: one :class:`ParamSpec` row per sampled parameter.

Each effect module of :mod:`mixfx.fx.effects` declares its rows and its reference process
function as an :class:`EffectTable`; the chain's sampling, the normalised factors, the labels
and the evaluation factor tables are all derived from these rows (:mod:`mixfx.fx.params`).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch


class ParamKind(str, enum.Enum):
    """What a parameter's values are. The values (``"float"`` …) are the names written to files."""

    CONTINUOUS = "float"
    """Uniform in ``[low, high]``."""
    CATEGORICAL = "category"
    """An unordered index ``low … high`` (integers)."""
    BOOL = "bool"
    """0 or 1."""


DRAWN_UNIFORM = "uniform"
DRAWN_IR_INDEX = "ir_index"
DRAWN_IR_RT60 = "ir_rt60_s"
DRAWN = (DRAWN_UNIFORM, DRAWN_IR_INDEX, DRAWN_IR_RT60)
"""How a value is drawn: uniformly from its range, or from the IR bank (the IR, or that IR's RT60)."""


@dataclass(frozen=True)
class ParamSpec:
    """One sampled parameter of one effect: its range, neutral value, kind and how it is drawn.

    Attributes:
        effect, name: the parameter's label is ``"<effect>.<name>"`` (:attr:`key`).
        low, high: the range (categorical: the first and last index).
        neutral: the value the factors show when the effect is off: a number, or ``"low"``,
            ``"mid"``, ``"high"`` for that point of the range (kept as a rule by :meth:`with_range`).
        kind: :class:`ParamKind`.
        unit: for the labelled table.
        scale: ``"linear"``: drawn uniformly on ``[low, high]`` and normalised linearly (the only
            scale the official chain uses).
        argument: the keyword of the effect's function that takes the value (``None``: a
            descriptor only, e.g. the reverb's RT60).
        drawn: one of :data:`DRAWN`.
        single_fx_value: the value forced in single-FX mode (the reverb is then fully wet), or None.
        unused_by: ``(stem kind, reason)`` pairs: stems whose processing in the full chain ignores
            this parameter (the evaluation drops it from their factors).
    """

    effect: str
    name: str
    low: float
    high: float
    neutral: float | str
    kind: ParamKind = ParamKind.CONTINUOUS
    unit: str = ""
    scale: str = "linear"
    argument: str | None = ""
    drawn: str = DRAWN_UNIFORM
    single_fx_value: float | None = None
    unused_by: tuple[tuple[str, str], ...] = ()
    neutral_rule: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ParamKind(self.kind))
        if isinstance(self.neutral, str):
            rules = {"low": self.low, "mid": (self.low + self.high) / 2, "high": self.high}
            if self.neutral not in rules:
                raise ValueError(f"{self.key}: neutral must be a number or one of {tuple(rules)}, got {self.neutral!r}")
            object.__setattr__(self, "neutral_rule", self.neutral)
            object.__setattr__(self, "neutral", rules[self.neutral])
        if self.argument == "":
            object.__setattr__(self, "argument", self.name)
        if self.scale != "linear":
            raise ValueError(f"{self.key}: unsupported scale {self.scale!r} (only 'linear')")
        if self.drawn not in DRAWN:
            raise ValueError(f"{self.key}: drawn must be one of {DRAWN}, got {self.drawn!r}")

    @property
    def key(self) -> str:
        return f"{self.effect}.{self.name}"

    def with_range(self, low: float, high: float) -> "ParamSpec":
        """The same parameter over ``[low, high]`` (a ``"low"``/``"mid"``/``"high"`` neutral follows the range)."""
        return dataclasses.replace(self, low=low, high=high, neutral=self.neutral_rule or self.neutral)

    def draw(self, u: torch.Tensor) -> torch.Tensor:
        """The value for uniform draws ``u`` in [0, 1) (float64): ``low + (high − low)·u`` as float32, or
        for a categorical / bool parameter the integer ``low + ⌊u·(high − low + 1)⌋`` (int64)."""
        if self.kind is ParamKind.CONTINUOUS:
            return (self.low + (self.high - self.low) * u).float()
        return (self.low + (u * (self.high - self.low + 1)).floor().clamp_max(self.high - self.low)).long()

    def normalize(self, value: torch.Tensor) -> torch.Tensor:
        """Map a value to [0, 1]: ``(value − low) / (high − low)``, clipped (0 for an empty range)."""
        span = self.high - self.low
        if span == 0:
            return torch.zeros_like(value, dtype=torch.float32)
        return ((value.float() - self.low) / span).clamp(0, 1)


@dataclass(frozen=True)
class EffectTable:
    """An effect's parameter table and its reference process function.

    ``process(x, sample_rate, values, **context)`` applies the effect (its textbook definition, no
    renormalisation) to ``x`` ``(batch, 2, samples)`` with ``values`` keyed ``"<effect>.<name>"``;
    ``context`` may hold ``backend``, ``irs`` (the IR bank's ``(n, 2, L)`` tensor) and ``drums``
    (the drum routing of the reverb); each effect ignores what it does not use.
    """

    name: str
    params: tuple[ParamSpec, ...]
    process: Callable[..., torch.Tensor]

    def arguments(self, values: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``values`` of this effect's parameters under their function's keywords (descriptors left out)."""
        return {p.argument: values[p.key] for p in self.params if p.argument is not None and p.key in values}


__all__ = ["DRAWN", "DRAWN_IR_INDEX", "DRAWN_IR_RT60", "DRAWN_UNIFORM", "EffectTable", "ParamKind", "ParamSpec"]
