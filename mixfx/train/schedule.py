r"""Probability scheduling (paper §2.2): per-FX validation losses → per-FX application probabilities.

After each validation pass the encoder's contrastive loss is measured on batches manipulated with one
effect only, one value per effect. Harder effects (higher loss) are then applied more often, within
:math:`[p_{min}, p_{max}] = [0.1, 1.0]`. The paper gives the range and the direction but not the
formula; the official code ships no scheduler. The rule used here:

1. Express every loss relative to the NT-Xent chance loss :math:`L_0 = \ln(2N - 1)` (the loss of
   an encoder whose embeddings are all alike; ``N`` pairs per batch, :func:`chance_loss`):
   :math:`r_i = L_i / L_0` (1 = the effect is not recognised at all, 0 = perfectly).
2. **Dead band.** If the spread :math:`S = \max_j r_j - \min_j r_j` is below ``min_spread``
   (default 0.02, i.e. 2 % of the chance loss), the losses have not separated beyond validation
   noise and nothing is rescheduled: the previous probabilities are kept (equal ones when there are
   none).
3. Otherwise the probabilities are linear in :math:`r`, centred on the midpoint of the range:

   .. math::
       p_i = \frac{p_{min} + p_{max}}{2}
             + (p_{max} - p_{min}) \frac{r_i - (\max_j r_j + \min_j r_j)/2}{\max(S, S_{full})}

   with :math:`S_{full}` = ``full_spread`` (default 0.25). For :math:`S \ge S_{full}` this is the
   min–max map onto the whole range (easiest effect 0.1, hardest 1.0); for smaller spreads the
   range used shrinks in proportion, so a difference of :math:`\delta` (in units of the chance loss)
   moves a probability by at most :math:`0.9\,\delta / S_{full}`.

Why: a plain min–max map of the raw losses stretches *any* difference onto the whole range. At step 0
the untrained encoder's per-FX losses were 2.70785–2.70805 (chance ``ln 15`` = 2.70805), so
5th-decimal noise became eq 1.00 vs gain 0.10, and the schedule swung between validations. The dead
band ignores such noise, and the bounded slope keeps small, real differences from flipping the
schedule; dividing by the chance loss makes both thresholds independent of the batch size.
"""

from __future__ import annotations

import math

from mixfx.errors import MixfxError
from mixfx.fx.params import FX_NAMES, FXProbabilities

P_MIN, P_MAX = 0.1, 1.0
MIN_SPREAD = 0.02
"""Default dead band: spread of the chance-relative losses below which nothing is rescheduled."""
FULL_SPREAD = 0.25
"""Default spread of the chance-relative losses from which the whole ``[p_min, p_max]`` range is used."""


def chance_loss(n_pairs: int) -> float:
    """NT-Xent loss of embeddings that carry no information: ``ln(2·n_pairs − 1)`` (nats).

    With ``N`` pairs every one of the ``2N`` items has ``2N − 1`` candidates (its positive and
    ``2N − 2`` negatives); equal similarities give each the probability ``1 / (2N − 1)``.

    Raises:
        MixfxError: ``n_pairs`` < 2 (no negatives, the loss is 0 whatever the encoder).
    """
    if n_pairs < 2:
        raise MixfxError(f"chance_loss: need at least 2 pairs (negatives), got {n_pairs}")
    return math.log(2 * n_pairs - 1)


