"""CUPED: less variance from a covariate measured before exposure (Deng et al., 2013).

Each arm's mean of the metric ``y`` is adjusted by the covariate ``x`` (the same metric, or a
related one, before the unit was exposed): ``ȳ − θ x̄``, with one ``θ = Cov(y, x) / Var(x)``
from both arms pooled (so that it does not depend on the treatment). Because exposure cannot
change what happened before it, E[x̄_b − x̄_a] = 0 and the adjusted difference
``(ȳ_b − ȳ_a) − θ (x̄_b − x̄_a)`` estimates the same effect; its unit variance
``Var(y) + θ² Var(x) − 2θ Cov(y, x)`` is smaller by the share ρ² of the variance x explains.
The relative difference divides by the control's unadjusted mean, its variance by the delta
method over (ȳ_a, x̄_a) and (ȳ_b, x̄_b).

gbstats's published case (means 0.47 and 0.70, covariates nearly unrelated, relative, read
sequentially with N* = 5,000):

>>> from .sequential import from_moments
>>> from .statistics import Regression, SampleMean
>>> a = Regression(3000, SampleMean(3000, 1396.87, 52377.9767), SampleMean(3000, 16.87, 527.9767), 1)
>>> b = Regression(3461, SampleMean(3461, 2422.7, 134698.29), SampleMean(3461, 22.7, 1348.29), 1)
>>> m, t = adjusted_moments(a, b, relative=True)
>>> e = from_moments(m, a.n + b.n, relative=True)
>>> round(e.estimate, 5), [round(x, 5) for x in e.ci]
(0.50338, [-0.50969, 1.51646])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .frequentist import Effect, Moments, difference, from_moments
from .notices import BASELINE_ZERO, MIN_UNITS, NEGATIVE_VARIANCE, TOO_FEW_UNITS, ZERO_VARIANCE, Notice
from .statistics import Regression

__all__ = ["Cuped", "adjusted_moments", "cuped", "theta"]


def theta(control: Regression, treatment: Regression) -> float:
    """The pooled regression coefficient of the metric on its covariate (0 when either has no
    spread).

    >>> from .statistics import SampleMean
    >>> a = Regression(2, SampleMean(2, 3, 5), SampleMean(2, 3, 5), 5)  # y = x = 1, 2
    >>> b = Regression(2, SampleMean(2, 7, 25), SampleMean(2, 7, 25), 25)  # y = x = 3, 4
    >>> theta(a, b)
    1.0
    """
    joint = control + treatment
    var_pre, var_post = joint.pre.variance, joint.post.variance
    if var_pre <= 0 or var_post <= 0:
        return 0.0
    return joint.covariance / var_pre


def _variance(s: Regression, t: float) -> float:
    return s.post.variance + t * t * s.pre.variance - 2 * t * s.covariance


def adjusted_moments(control: Regression, treatment: Regression, relative: bool = False,
                     theta_: float | None = None, min_units: int = MIN_UNITS) -> tuple[Moments, float]:
    """The CUPED-adjusted :class:`Moments` and the ``θ`` used (pooled unless given)."""
    a, b = control, treatment
    t = theta(a, b) if theta_ is None else theta_
    notices: list[Notice] = []
    if min(a.n, b.n) < min_units:
        notices.append(Notice(TOO_FEW_UNITS, f"{min(a.n, b.n)} units in an arm; the intervals "
                              f"need at least {min_units}"))
    nan = math.nan
    if min(a.n, b.n) < 2 or a.post.variance <= 0 or b.post.variance <= 0:
        if min(a.n, b.n) >= 2:
            notices.append(Notice(ZERO_VARIANCE, "an arm's values are all equal: no standard "
                                  "error, no test"))
        return Moments(nan, nan, nan, tuple(notices)), t
    var_a, var_b = _variance(a, t), _variance(b, t)
    if var_a <= 0 or var_b <= 0:
        notices.append(Notice(NEGATIVE_VARIANCE, f"the covariate's adjustment (θ = {t:.4g}) left "
                              "no variance: is the covariate the metric itself?"))
        return Moments(nan, nan, nan, tuple(notices)), t
    va, vb = var_a / a.n, var_b / b.n
    dof = (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    mean_a = a.post.mean - t * a.pre.mean
    mean_b = b.post.mean - t * b.pre.mean
    if not relative:
        return Moments(mean_b - mean_a, va + vb, dof, tuple(notices)), t
    base = a.post.mean
    if base == 0:
        notices.append(Notice(BASELINE_ZERO, "the control's mean is 0: no relative difference"))
        return Moments(nan, nan, dof, tuple(notices)), t
    # (ȳ_b − θx̄_b − ȳ_a + θx̄_a) / ȳ_a: gradient −ȳ_b/ȳ_a² in ȳ_a (θ x̄ terms are second order),
    # θ/ȳ_a in x̄_a, 1/ȳ_a in ȳ_b, −θ/ȳ_a in x̄_b.
    g = b.post.mean / base
    var_control = (a.post.variance * g * g - 2 * t * g * a.covariance + t * t * a.pre.variance) / a.n
    variance = (vb + var_control) / base**2
    return Moments((mean_b - mean_a) / abs(base), variance, dof, tuple(notices)), t


@dataclass(frozen=True)
class Cuped:
    """The adjusted effect beside the unadjusted one, the ``theta`` used, and the share of
    the estimate's variance the covariate removed (``1 − adjusted / unadjusted``)."""

    adjusted: Effect
    unadjusted: Effect
    theta: float
    variance_reduction: float


def cuped(control: Regression, treatment: Regression, relative: bool = False,
          alpha: float = 0.05, min_units: int = MIN_UNITS) -> Cuped:
    """The fixed-horizon CUPED :class:`Effect` (``test`` "cuped") beside the plain one.

    >>> from .statistics import SampleMean
    >>> a = Regression(3, SampleMean(3, 9, 29), SampleMean(3, 6, 14), 20)  # y = x + 1, x = 1, 2, 3
    >>> c = cuped(a, a, min_units=2)
    >>> c.adjusted.estimate, c.adjusted.notices[0].code
    (nan, 'negative-variance-after-cuped')
    """
    m, t = adjusted_moments(control, treatment, relative, None, min_units)
    adjusted = from_moments(m, relative, "cuped", alpha)
    plain = difference(control.post, treatment.post, relative, alpha)
    reduction = (1 - adjusted.se**2 / plain.se**2) if plain.se > 0 and adjusted.se > 0 else math.nan
    return Cuped(adjusted, plain, t, reduction)
