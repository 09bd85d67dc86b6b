"""Coded warnings beside an experiment's results: problems of the data or the method are
returned, not raised, so a result can still be shown with what limits it (as GrowthBook's
gbstats returns its messages)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The observed split of units differs from the planned one (chi-square p < 0.001).
SRM = "srm"
#: An arm has fewer units than the normal approximation needs (:data:`MIN_UNITS`).
TOO_FEW_UNITS = "too-few-units"
#: An arm's metric has no spread: no standard error, no test.
ZERO_VARIANCE = "zero-variance"
#: The control's mean is 0: a relative difference is undefined.
BASELINE_ZERO = "baseline-zero"
#: The covariate's adjustment left a variance ≤ 0 (rounding, or a covariate equal to the metric).
NEGATIVE_VARIANCE = "negative-variance-after-cuped"
#: Extreme values that dominate a mean (a data-quality check of the unit-level table).
OUTLIER = "outlier"
#: Units without a value of the metric (left out of its statistics).
MISSING_VALUES = "missing-values"

#: Fewer units than this in an arm: the intervals rest on a normal approximation that a few
#: dozen units do not yet justify.
MIN_UNITS = 30


@dataclass(frozen=True)
class Notice:
    """A coded warning: ``code`` (one of this module's constants) and a message for people.

    >>> Notice(ZERO_VARIANCE, "no spread").code
    'zero-variance'
    """

    code: str
    message: str


def unique(notices: Iterable[Notice]) -> tuple[Notice, ...]:
    """``notices`` without repeats, in the order first met.

    >>> unique([Notice("a", "x"), Notice("b", "y"), Notice("a", "x")])
    (Notice(code='a', message='x'), Notice(code='b', message='y'))
    """
    return tuple(dict.fromkeys(notices))