def _check(losses: dict[str, float], chance: float, min_spread: float, full_spread: float) -> None:
    if not chance > 0:
        raise MixfxError(f"probability scheduling: chance_loss must be > 0, got {chance}")
    if not 0 <= min_spread <= full_spread or not full_spread > 0:
        raise MixfxError(f"probability scheduling: need 0 ≤ min_spread ≤ full_spread and full_spread > 0, "
                         f"got {min_spread}, {full_spread}")
    bad = {fx: v for fx, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise MixfxError(f"probability scheduling: non-finite validation losses {bad}")


def losses_separated(losses: dict[str, float], *, chance_loss: float, min_spread: float = MIN_SPREAD) -> bool:
    """Whether the per-FX losses differ by at least ``min_spread`` of the chance loss (see the module rule)."""
    _check(losses, chance_loss, min_spread, max(min_spread, FULL_SPREAD))
    if len(losses) < 2:
        return False
    return (max(losses.values()) - min(losses.values())) / chance_loss >= min_spread


def losses_to_probabilities(
    losses: dict[str, float],
    *,
    chance_loss: float,
    previous: dict[str, float] | None = None,
    p_min: float = P_MIN,
    p_max: float = P_MAX,
    min_spread: float = MIN_SPREAD,
    full_spread: float = FULL_SPREAD,
) -> dict[str, float]:
    """Map per-FX validation losses to application probabilities in ``[p_min, p_max]``.

    Args:
        losses: effect name → single-FX validation loss (nats).
        chance_loss: the loss of an uninformative encoder on the same batches (:func:`chance_loss`).
        previous: probabilities to keep while the losses have not separated (default: all equal to the
            midpoint ``(p_min + p_max) / 2``).
        min_spread: dead band, as a fraction of ``chance_loss``.
        full_spread: spread (fraction of ``chance_loss``) from which the whole range is used.

    Returns:
        effect name → probability; monotone non-decreasing in the loss.

    Raises:
        MixfxError: non-finite losses, ``chance_loss`` ≤ 0, inconsistent spreads, or ``previous``
            lacking an effect of ``losses``.
    """
    _check(losses, chance_loss, min_spread, full_spread)
    if not losses:
        return {}
    if not losses_separated(losses, chance_loss=chance_loss, min_spread=min_spread):
        if previous is None:
            return {fx: (p_min + p_max) / 2 for fx in losses}
        missing = set(losses) - set(previous)
        if missing:
            raise MixfxError(f"probability scheduling: previous probabilities lack {sorted(missing)}")
        return {fx: float(previous[fx]) for fx in losses}
    r = {fx: v / chance_loss for fx, v in losses.items()}
    lo, hi = min(r.values()), max(r.values())
    centre, scale = (lo + hi) / 2, max(hi - lo, full_spread)
    mid = (p_min + p_max) / 2
    return {fx: mid + (p_max - p_min) * (v - centre) / scale for fx, v in r.items()}


def per_fx_probabilities(p: FXProbabilities) -> dict[str, float]:
    """One probability per effect of ``p`` (reverb: the value for vocals), as logged (``p_<fx>``)."""
    return {fx: float(p.reverb["vocals"] if fx == "reverb" else getattr(p, fx)) for fx in FX_NAMES}


def scheduled_probabilities(
    base: FXProbabilities,
    losses: dict[str, float],
    *,
    chance_loss: float,
    current: FXProbabilities | None = None,
    min_spread: float = MIN_SPREAD,
    full_spread: float = FULL_SPREAD,
) -> FXProbabilities:
    """The chain probabilities after one scheduling update (reverb scaled per stem as the official chain).

    Args:
        base: probabilities the scheduled values replace (usually ``FXProbabilities()``).
        losses: single-FX validation loss of every effect in :data:`FX_NAMES`.
        chance_loss: see :func:`losses_to_probabilities`.
        current: the probabilities in use; returned unchanged while the losses have not separated
            (default ``base``).

    Raises:
        MixfxError: an effect's loss is missing, or see :func:`losses_to_probabilities`.
    """
    missing = set(FX_NAMES) - set(losses)
    if missing:
        raise MixfxError(f"probability scheduling: missing validation losses for {sorted(missing)}")
    if not losses_separated(losses, chance_loss=chance_loss, min_spread=min_spread):
        return current if current is not None else base
    return base.scaled(losses_to_probabilities(losses, chance_loss=chance_loss, min_spread=min_spread,
                                               full_spread=full_spread))
