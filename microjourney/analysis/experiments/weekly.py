"""Effect by week: durable, or a novelty that fades?

A new design often moves people in its first days by being new (or puts them off by being
unfamiliar); what matters is the effect once that wears off. Given the effects of the same
comparison computed on each week's units (first exposed that week, or active that week),
first week to last:

- **novelty**: the first week's effect is significant and the last week's is significantly
  smaller in the same direction (two-sided z-test of first − last at ``alpha``, the weeks'
  units independent): it fades;
- **durable**: the last week's effect is significant, in the first week's direction when that
  one is significant, and not significantly smaller than the first;
- **inconclusive**: fewer than two weeks with an estimate, or neither of the above.

>>> from .frequentist import Effect
>>> def week(d, se):
...     return Effect(d, se, (d - 1.96 * se, d + 1.96 * se), math.nan, True, "welch")
>>> durability([week(0.10, 0.02), week(0.06, 0.02), week(0.01, 0.02)]).verdict
'novelty'
>>> durability([week(0.05, 0.02), week(0.06, 0.02), week(0.05, 0.02)]).verdict
'durable'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .frequentist import Effect

__all__ = ["Durability", "durability"]


@dataclass(frozen=True)
class Durability:
    """The ``verdict`` (durable, novelty or inconclusive), the weekly estimates, the
    difference first − last week with its two-sided p-value, and the reason in words."""

    verdict: str
    estimates: tuple[float, ...]
    decline: float
    decline_p: float
    reason: str


def durability(weeks: Sequence[Effect], alpha: float = 0.05) -> Durability:
    """The :class:`Durability` of an effect from its weekly :class:`Effect` s, in order."""
    known = [w for w in weeks if math.isfinite(w.estimate) and w.se > 0]
    estimates = tuple(w.estimate for w in weeks)
    if len(known) < 2:
        return Durability("inconclusive", estimates, math.nan, math.nan,
                          "fewer than two weeks with an estimate")
    first, last = known[0], known[-1]
    decline = first.estimate - last.estimate
    from scipy.stats import norm  # scipy.stats: imported when first needed
    p = 2 * float(norm.sf(abs(decline) / math.hypot(first.se, last.se)))
    direction = math.copysign(1.0, first.estimate)
    fades = p < alpha and decline * direction > 0  # moved towards 0 (or past it)
    if first.significant and fades:
        return Durability("novelty", estimates, decline, p,
                          f"week 1 {first.estimate:+.4g}, last week {last.estimate:+.4g}: a "
                          f"significant fade (p = {p:.2g})")
    same_way = not first.significant or math.copysign(1.0, last.estimate) == direction
    if last.significant and same_way and not fades:
        return Durability("durable", estimates, decline, p,
                          f"last week {last.estimate:+.4g} is significant and no smaller than "
                          f"week 1 beyond chance (p = {p:.2g})")
    return Durability("inconclusive", estimates, decline, p,
                      "the last week's effect is not significant, or changed without a clear fade")
