"""Fixed-horizon tests of a treatment against its control: the absolute difference of means
or the relative one (lift), each with its delta-method standard error, a Welch t interval and
a two-sided p-value, as GrowthBook's gbstats computes them.

With ``a`` the control and ``b`` the treatment, ``v`` a unit's variance and ``m`` a mean:

- absolute: ``m_b − m_a``, variance ``v_b/n_b + v_a/n_a``;
- relative: ``(m_b − m_a) / |m_a|``, variance by the delta method
  ``v_b/(n_b m_a²) + v_a m_b² / (n_a m_a⁴)``;
- degrees of freedom by Welch–Satterthwaite. For two proportions (v = p(1 − p)) this is the
  unpooled two-proportion z-test: the degrees of freedom are then in the thousands.

gbstats's published case (tests/frequentist/test_tests.py), means 0.41 and 0.70:

>>> from .statistics import SampleMean
>>> a = SampleMean(3407, 1396.87, 52377.9767)
>>> b = SampleMean(3461, 2422.7, 134698.29)
>>> e = difference(a, b)
>>> round(e.estimate, 5), [round(x, 5) for x in e.ci], round(e.p_value, 5)
(0.29, [0.04538, 0.53462], 0.02016)
>>> r = difference(a, b, relative=True)
>>> round(r.estimate, 5), [round(x, 5) for x in r.ci], round(r.p_value, 5)
(0.70732, [-0.03526, 1.44989], 0.06191)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .notices import BASELINE_ZERO, MIN_UNITS, TOO_FEW_UNITS, ZERO_VARIANCE, Notice
from .statistics import Proportion, Statistic

__all__ = ["Effect", "Moments", "difference", "from_moments", "moments", "test_name", "undefined"]


@dataclass(frozen=True)
class Moments:
    """An effect's estimate, the variance of the estimate, Welch's degrees of freedom, and
    what kept it from being computed (estimate and variance NaN then)."""

    estimate: float
    variance: float
    dof: float
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class Effect:
    """A difference between two arms: ``estimate`` (absolute, or relative as a fraction:
    0.05 is +5%), its standard error, its interval at ``1 − alpha``, the p-value of "no
    difference", which ``test`` gave them, and notices (NaN values when one stopped it)."""

    estimate: float
    se: float
    ci: tuple[float, float]
    p_value: float
    relative: bool
    test: str
    notices: tuple[Notice, ...] = ()

    @property
    def significant(self) -> bool:
        """The interval excludes 0."""
        return self.ci[0] > 0 or self.ci[1] < 0


def moments(control: Statistic, treatment: Statistic, relative: bool = False,
            min_units: int = MIN_UNITS) -> Moments:
    """The estimate of the effect and its variance (the delta method for ``relative``).

    >>> from .statistics import SampleMean
    >>> m = moments(SampleMean(10, 100, 1002.25), SampleMean(10, 105, 1111.5), relative=True)
    >>> round(m.estimate, 5), round(math.sqrt(m.variance), 5)  # gbstats: 0.05, sd 0.03572
    (0.05, 0.03572)
    """
    a, b = control, treatment
    notices: list[Notice] = []
    if min(a.n, b.n) < min_units:
        notices.append(Notice(TOO_FEW_UNITS, f"{min(a.n, b.n)} units in an arm; the intervals "
                              f"need at least {min_units}"))
    if min(a.n, b.n) < 2 or a.variance <= 0 or b.variance <= 0:
        if min(a.n, b.n) >= 2:
            notices.append(Notice(ZERO_VARIANCE, "an arm's values are all equal: no standard "
                                  "error, no test"))
        return Moments(math.nan, math.nan, math.nan, tuple(notices))
    va, vb = a.variance / a.n, b.variance / b.n
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    ma, mb = a.mean, b.mean
    if not relative:
        return Moments(mb - ma, va + vb, dof, tuple(notices))
    if ma == 0:
        notices.append(Notice(BASELINE_ZERO, "the control's mean is 0: no relative difference"))
        return Moments(math.nan, math.nan, dof, tuple(notices))
    return Moments((mb - ma) / abs(ma), vb / ma**2 + va * mb**2 / ma**4, dof, tuple(notices))


def test_name(control: Statistic, treatment: Statistic) -> str:
    """``two-proportion`` for two 0/1 metrics, else ``welch``."""
    both = isinstance(control, Proportion) and isinstance(treatment, Proportion)
    return "two-proportion" if both else "welch"


def undefined(relative: bool, test: str, notices: tuple[Notice, ...]) -> Effect:
    """The effect that could not be computed, with why."""
    return Effect(math.nan, math.nan, (math.nan, math.nan), math.nan, relative, test, notices)


def from_moments(m: Moments, relative: bool, test: str, alpha: float = 0.05) -> Effect:
    """A two-sided t test and interval at ``1 − alpha`` on :class:`Moments`."""
    if not math.isfinite(m.estimate) or not m.variance > 0:
        return undefined(relative, test, m.notices)
    se = math.sqrt(m.variance)
    from scipy import stats as sps  # scipy.stats: imported when first needed
    half = float(sps.t.ppf(1 - alpha / 2, m.dof)) * se
    p = 2 * float(sps.t.sf(abs(m.estimate) / se, m.dof))
    return Effect(m.estimate, se, (m.estimate - half, m.estimate + half), p, relative, test, m.notices)


def difference(control: Statistic, treatment: Statistic, relative: bool = False,
               alpha: float = 0.05) -> Effect:
    """The fixed-horizon :class:`Effect` of ``treatment`` over ``control``: Welch's t test
    (for two proportions, the unpooled two-proportion test).

    gbstats: 14 of 28 against 16 of 30, relative:

    >>> e = difference(Proportion(28, 14), Proportion(30, 16), relative=True)
    >>> e.test, round(e.estimate, 5), [round(x, 5) for x in e.ci], round(e.p_value, 5)
    ('two-proportion', 0.06667, [-0.47767, 0.61101], 0.80707)
    """
    test = test_name(control, treatment)
    return from_moments(moments(control, treatment, relative), relative, test, alpha)
