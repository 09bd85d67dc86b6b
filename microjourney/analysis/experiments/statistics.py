"""Sufficient statistics of one arm of an experiment, as the engine returns them: the number
of units and sums over units (of the metric, its squares, and for ratio metrics and CUPED
the cross products). Everything else is computed from these few numbers.

>>> s = SampleMean(n=4, sum=10.0, sum_squares=30.0)  # the values 1, 2, 3, 4
>>> s.mean, round(s.variance, 4)  # (30 − 10²/4) / 3
(2.5, 1.6667)
>>> Proportion(n=4, sum=1).variance  # 0.25 × 0.75
0.1875
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class SampleMean:
    """A metric's ``n`` units, the ``sum`` of their values and the sum of their squares."""

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else math.nan

    @property
    def variance(self) -> float:
        """The sample variance of one unit's value (0 with fewer than 2 units)."""
        if self.n <= 1:
            return 0.0
        return max(0.0, (self.sum_squares - self.sum * self.sum / self.n) / (self.n - 1))

    def __add__(self, other: SampleMean | Proportion) -> SampleMean:
        return SampleMean(self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares)


@dataclass(frozen=True)
class Proportion:
    """A 0/1 metric: ``n`` units of which ``sum`` are 1. Its variance is p(1 − p)."""

    n: int
    sum: float

    @property
    def sum_squares(self) -> float:
        return self.sum

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else math.nan

    @property
    def variance(self) -> float:
        if self.n <= 0:
            return 0.0
        p = self.mean
        return p * (1 - p)

    def __add__(self, other: Proportion) -> Proportion:
        return Proportion(self.n + other.n, self.sum + other.sum)


Moment = SampleMean | Proportion


def covariance(n: int, a: Moment, b: Moment, sum_products: float) -> float:
    """The covariance of two metrics of the same ``n`` units from the sum of their products
    (population form for two proportions, as their variances are; sample form otherwise).

    >>> covariance(3, SampleMean(3, 6, 14), SampleMean(3, 6, 14), 14.0)  # x = y = 1, 2, 3
    1.0
    """
    if n <= 1:
        return 0.0
    if isinstance(a, Proportion) and isinstance(b, Proportion):
        return sum_products / n - a.sum * b.sum / (n * n)
    return (sum_products - a.sum * b.sum / n) / (n - 1)


@dataclass(frozen=True)
class Ratio:
    """A ratio metric (e.g. revenue per order, orders being the units' denominators): per unit
    a numerator and a denominator, and the sum of their products. Its mean is Σnum / Σden; the
    variance of one unit is the delta method's, so that ``variance / n`` is the variance of
    the mean.

    >>> r = Ratio(3, SampleMean(3, 6, 14), SampleMean(3, 3, 3), 6.0)  # num 1, 2, 3 over 1, 1, 1
    >>> r.mean, r.variance
    (2.0, 1.0)
    """

    n: int
    numerator: Moment
    denominator: Moment
    sum_products: float

    @property
    def mean(self) -> float:
        return self.numerator.sum / self.denominator.sum if self.denominator.sum else math.nan

    @property
    def variance(self) -> float:
        mean_d = self.denominator.mean
        if self.n <= 1 or not mean_d:
            return 0.0
        mean_m = self.numerator.mean
        cov = covariance(self.n, self.numerator, self.denominator, self.sum_products)
        return (self.numerator.variance / mean_d**2 + self.denominator.variance * mean_m**2 / mean_d**4
                - 2 * cov * mean_m / mean_d**3)


@dataclass(frozen=True)
class Regression:
    """A metric measured after exposure (``post``) with its value before exposure (``pre``, the
    CUPED covariate) for the same ``n`` units, and the sum of their products."""

    n: int
    post: Moment
    pre: Moment
    sum_products: float

    @property
    def covariance(self) -> float:
        return covariance(self.n, self.post, self.pre, self.sum_products)

    def __add__(self, other: Regression) -> Regression:
        post = _add(self.post, other.post)
        pre = _add(self.pre, other.pre)
        return Regression(self.n + other.n, post, pre, self.sum_products + other.sum_products)


def _add(a: Moment, b: Moment) -> Moment:
    if isinstance(a, Proportion) and isinstance(b, Proportion):
        return a + b
    return SampleMean(a.n + b.n, a.sum + b.sum, a.sum_squares + b.sum_squares)


#: What a difference between arms can be computed on.
Statistic = SampleMean | Proportion | Ratio
