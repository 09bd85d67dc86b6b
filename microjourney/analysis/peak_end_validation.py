"""Does the Peak-End rule hold for these customers? Checked, not assumed, where journeys have
ratings (an NPS or CSAT answer asked at a journey's end, or imported), one per episode
rescaled to [0, 1]. The rule is well replicated, but not everywhere alike: a meta-analysis of
174 effects found the peak-end score's correlation with a remembered rating large (r ≈ 0.58)
yet about the same as the plain mean's (Alaybek, Dalal, Fyffe et al., 2022), and a study of
service calls found the end weighing the other way. So the product reports what holds in the
user's data:

- **Correlations**: Pearson's r of the rating with each feature of :func:`peak_end.episodes`
  (by default the peak-end score, the mean, the end, the peak and the negative peak), with
  Fisher's z interval (``atanh r ± z/√(n − 3)``) and the t-test's p-value.
- **Peak-end against the mean**: the difference of their two correlations with the rating and
  Zou's (2007) interval for two correlations that share a variable and are measured on the
  same episodes (the two features are themselves correlated, so their separate intervals
  overlapping says little).
- **A fitted weighting**: ``rating = a + b_peak·peak + b_end·end + b_mean·mean`` by least
  squares, with standard errors and t intervals; the rule predicts ``b_peak ≈ b_end`` and
  ``b_mean ≈ 0``, the mean the reverse. Its fit out of sample is the k-fold cross-validated R²
  (1 − the held-out squared errors ÷ the ratings' squared deviations from their mean), beside
  the same for the mean alone and the peak-end score alone: a weighting that fits the episodes
  it was fitted on but predicts new ones no better than the mean is no reason to use it.

Problems come back as coded :class:`Notice` s, never raised; what cannot be computed is NaN.

>>> [round(x, 4) for x in fisher_interval(0.5, 50)]
[0.2575, 0.6833]
>>> [round(x, 3) for x in zou_interval(0.396, 0.179, 0.088, 66)]  # Zou (2007), example 2
[-0.093, 0.517]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from .experiments.notices import MISSING_VALUES, ZERO_VARIANCE, Notice

__all__ = [
    "MIN_RATINGS", "MISSING_VALUES", "SINGULAR", "TERMS", "TOO_FEW_RATINGS", "ZERO_VARIANCE", "Coefficient",
    "Correlation", "Difference", "Notice", "Validation", "correlation", "fisher_interval", "headline",
    "validate", "zou_interval",
]

FloatArray = npt.NDArray[np.float64]

#: Fewer rated episodes than :data:`MIN_RATINGS`: the intervals rest on approximations a few
#: dozen episodes do not yet justify (the estimates are still given).
TOO_FEW_RATINGS = "too-few-ratings"
#: The weighting cannot be fitted: its terms cannot be told apart (as when every episode has one
#: attempt, so that its peak, end and mean are the same number).
SINGULAR = "singular"
# ZERO_VARIANCE ("zero-variance": the ratings or a feature have no spread, so no correlation) and
# MISSING_VALUES ("missing-values": rated episodes without a feature's value, left out) are the
# experiments' codes, re-exported.

MIN_RATINGS = 30
#: The terms of the fitted weighting, after its intercept.
TERMS = ("peak", "end", "mean")


@dataclass(frozen=True)
class Correlation:
    """Pearson's r of the rating with ``feature`` over ``n`` episodes, its Fisher z interval and
    the two-sided p-value of r = 0."""

    feature: str
    r: float
    ci: tuple[float, float]
    p_value: float
    n: int


@dataclass(frozen=True)
class Difference:
    """r(rating, ``first``) − r(rating, ``second``) on the same episodes, with Zou's interval."""

    first: str
    second: str
    estimate: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class Coefficient:
    """A coefficient of the fitted weighting (``intercept`` or one of :data:`TERMS`): the
    estimate in rating units per unit of intensity, its standard error and t interval."""

    term: str
    estimate: float
    se: float
    ci: tuple[float, float]


