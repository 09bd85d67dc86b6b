"""Bayesian reading of a difference: the chance that the treatment beats the control and the
expected loss of each choice, on a Gaussian approximation (GrowthBook's "effect" model).

The data give the effect's estimate ``d`` (absolute or relative, as in :mod:`.frequentist`)
with variance ``s²``. The prior on the effect is Gaussian, on the same scale:

- **default: improper flat** (``Prior()``): the posterior is N(d, s²); chance to win and the
  interval are then the frequentist ones read as probabilities;
- **proper** (``Prior(mean, variance, proper=True)``): precision-weighted,
  posterior variance ``1/(1/s² + 1/τ²)``, mean ``(d/s² + μ/τ²)`` times it. E.g. a relative prior
  N(0, 0.3²) says lifts beyond ±60% are rare, which shrinks noisy early lifts towards 0.

With the posterior N(μ, σ²) of the effect δ: chance to win ``P(δ > 0) = Φ(μ/σ)``; the expected
loss (risk) of shipping the treatment ``E[max(−δ, 0)] = σφ(μ/σ) − μΦ(−μ/σ)`` and of keeping
the control ``E[max(δ, 0)] = σφ(μ/σ) + μΦ(μ/σ)``.

gbstats's published case, 49 of 100 against 51 of 100 (relative):

>>> from .statistics import Proportion
>>> b = bayesian(Proportion(100, 49), Proportion(100, 51))
>>> round(b.chance_to_win, 5), round(b.risk_control, 5), round(b.risk_treatment, 5)
(0.60918, 0.0814, 0.04058)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .frequentist import moments
from .notices import MIN_UNITS, Notice
from .statistics import Statistic

__all__ = ["Bayesian", "Prior", "bayesian", "posterior"]


@dataclass(frozen=True)
class Prior:
    """A Gaussian prior on the effect, on the scale of the effect analysed (a relative prior
    for relative effects); ``proper=False`` (the default) ignores mean and variance: flat."""

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False


@dataclass(frozen=True)
class Bayesian:
    """The posterior of the effect: its ``mean`` and ``sd``, credible interval, chance to
    win, and the expected loss of choosing the control or the treatment (in the effect's
    units); NaN and 0.5 with notices when the data allow no reading."""

    mean: float
    sd: float
    ci: tuple[float, float]
    chance_to_win: float
    risk_control: float
    risk_treatment: float
    relative: bool
    notices: tuple[Notice, ...] = ()


def posterior(estimate: float, variance: float, prior: Prior = Prior(), alpha: float = 0.05,
              relative: bool = True, notices: tuple[Notice, ...] = ()) -> Bayesian:
    """The :class:`Bayesian` reading of an estimate with its variance under ``prior``.

    A proper prior N(0.1, 0.1) with gbstats's estimate 0.05, sd 0.03572:

    >>> b = posterior(0.05, 0.035721 ** 2, Prior(0.1, 0.1, proper=True))
    >>> round(b.mean, 4), round(b.chance_to_win, 4)  # gbstats: 0.05063, 0.92315
    (0.0506, 0.9231)
    """
    precision = (1 / variance if variance > 0 else 0.0) + (1 / prior.variance if prior.proper else 0.0)
    if precision <= 0 or (not math.isfinite(estimate) and not prior.proper):
        nan = math.nan
        return Bayesian(nan, nan, (nan, nan), 0.5, nan, nan, relative, notices)
    if variance > 0 and math.isfinite(estimate):
        weighted = estimate / variance + (prior.mean / prior.variance if prior.proper else 0.0)
    else:
        weighted = prior.mean / prior.variance
    mu, sd = weighted / precision, math.sqrt(1 / precision)
    z = mu / sd
    from scipy.stats import norm  # scipy.stats: imported when first needed
    pdf, win = float(norm.pdf(z)), float(norm.cdf(z))
    risk_treatment = max(0.0, sd * pdf - mu * (1 - win))
    risk_control = max(0.0, sd * pdf + mu * win)
    q = float(norm.ppf(1 - alpha / 2))
    return Bayesian(mu, sd, (mu - q * sd, mu + q * sd), win, risk_control, risk_treatment,
                    relative, notices)


def bayesian(control: Statistic, treatment: Statistic, relative: bool = True,
             prior: Prior = Prior(), alpha: float = 0.05, min_units: int = MIN_UNITS) -> Bayesian:
    """Chance to win and risks of ``treatment`` against ``control`` (relative by default,
    as GrowthBook).

    gbstats's means 10.0 and 10.5 of 10 units each:

    >>> from .statistics import SampleMean
    >>> b = bayesian(SampleMean(10, 100, 1002.25), SampleMean(10, 105, 1111.5), min_units=2)
    >>> round(b.chance_to_win, 5), round(b.risk_control, 5), round(b.risk_treatment, 5)
    (0.91923, 0.05131, 0.00131)
    """
    m = moments(control, treatment, relative, min_units)
    return posterior(m.estimate, m.variance, prior, alpha, relative, m.notices)
