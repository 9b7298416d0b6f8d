"""The factors of a disentanglement evaluation set (:mod:`mixeval.evalset`): what DCIMIG, DCI-RF, MIG
and SAP compare the codes with.

Factors (:func:`item_factors`) are the sampled FX parameters, normalised to their ranges
(:meth:`FXConfig.factor_matrix`): an effect that was not applied takes its neutral value and the
``<effect>.applied`` flag is a factor. Per case:

* full FX: every parameter, the six ``applied`` flags and the two order flags; for drums the reverb
  dry weight is dropped (the drum routing does not use it);
* single FX: only that effect's parameters (its flag and the order flags are constant or act on
  nothing);
* categorical parameters (pan law, IR index): ``categorical="drop"`` (default; DCI-RF regresses
  factors as numbers, which is meaningless for unordered categories — the reverb's RT60 stays as the
  IR's continuous descriptor) or ``"onehot"`` (one 0/1 factor per category). Boolean parameters
  (gain inversion, flags) are 0/1 factors;
* then constant columns are dropped (they crash or inflate DCI, see the notes), with the reason kept.

A multitrack item's factors are the four stems' factors side by side (``"drums/eq.peak1_q"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from mixeval.errors import MixevalError
from mixeval.evalset import KINDS, ItemSet
from mixfx import SAMPLE_RATE, STEMS
from mixfx.fx.params import FXConfig, ParamKind

__all__ = ["FactorSet", "factor_table", "item_factors"]


@dataclass
class FactorSet:
    """Factors of one kind of an :class:`ItemSet`: ``matrix`` ``(n_items, n_factors)`` in [0, 1]."""

    matrix: np.ndarray
    names: list[str]
    dropped: dict[str, str] = field(default_factory=dict)


def _stem_factors(c: FXConfig, stem: str, mode: str, categorical: str) -> tuple[list[np.ndarray], list[str], dict[str, str]]:
    """One stem's factor columns under the module docstring's rules, read from the parameter tables
    (:meth:`FXConfig.factor_columns`: each column's effect and :class:`~mixfx.fx.paramspec.ParamSpec`)."""
    mat = c.factor_matrix().double().numpy()
    cols, out_names, dropped = [], [], {}
    for j, column in enumerate(c.factor_columns()):
        name, spec = column.name, column.spec
        if mode != "full" and (column.effect != mode or spec is None):
            continue  # other effects are off; the flag is constant; the order acts on nothing
        unused = dict(spec.unused_by) if spec is not None else {}
        if mode == "full" and stem in unused:
            dropped[name] = unused[stem]
            continue
        if spec is not None and spec.kind is ParamKind.CATEGORICAL:
            if categorical == "drop":
                dropped[name] = "categorical (dropped)"
                continue
            on = c.applied[spec.effect]
            value = torch.where(on, c.values[name].long(), torch.full_like(c.values[name].long(), int(spec.neutral)))
            for v in range(int(spec.low), int(spec.high) + 1):
                cols.append((value == v).double().numpy())
                out_names.append(f"{name}={v}")
            continue
        cols.append(mat[:, j])
        out_names.append(name)
    return cols, out_names, dropped


def item_factors(items: ItemSet, kind: str, *, categorical: str = "drop") -> FactorSet:
    """The factor matrix of one kind (a stem or ``"mixture"``) of a set; see the module docstring.

    Raises:
        MixevalError: unknown kind, or no factor varies (e.g. every configuration identical).
    """
    if kind not in KINDS:
        raise MixevalError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    stems = STEMS if kind == "mixture" else (kind,)
    cols, names, dropped = [], [], {}
    for stem in stems:
        c, n, d = _stem_factors(items.fx[stem], stem, items.mode, categorical)
        prefix = f"{stem}/" if kind == "mixture" else ""
        cols += c
        names += [prefix + x for x in n]
        dropped.update({prefix + k: v for k, v in d.items()})
    mat = np.stack(cols, axis=1) if cols else np.zeros((len(items), 0))
    keep = np.ptp(mat, axis=0) > 0 if mat.size else np.zeros(0, dtype=bool)
    for j in np.flatnonzero(~keep):
        dropped[names[j]] = "constant"
    if not keep.any():
        raise MixevalError(f"set seed {items.seed}, {items.mode}, {kind}: no factor varies over the {len(items)} items")
    return FactorSet(mat[:, keep], [n for n, k in zip(names, keep) if k], dropped)


def factor_table(items: ItemSet, *, categorical: str = "drop", sample_rate: int = SAMPLE_RATE) -> pd.DataFrame:
    """One row per item: segment, configuration and the multitrack factors used by the metrics.

    A stem's factors are the columns prefixed with its name.
    """
    fs = item_factors(items, "mixture", categorical=categorical)
    seg = [items.segments[c] for c in items.content]
    df = pd.DataFrame({
        "item": np.arange(len(items)), "seed": items.seed, "mode": items.mode, "protocol": items.protocol,
        "content": items.content, "configuration": items.config_id,
        "song": [s.song for s in seg], "start_s": [s.start / sample_rate for s in seg],
    })
    return pd.concat([df, pd.DataFrame(fs.matrix, columns=fs.names)], axis=1)
