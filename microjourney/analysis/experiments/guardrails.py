"""Guardrail verdicts: a metric the experiment must not harm (errors, contact rate, latency).

Read on the effect's interval (fixed-horizon, or sequential when the experiment is peeked
at), with ``higher_is_better`` saying which way is harm and ``margin`` the harm tolerated (in
the effect's units: 0.01 is 1% for a relative effect):

- **harmful**: the interval excludes 0 on the harmful side (the harm is shown);
- **ok**: the interval's harmful end is within the margin (no harm beyond it is left
  plausible; with the default margin 0, the interval lies wholly on the good side of 0);
- **inconclusive**: neither (the interval still holds a harm beyond the margin): more units,
  or a wider margin decided beforehand.

>>> from .frequentist import Effect
>>> worse = Effect(-0.04, 0.01, (-0.06, -0.02), 0.0001, True, "welch")
>>> verdict(worse).verdict, verdict(worse, higher_is_better=False).verdict
('harmful', 'ok')
>>> unclear = Effect(-0.004, 0.005, (-0.014, 0.006), 0.42, True, "welch")
>>> verdict(unclear).verdict, verdict(unclear, margin=0.02).verdict
('inconclusive', 'ok')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .frequentist import Effect

__all__ = ["Guardrail", "verdict"]

HARMFUL, OK, INCONCLUSIVE = "harmful", "ok", "inconclusive"


@dataclass(frozen=True)
class Guardrail:
    """``verdict`` (harmful, ok or inconclusive) and the reason, in words."""

    verdict: str
    reason: str


def verdict(effect: Effect, higher_is_better: bool = True, margin: float = 0.0) -> Guardrail:
    """The :class:`Guardrail` verdict of ``effect`` (see the module's rule)."""
    low, high = effect.ci
    if math.isnan(low) or math.isnan(high):
        return Guardrail(INCONCLUSIVE, "no interval: " + "; ".join(n.message for n in effect.notices))
    # Harm is the lower end for a metric to raise, the upper end (sign flipped) for one to lower.
    harm_end, good_end = (low, high) if higher_is_better else (-high, -low)
    if good_end < 0:
        return Guardrail(HARMFUL, f"the interval ({low:.4g}, {high:.4g}) lies wholly on the "
                         "harmful side of 0")
    if harm_end >= -margin:
        return Guardrail(OK, f"no harm beyond {margin:g} within the interval ({low:.4g}, {high:.4g})")
    return Guardrail(INCONCLUSIVE, f"the interval ({low:.4g}, {high:.4g}) still holds a harm "
                     f"beyond {margin:g}")
