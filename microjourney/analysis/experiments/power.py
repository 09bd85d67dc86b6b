"""Planning: the power of a two-sample test and the minimum detectable effect (MDE).

For two arms of ``n`` units each, a unit variance ``σ²`` (``p(1 − p)`` for a rate) and a
two-sided test at ``alpha``, the difference of means has standard error ``√(2σ²/n)`` and

- power to detect a true difference δ: ``Φ(δ/se − z₁₋α/₂) + Φ(−δ/se − z₁₋α/₂)``;
- MDE at ``power``: ``(z₁₋α/₂ + z_power) · √(2σ²/n)``; units per arm for δ:
  ``2σ² (z₁₋α/₂ + z_power)² / δ²`` (Lehr's rule of thumb ``16σ²/δ²`` at 5% and 80%).

A 10% conversion rate (σ² = 0.09), 1,000 units per arm: se = √(0.18 / 1000) = 0.013416 and
MDE = (1.959964 + 0.841621) × 0.013416 = 0.037587, i.e. 10% → 13.8%:

>>> round(mde(0.09, 1000), 6)
0.037587
>>> sample_size(0.02, 0.09)  # 2 × 0.09 × 2.801585² / 0.02² = 3531.99; Lehr: 3600
3532
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Plan", "mde", "plan", "power", "rate_variance", "sample_size"]


def rate_variance(rate: float) -> float:
    """The unit variance of a 0/1 metric with mean ``rate``: p(1 − p)."""
    return rate * (1 - rate)


def _z(alpha: float, power_: float) -> float:
    from scipy.stats import norm  # scipy.stats: imported when first needed
    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power_))


def power(effect: float, variance: float, n_per_variant: float, alpha: float = 0.05) -> float:
    """The chance that a two-sided test at ``alpha`` finds a true difference ``effect``.

    >>> round(power(0.037587, 0.09, 1000), 3)  # the MDE above: 80% by construction
    0.8
    """
    if n_per_variant <= 0 or variance <= 0:
        return math.nan
    se = math.sqrt(2 * variance / n_per_variant)
    from scipy.stats import norm  # scipy.stats: imported when first needed
    z = float(norm.ppf(1 - alpha / 2))
    shift = abs(effect) / se
    return float(norm.cdf(shift - z) + norm.cdf(-shift - z))


def mde(variance: float, n_per_variant: float, alpha: float = 0.05, power_: float = 0.8) -> float:
    """The smallest absolute difference found with chance ``power_``."""
    if n_per_variant <= 0:
        return math.nan
    return _z(alpha, power_) * math.sqrt(2 * variance / n_per_variant)


def sample_size(effect: float, variance: float, alpha: float = 0.05, power_: float = 0.8) -> int:
    """Units per arm to find an absolute difference ``effect`` with chance ``power_``."""
    return math.ceil(2 * variance * _z(alpha, power_) ** 2 / effect**2)


@dataclass(frozen=True)
class Plan:
    """A cycle's plan: ``days`` of ``units_per_day`` split over ``variants`` arms give
    ``n_per_variant``; the MDE absolute and relative to ``baseline``, at ``alpha`` and
    ``power``."""

    days: int
    units_per_day: float
    variants: int
    n_per_variant: int
    baseline: float
    variance: float
    alpha: float
    power: float
    mde: float
    mde_relative: float


def plan(baseline: float, units_per_day: float, variance: float | None = None, days: int = 14,
         variants: int = 2, alpha: float = 0.05, power_: float = 0.8) -> Plan:
    """What the next cycle (two weeks by default) can detect. ``variance`` defaults to the
    rate's ``p(1 − p)`` (``baseline`` a rate). Each treatment is compared with the control, so
    the MDE is that of one comparison at the per-arm size.

    500 units a day, 14 days, 2 arms: 3,500 per arm; a 10% rate: MDE = 2.801585 ×
    √(0.18 / 3500) = 0.020091, a 20% relative lift:

    >>> p = plan(0.10, 500)
    >>> p.n_per_variant, round(p.mde, 6), round(p.mde_relative, 3)
    (3500, 0.020091, 0.201)
    """
    var = rate_variance(baseline) if variance is None else variance
    n = int(units_per_day * days // variants)
    effect = mde(var, n, alpha, power_)
    relative = effect / abs(baseline) if baseline else math.nan
    return Plan(days, units_per_day, variants, n, baseline, var, alpha, power_, effect, relative)
