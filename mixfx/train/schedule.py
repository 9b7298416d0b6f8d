r"""Probability scheduling (paper §2.2): per-FX validation losses → per-FX application probabilities.

After each validation pass the encoder's contrastive loss is measured on batches manipulated with one
effect only, one value per effect. Harder effects (higher loss) are then applied more often:

.. math::
    p_i = p_{min} + (p_{max} - p_{min}) \frac{L_i - \min_j L_j}{\max_j L_j - \min_j L_j}

with :math:`[p_{min}, p_{max}] = [0.1, 1.0]`. The paper gives the range and the direction but not the
formula; the official code ships no scheduler. This min–max mapping is the simplest monotone map onto
the whole range (the easiest effect gets 0.1, the hardest 1.0). When all losses are equal every
effect gets the midpoint.
"""

from __future__ import annotations

from mixfx.fx.params import FX_NAMES, FXProbabilities

P_MIN, P_MAX = 0.1, 1.0


def losses_to_probabilities(losses: dict[str, float], *, p_min: float = P_MIN, p_max: float = P_MAX) -> dict[str, float]:
    """Map per-FX validation losses to application probabilities in ``[p_min, p_max]`` (min–max, monotone)."""
    if not losses:
        return {}
    lo, hi = min(losses.values()), max(losses.values())
    if hi - lo < 1e-12:
        return {fx: (p_min + p_max) / 2 for fx in losses}
    return {fx: p_min + (p_max - p_min) * (v - lo) / (hi - lo) for fx, v in losses.items()}


def scheduled_probabilities(base: FXProbabilities, losses: dict[str, float]) -> FXProbabilities:
    """The chain probabilities after one scheduling update (reverb scaled per stem as the official chain)."""
    missing = set(FX_NAMES) - set(losses)
    if missing:
        raise ValueError(f"missing validation losses for {sorted(missing)}")
    return base.scaled(losses_to_probabilities(losses))