@dataclass(frozen=True)
class Validation:
    """What the ratings say (see the module's docstring): ``n`` rated episodes; the
    ``correlations`` of each feature; the ``difference`` of peak-end's and the mean's; the
    ``weighting``'s coefficients (intercept first), its ``r2`` on the episodes it was fitted to
    and out of sample ``r2_cv``, beside ``r2_cv_mean`` (rating ~ mean) and ``r2_cv_peak_end``
    (rating ~ peak-end score); and notices."""

    n: int
    correlations: tuple[Correlation, ...]
    difference: Difference
    weighting: tuple[Coefficient, ...]
    r2: float
    r2_cv: float
    r2_cv_mean: float
    r2_cv_peak_end: float
    notices: tuple[Notice, ...]

    def correlation(self, feature: str) -> Correlation:
        """The correlation of ``feature`` (KeyError if it was not given)."""
        for c in self.correlations:
            if c.feature == feature:
                return c
        raise KeyError(feature)


def fisher_interval(r: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The interval of a correlation by Fisher's z: ``tanh(atanh r ± z/√(n − 3))``; NaN with
    fewer than 4 pairs or no r; ``(r, r)`` when |r| = 1.

    >>> [round(x, 4) for x in fisher_interval(-0.3, 103)]  # atanh(−0.3) ± 1.96/10, back by tanh
    [-0.4664, -0.113]
    """
    if n < 4 or math.isnan(r):
        return (math.nan, math.nan)
    if abs(r) >= 1:
        return (r, r)
    from scipy import stats as sps  # scipy.stats: imported when first needed
    half = float(sps.norm.ppf(0.5 + confidence / 2)) / math.sqrt(n - 3)
    z = math.atanh(r)
    return (math.tanh(z - half), math.tanh(z + half))


def zou_interval(r_a: float, r_b: float, r_ab: float, n: int,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Zou's (2007) interval for ``r_a − r_b``, two correlations with one variable in common
    (``r_a`` = r(y, a), ``r_b`` = r(y, b)) on the same ``n`` cases, ``r_ab`` = r(a, b): each r's
    Fisher interval, combined with the correlation of the two estimates (Olkin and Finn's
    large-sample formula)."""
    la, ua = fisher_interval(r_a, n, confidence)
    lb, ub = fisher_interval(r_b, n, confidence)
    if math.isnan(la) or math.isnan(lb) or math.isnan(r_ab):
        return (math.nan, math.nan)
    den = (1 - r_a ** 2) * (1 - r_b ** 2)
    c = ((r_ab - r_a * r_b / 2) * (1 - r_a ** 2 - r_b ** 2 - r_ab ** 2) + r_ab ** 3) / den if den > 0 else 1.0
    d = r_a - r_b
    low = d - math.sqrt(max(0.0, (r_a - la) ** 2 + (ub - r_b) ** 2 - 2 * c * (r_a - la) * (ub - r_b)))
    high = d + math.sqrt(max(0.0, (ua - r_a) ** 2 + (r_b - lb) ** 2 - 2 * c * (ua - r_a) * (r_b - lb)))
    return (low, high)


def _r(x: FloatArray, y: FloatArray) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    sxy, sxx, syy = float(dx @ dy), float(dx @ dx), float(dy @ dy)
    # A spread below rounding (a constant stored as floats) counts as none.
    if sxx <= 1e-24 * len(x) or syy <= 1e-24 * len(y):
        return math.nan
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def correlation(feature: str, x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray,
                confidence: float = 0.95) -> Correlation:
    """The :class:`Correlation` of ``x`` (the feature) and ``y`` (the rating) over the pairs
    where both are numbers; r NaN with fewer than 3 pairs or no spread in either.

    >>> c = correlation("end", [-1, -0.5, 0, 0.5, 1], [0.1, 0.5, 0.4, 0.6, 0.9])
    >>> round(c.r, 4), round(c.p_value, 4), c.n  # r = 0.85 / √(2.5 · 0.34) = √0.85
    (0.922, 0.0259, 5)
    """
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = len(xa)
    r = _r(xa, ya) if n >= 3 else math.nan
    p = math.nan
    from scipy import stats as sps  # scipy.stats: imported when first needed
    if not math.isnan(r):
        p = 0.0 if abs(r) >= 1 else float(2 * sps.t.sf(abs(r) * math.sqrt((n - 2) / (1 - r * r)), n - 2))
    return Correlation(feature, r, fisher_interval(r, n, confidence), p, n)


def _design(columns: Sequence[FloatArray]) -> FloatArray:
    return np.column_stack([np.ones(len(columns[0])), *columns])


def _cv_r2(x: FloatArray, y: FloatArray, folds: int, seed: int) -> float:
    """Out of sample R² of ``y ~ x`` (a design with its intercept) by ``folds``-fold
    cross-validation; NaN when a training part would hold too few episodes to fit."""
    n, k = x.shape
    sst = float(((y - y.mean()) ** 2).sum())
    part = np.random.default_rng(seed).permutation(n) % folds
    if sst <= 0 or n - math.ceil(n / folds) < k + 2:
        return math.nan
    held = np.empty(n)
    for f in range(folds):
        test = part == f
        b = np.linalg.lstsq(x[~test], y[~test], rcond=None)[0]
        held[test] = x[test] @ b
    return 1 - float(((y - held) ** 2).sum()) / sst


def _fit(x: FloatArray, y: FloatArray, names: Sequence[str],
         confidence: float) -> tuple[tuple[Coefficient, ...], float] | None:
    """Least squares with standard errors; None when the design's columns are dependent."""
    n, k = x.shape
    if n < k or np.linalg.matrix_rank(x) < k:
        return None
    b = np.linalg.lstsq(x, y, rcond=None)[0]
    resid = y - x @ b
    sse = float(resid @ resid)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - sse / sst if sst > 0 else math.nan
    dof = n - k
    from scipy import stats as sps  # scipy.stats: imported when first needed
    if dof > 0:
        se = np.sqrt(np.diag(np.linalg.inv(x.T @ x)) * sse / dof)
        t = float(sps.t.ppf(0.5 + confidence / 2, dof))
    else:
        se, t = np.full(k, math.nan), math.nan
    coefficients = tuple(Coefficient(name, float(est), float(s), (float(est - t * s), float(est + t * s)))
                         for name, est, s in zip(names, b, se, strict=True))
    return coefficients, r2


def validate(ratings: Sequence[float] | FloatArray | pd.Series,
             features: pd.DataFrame | Mapping[str, Sequence[float] | FloatArray], *,
             folds: int = 5, seed: int = 0, confidence: float = 0.95) -> Validation:
    """The :class:`Validation` of one journey's episodes: ``ratings`` one per episode in [0, 1]
    (NaN where the episode was not rated: left out), ``features`` the episodes' columns of
    :func:`peak_end.episodes` in the same order (at least ``peak_end`` and the :data:`TERMS`;
    every column given is correlated). The folds are drawn with ``seed``, so a result repeats.

    Raises ValueError only for a call that cannot be meant: lengths that differ, a rating
    outside [0, 1], a required feature missing, fewer than 2 folds.
    """
    f = pd.DataFrame(features).reset_index(drop=True)
    y_all = np.asarray(ratings, dtype=float)
    if len(y_all) != len(f):
        raise ValueError(f"{len(y_all)} ratings for {len(f)} episodes")
    lacking = [c for c in ("peak_end", *TERMS) if c not in f.columns]
    if lacking:
        raise ValueError(f"the features lack {lacking}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    rated = np.isfinite(y_all)
    if ((y_all[rated] < 0) | (y_all[rated] > 1)).any():
        raise ValueError("ratings must be rescaled to [0, 1]")

    notices: list[Notice] = []
    cols = {c: f[c].to_numpy(dtype=float)[rated] for c in f.columns}
    y_rated = y_all[rated]
    full = np.all([np.isfinite(cols[c]) for c in ("peak_end", *TERMS)], axis=0)
    if not full.all():
        notices.append(Notice(MISSING_VALUES, f"{int((~full).sum())} rated episodes without a peak, end or "
                                              "mean are left out"))
    y = y_rated[full]
    n = len(y)
    if n < MIN_RATINGS:
        notices.append(Notice(TOO_FEW_RATINGS, f"{n} rated episodes; {MIN_RATINGS} make the intervals "
                                               "trustworthy"))
    correlations = tuple(correlation(str(c), cols[c], y_rated, confidence) for c in f.columns)
    flat = [c.feature for c in correlations if math.isnan(c.r) and c.n >= 3]
    if flat:
        what = "the ratings" if n and np.ptp(y) == 0 else ", ".join(flat)
        notices.append(Notice(ZERO_VARIANCE, f"no spread in {what}: no correlation"))

    pe, mean = cols["peak_end"][full], cols["mean"][full]
    r_pe, r_mean = _r(pe, y) if n >= 3 else math.nan, _r(mean, y) if n >= 3 else math.nan
    r_between = _r(pe, mean) if n >= 3 else math.nan
    difference = Difference("peak_end", "mean", r_pe - r_mean,
                            zou_interval(r_pe, r_mean, r_between, n, confidence))

    x = _design([cols[t][full] for t in TERMS])
    fitted = _fit(x, y, ("intercept", *TERMS), confidence) if n else None
    if fitted is None:
        notices.append(Notice(SINGULAR, "peak, end and mean cannot be told apart in these episodes "
                                        "(each had one attempt, or too few were rated): no weighting"))
        nan = (math.nan, math.nan)
        weighting = tuple(Coefficient(t, math.nan, math.nan, nan) for t in ("intercept", *TERMS))
        r2 = r2_cv = math.nan
    else:
        weighting, r2 = fitted
        r2_cv = _cv_r2(x, y, folds, seed)
    r2_cv_mean = _cv_r2(_design([mean]), y, folds, seed) if n else math.nan
    r2_cv_pe = _cv_r2(_design([pe]), y, folds, seed) if n else math.nan
    return Validation(n, correlations, difference, weighting, r2, r2_cv, r2_cv_mean, r2_cv_pe,
                      tuple(dict.fromkeys(notices)))


def headline(v: Validation) -> str:
    """What the ratings say, in a sentence.

    >>> d = Difference("peak_end", "mean", 0.14, (0.05, 0.23))
    >>> c = (Correlation("peak_end", 0.62, (0.5, 0.7), 0.0, 200),
    ...      Correlation("mean", 0.48, (0.4, 0.6), 0.0, 200))
    >>> headline(Validation(200, c, d, (), 0.4, 0.38, 0.22, 0.37, ()))
    'Over 200 rated episodes, the peak-end score predicts the rating better than the mean \
(r 0.62 against 0.48; difference 0.14, interval 0.05 to 0.23).'
    """
    pe, mean = v.correlation("peak_end"), v.correlation("mean")
    low, high = v.difference.ci
    if math.isnan(v.difference.estimate) or math.isnan(low):
        return f"Over {v.n} rated episodes, the peak-end score and the mean cannot be compared."
    verdict = ("the peak-end score predicts the rating better than the mean" if low > 0 else
               "the mean predicts the rating better than the peak-end score" if high < 0 else
               "the peak-end score and the mean predict the rating about equally")
    return (f"Over {v.n} rated episodes, {verdict} (r {pe.r:.2f} against {mean.r:.2f}; "
            f"difference {v.difference.estimate:.2f}, interval {low:.2f} to {high:.2f}).")
