"""Always-valid intervals for peeking: asymptotic confidence sequences (Waudby-Smith et al.,
"Time-uniform central limit theory and asymptotic confidence sequences", 2023,
arXiv:2103.06476, eq. 9), as GrowthBook's sequential testing uses them.

A fixed-horizon interval covers the effect at 95% when it is looked at once; looked at after
every batch of data and stopped at the first "significant" look, it finds an effect that is
not there far more often than 5%. A confidence sequence covers the effect at every look at
once: looking as often as one likes keeps the false-positive rate at ``alpha``.

With ``n`` the units of both arms, ``s² = n · Var(estimate)`` and ``ρ`` the mixture's tuning,
the half-width is ``√s² · √( 2(nρ² + 1) / (n²ρ²) · ln(√(nρ² + 1) / α) )``.

**N\\*** (``n_star``, default 5,000 units in all): the sample size at which the sequence is
tightest relative to the fixed-horizon interval; ``ρ`` is chosen from it
(``ρ² = (−2 ln α + ln(−2 ln α + 1)) / N*``, eq. 161). Set it near the number of units the
experiment will have when it is read for a decision: there the interval is about 1.5 times as
wide as the fixed-horizon one (:func:`halfwidth`); a far-off N\\* costs width, never validity.

The always-valid p-value is ``min(1, 1/E)``, E the mixture's e-value (eq. 155).

gbstats's published case, 1396 of 3000 against 2422 of 3461, relative:

>>> from .statistics import Proportion
>>> s = sequential(Proportion(3000, 1396), Proportion(3461, 2422), relative=True)
>>> round(s.estimate, 5), [round(x, 5) for x in s.ci]
(0.50386, [0.40098, 0.60675])
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from .frequentist import Effect, Moments, moments, undefined
from .notices import MIN_UNITS
from .statistics import Statistic

__all__ = ["N_STAR", "always_valid_p", "from_moments", "halfwidth", "halfwidths", "rho", "sequential"]

#: The default tuning sample size N* (units in both arms), as GrowthBook's default.
N_STAR = 5000


def rho(alpha: float = 0.05, n_star: float = N_STAR) -> float:
    """The mixture's tuning ``ρ`` that makes the sequence tightest at ``n_star`` units.

    >>> round(rho(0.05, 5000), 5)  # √((5.99146 + ln 6.99146) / 5000) = √(7.93615 / 5000)
    0.03984
    """
    log_term = -2 * math.log(alpha)
    return math.sqrt((log_term + math.log(log_term + 1)) / n_star)


def halfwidths(variance: npt.ArrayLike, n: npt.ArrayLike, alpha: float = 0.05,
               n_star: float = N_STAR) -> npt.NDArray[np.float64]:
    """Half-widths of the sequence for estimates of variance ``variance`` from ``n`` units in
    all (vectorised: arrays of looks or of simulated experiments)."""
    r2 = rho(alpha, n_star) ** 2
    n_ = np.asarray(n, dtype=np.float64)
    s2 = np.asarray(variance, dtype=np.float64) * n_
    inner = 2 * (n_ * r2 + 1) / (n_ * n_ * r2) * np.log(np.sqrt(n_ * r2 + 1) / alpha)
    return np.asarray(np.sqrt(s2 * inner), dtype=np.float64)


def halfwidth(variance: float, n: float, alpha: float = 0.05, n_star: float = N_STAR) -> float:
    """:func:`halfwidths` for one estimate.

    By hand, nρ² = 7.93615: √(0.001 × 5000) × √(2 × 8.93615 / (5000 × 7.93615) × ln(√8.93615 /
    0.05)) = 2.23607 × √(0.00045040 × 4.09079); a fixed interval's is 1.96 × √0.001 = 0.0620:

    >>> round(halfwidth(0.001, 5000), 4)
    0.096
    """
    return float(halfwidths(variance, n, alpha, n_star))


def always_valid_p(estimate: float, variance: float, n: float, alpha: float = 0.05,
                   n_star: float = N_STAR) -> float:
    """The always-valid p-value of "no effect": 1 / the mixture e-value, at most 1."""
    r2 = rho(alpha, n_star) ** 2
    scale = n * r2 + 1
    log_e = r2 * (estimate * estimate / variance * n) / (2 * scale) - 0.5 * math.log(scale)
    return 1.0 if log_e <= 0 else math.exp(-log_e)


def sequential(control: Statistic, treatment: Statistic, relative: bool = False,
               alpha: float = 0.05, n_star: float = N_STAR, min_units: int = MIN_UNITS) -> Effect:
    """The :class:`Effect` with the always-valid interval and p-value (``test`` "sequential"):
    valid at whichever look it is read."""
    m = moments(control, treatment, relative, min_units)
    return from_moments(m, control.n + treatment.n, relative, alpha, n_star)


def from_moments(m: Moments, n: int, relative: bool, alpha: float = 0.05,
                 n_star: float = N_STAR) -> Effect:
    """The always-valid :class:`Effect` of :class:`Moments` from ``n`` units in all (CUPED's
    adjusted moments too)."""
    if not math.isfinite(m.estimate) or not m.variance > 0:
        return undefined(relative, "sequential", m.notices)
    half = halfwidth(m.variance, n, alpha, n_star)
    p = always_valid_p(m.estimate, m.variance, n, alpha, n_star)
    return Effect(m.estimate, math.sqrt(m.variance), (m.estimate - half, m.estimate + half), p,
                  relative, "sequential", m.notices)
