"""The effect of a change to a moment, by an interrupted time series: a line is fitted to the
days before the change, and the days after are allowed a jump and a new slope (a segmented
regression, Wagner et al., 2002):

    y_t = b0 + b1·t + b2·post_t + b3·(t − c)·post_t + weekday effects + e_t

where ``t`` is the day's number since the first day observed, ``c`` the change day's number
and ``post_t`` 1 from the change day on. ``b2`` is the **level** change (the jump on the
change day), ``b3`` the **slope** change (per day), and the **effect** at ``h`` days after the
change is ``b2 + b3·h``: how far the modelled line then is from the one the days before
would have continued on (``h`` is ``horizon``, or the last day observed if that is sooner).

- **Weighted**: ``weights`` (for a rate, the day's finished attempts) give each day an error
  variance ∝ 1/weight, so a day of 20 attempts counts less than a day of 2,000; equal weights
  when None.
- **Weekdays**: six weekday indicators (Monday the reference) are added when there are at
  least two full weeks of data in all (every weekday observed at least twice) and they can be
  told apart from the trend and the jump (exactly two weeks split at a week's start cannot);
  otherwise none are fitted.
- **Autocorrelated days**: a bad day tends to follow a bad day. The errors are taken as AR(1)
  in calendar days: ``√weight_t·e_t`` has correlation ``ρ^|s − t|`` between days ``s`` and
  ``t`` (so ``ρ^gap`` across days that are missing). The fit is feasible generalised least
  squares: ``ρ`` is estimated by restricted maximum likelihood (REML), within [−0.5, 0.95];
  then each day is scaled by √weight and the Prais–Winsten transform, keeping the first day,
  makes the errors independent, and least squares on the transformed days gives the
  estimates. ``rho`` is that estimate. REML is the small-sample correction: it allows for the
  coefficients fitted, where the residuals' own lag-1 autocorrelation is biased towards 0 by
  about 3 times Kendall's (1 + 3ρ)/n once a trend, a jump and a new slope are fitted (−0.13 at
  ρ = 0.5 over 56 days; REML about −0.02).
- **Intervals**: with a few weeks of days ``ρ`` is itself uncertain, and the plain GLS standard
  errors (which take it as known) are too small when it is under-estimated. The covariance and
  the t's degrees of freedom are therefore Kenward and Roger's (1997): the GLS covariance
  grown by the uncertainty of ``ρ``, and per estimate Satterthwaite-type degrees of freedom
  (fewer than n − k). Measured on simulated series of 56 days, the 95% intervals cover
  0.94–0.96 with independent days and with AR(1) errors up to φ = 0.5 (docs/playbook.md).
  They are too narrow again when the model is wrong: day-level shocks that do not shrink with
  the weight (0.89), or correlation that lasts longer than AR(1)'s (0.83–0.86 for an AR(2)).
  With fewer than 3 residual degrees of freedom ``ρ`` is not estimated: 0, and t with n − k.
- **Days**: need not be contiguous; days with a NaN value or a weight of 0 (or NaN) are
  left out and counted in a ``missing-values`` notice.

Problems come back as coded :class:`Notice` s (this module's constants), never raised; an
estimate that cannot be computed is NaN.

A change on day 28 of 56 that lifts completion by 5 points and then 0.2 a day:

>>> from datetime import timedelta
>>> start = date(2025, 3, 3)
>>> days = [start + timedelta(i) for i in range(56)]
>>> wobble = [0.004, -0.003, 0.001, -0.002, 0.003, 0.0, -0.001]
>>> y = [0.8 + 0.001 * i + (i >= 28) * (0.05 + 0.002 * (i - 28)) + wobble[i % 7] + 0.003 * (-1) ** (i // 3)
...      for i in range(56)]
>>> r = interrupted(days, y, date(2025, 3, 31))
>>> round(r.level.estimate, 4), round(r.slope.estimate, 5), round(r.effect.estimate, 4), round(r.rho, 2)
(0.0497, 0.00207, 0.0788, 0.41)
>>> r.days_before, r.days_after, r.effect.p_value < 0.001, r.notices
(28, 28, True, ())
>>> interrupted(days[:10], y[:10], date(2025, 3, 10)).notices[0].code
'too-few-days-before'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from .experiments.notices import MISSING_VALUES, ZERO_VARIANCE, Notice

__all__ = [
    "CHANGE_OUTSIDE_DATA", "HORIZON_BEYOND_DATA", "MIN_DAYS_AFTER", "MIN_DAYS_BEFORE", "MISSING_VALUES",
    "SINGULAR", "TOO_FEW_DAYS_AFTER", "TOO_FEW_DAYS_BEFORE", "ZERO_VARIANCE", "Estimate", "Interrupted",
    "Notice", "interrupted",
]

#: Fewer days than :data:`MIN_DAYS_BEFORE` before the change: the trend it is judged against is
#: short (estimates are still given when they can be computed).
TOO_FEW_DAYS_BEFORE = "too-few-days-before"
#: Fewer days than :data:`MIN_DAYS_AFTER` from the change on.
TOO_FEW_DAYS_AFTER = "too-few-days-after"
#: The change day is before the first day given or after the last: nothing to compare.
CHANGE_OUTSIDE_DATA = "change-outside-data"
#: The days cannot separate the level, the slope and the trend (for example, one day after
#: the change): no estimates.
SINGULAR = "singular"
#: The effect is measured at the last day observed, sooner than ``horizon`` days after.
HORIZON_BEYOND_DATA = "horizon-beyond-data"
# ZERO_VARIANCE ("zero-variance": the line fits every day exactly, so no standard error) and
# MISSING_VALUES ("missing-values": days left out) are the experiments' codes, re-exported.

#: Two weeks before the change: a trend and each weekday seen twice.
MIN_DAYS_BEFORE = 14
#: One week after: every weekday once in the new level.
MIN_DAYS_AFTER = 7

LEVEL, SLOPE = 2, 3  # the columns of b2 and b3 in the design
#: The range the AR(1) coefficient is estimated in: at most 0.95, near a random walk (where the
#: level and the trend can hardly be told apart and the transform is ill-conditioned); at least
#: −0.5, as daily metrics do not alternate strongly and a very negative estimate of a short series
#: is misfit more than alternation (0 itself is inside, so independent days are not pushed positive).
_RHO_RANGE = (-0.5, 0.95)
#: Fewer residual degrees of freedom than this: the coefficient is not estimated (taken as 0).
_MIN_DOF_FOR_RHO = 3


@dataclass(frozen=True)
class Estimate:
    """A coefficient (or a sum of them): the estimate, its standard error (GLS with AR(1) errors,
    Kenward–Roger adjusted), its interval at ``1 − alpha`` and the two-sided p-value of 0 (NaN
    where they cannot be computed)."""

    estimate: float
    se: float
    ci: tuple[float, float]
    p_value: float


@dataclass(frozen=True)
class Interrupted:
    """The change's ``level`` jump, its ``slope`` change per day and its ``effect`` at the
    horizon (see the module's docstring); the plain weighted means ``before`` and ``after``
    the change and the days observed on each side; ``rho``, the AR(1) coefficient of the days'
    errors used (the REML estimate; 0 when too few days to estimate it, NaN when no model was
    fitted or there is no spread); and notices."""

    level: Estimate
    slope: Estimate
    effect: Estimate
    before: float
    after: float
    days_before: int
    days_after: int
    rho: float
    notices: tuple[Notice, ...]


def interrupted(days: Sequence[date], values: Sequence[float], change: date,
                weights: Sequence[float] | None = None, *, horizon: int = 14,
                alpha: float = 0.05) -> Interrupted:
    """The :class:`Interrupted` estimate of ``change`` on a daily series (one value a day,
    in any order; ``weights`` ≥ 0 per day, or None for equal ones).

    Raises ValueError only for a call that cannot be meant: sequences of different lengths, a
    day given twice, a negative weight, ``alpha`` outside (0, 1), a negative ``horizon``.
    """
    if len(values) != len(days) or (weights is not None and len(weights) != len(days)):
        raise ValueError("days, values and weights must have the same length")
    if not 0 < alpha < 1 or horizon < 0:
        raise ValueError("alpha must be in (0, 1), horizon at least 0")
    # A datetime (or a pandas Timestamp) counts as its day.
    days = [d.date() if isinstance(d, datetime) else d for d in days]
    change = change.date() if isinstance(change, datetime) else change
    if len(set(days)) != len(days):
        raise ValueError("one value a day: a day is given twice")
    y_all = np.asarray(values, dtype=float)
    w_all = np.ones(len(days)) if weights is None else np.asarray(weights, dtype=float)
    if (w_all < 0).any():
        raise ValueError("weights must be at least 0")

    notices: list[Notice] = []
    if not days or not min(days) <= change <= max(days):
        span = f"{min(days)} to {max(days)}" if days else "no days"
        notices.append(Notice(CHANGE_OUTSIDE_DATA, f"the change ({change}) is outside the data ({span})"))
    keep = np.isfinite(y_all) & np.isfinite(w_all) & (w_all > 0)
    if not keep.all():
        notices.append(Notice(MISSING_VALUES, f"{int((~keep).sum())} days without a value or a weight "
                                              "are left out"))
    order = sorted((d, i) for i, d in enumerate(days) if keep[i])
    kept = [d for d, _ in order]
    y = y_all[[i for _, i in order]]
    w = w_all[[i for _, i in order]]
    n = len(kept)
    first = kept[0] if kept else change
    t = np.array([(d - first).days for d in kept], dtype=float)
    c = float((change - first).days)
    post = (t >= c).astype(float)
    n_after = int(post.sum())
    n_before = n - n_after
    before = _mean(y[post == 0], w[post == 0])
    after = _mean(y[post == 1], w[post == 1])

    def result(estimates: tuple[Estimate, Estimate, Estimate], rho: float = math.nan) -> Interrupted:
        return Interrupted(*estimates, before, after, n_before, n_after, rho, tuple(notices))

    if notices and notices[0].code == CHANGE_OUTSIDE_DATA:
        return result(_unknown())
    if n_before < MIN_DAYS_BEFORE:
        notices.append(Notice(TOO_FEW_DAYS_BEFORE, f"{n_before} days before the change; "
                                                   f"{MIN_DAYS_BEFORE} make a trend to judge it against"))
    if n_after < MIN_DAYS_AFTER:
        notices.append(Notice(TOO_FEW_DAYS_AFTER, f"{n_after} days from the change on; "
                                                  f"{MIN_DAYS_AFTER} make a week of the new level"))
    if n_before == 0 or n_after == 0:
        return result(_unknown())

    weekday = np.array([d.weekday() for d in kept])
    x = _design(t, c, weekday if all((weekday == d).sum() >= 2 for d in range(7)) else None)
    sw = np.sqrt(w)
    if x.shape[1] > 4 and np.linalg.matrix_rank(x * sw[:, None]) < x.shape[1]:
        # Exactly two weeks split at a week's start: the weekdays are a mix of the trend and the jump.
        x = _design(t, c, None)
    n, k = x.shape
    z, zy = x * sw[:, None], y * sw  # the days scaled by √weight: errors of equal variance
    if np.linalg.matrix_rank(z) < k:
        notices.append(Notice(SINGULAR, "the days cannot separate the jump, the new slope and the "
                                        "trend (too few days on a side)"))
        return result(_unknown())
    h = min(horizon, int(t[-1] - c))
    if h < horizon:
        notices.append(Notice(HORIZON_BEYOND_DATA, f"the effect is at day {h} after the change, the last "
                                                   f"observed, not at day {horizon}"))
    combos = np.zeros((3, k))
    combos[0, LEVEL] = combos[1, SLOPE] = combos[2, LEVEL] = 1.0
    combos[2, SLOPE] = h
    # Weighted least squares first: its residuals say whether there is any spread at all.
    b_wls = np.linalg.lstsq(z, zy, rcond=None)[0]
    u = zy - z @ b_wls
    # Residuals all but 0 relative to the values: a line through every day, no spread to
    # measure (rounding would otherwise give a tiny standard error and a p-value of 0).
    scale = max(1.0, float(np.abs(y).max()))
    if float(np.sum(u**2) / w.sum()) <= (1e-10 * scale) ** 2:
        notices.append(Notice(ZERO_VARIANCE, "the line fits every day exactly: no standard error"))
        bare = [Estimate(float(p), math.nan, (math.nan, math.nan), math.nan) for p in combos @ b_wls]
        return result((bare[0], bare[1], bare[2]))
    gaps = np.diff(t).astype(np.int64)
    rho = _estimate_rho(z, u, gaps) if n - k >= _MIN_DOF_FOR_RHO else 0.0
    fit = _gls(z, u, gaps, rho, combos, adjust=n - k >= _MIN_DOF_FOR_RHO)
    points = combos @ b_wls + fit.points
    from scipy import stats as sps  # scipy.stats: imported when first needed
    q = np.asarray(sps.t.ppf(1 - alpha / 2, fit.dof), dtype=float)
    p_values = np.asarray(2 * sps.t.sf(np.abs(points) / fit.se, fit.dof), dtype=float)
    found = [Estimate(float(p), float(se), (float(p - qq * se), float(p + qq * se)), float(pv))
             for p, se, qq, pv in zip(points, fit.se, q, p_values, strict=True)]
    return result((found[0], found[1], found[2]), rho)


@dataclass(frozen=True)
class _Fit:
    points: np.ndarray  # the combinations of the GLS coefficients (of the values fitted)
    se: np.ndarray  # their standard errors
    dof: np.ndarray  # their t's degrees of freedom


class _Whitener:
    """``L⁻¹`` for the AR(1) correlation ``R_ij = rho^|t_i − t_j|`` of days ``gaps`` apart
    (``R⁻¹ = L⁻ᵀL⁻¹``, L⁻¹ bidiagonal): the first day as it is, each next one less ``rho^gap``
    times the one before, over ``√(1 − rho^(2·gap))``. That is Prais–Winsten's transform (the
    first day kept) with ``rho^gap`` across missing days, scaled by 1/√(1 − rho²) throughout,
    which changes no estimate."""

    def __init__(self, gaps: np.ndarray, rho: float) -> None:
        step = rho**gaps
        sd = np.sqrt(1 - step**2)
        self.diag = np.concatenate([[1.0], 1 / sd])  # L⁻¹'s diagonal
        self.sub = -step / sd  # and the one below it

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """``L⁻¹·a`` (a: n rows)."""
        out: np.ndarray = self._col(self.diag, a)
        out[1:] += self._col(self.sub, a[:-1])
        return out

    def t(self, a: np.ndarray) -> np.ndarray:
        """``L⁻ᵀ·a``."""
        out: np.ndarray = self._col(self.diag, a)
        out[:-1] += self._col(self.sub, a[1:])
        return out

    @staticmethod
    def _col(v: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.asarray(v[:, None] * a if a.ndim == 2 else v * a)


def _restricted_loglik(z: np.ndarray, u: np.ndarray, gaps: np.ndarray, rhos: np.ndarray) -> np.ndarray:
    """The restricted (REML) log-likelihood of each of ``rhos``, up to a constant and with the
    variance profiled out, for the scaled design ``z`` and values ``u`` (any values with the
    same residuals: the weighted least squares residuals):
    ``−½·log|R| − ½·log|Z'R⁻¹Z| − ½·(n − k)·log(RSS)`` with RSS the GLS residuals' R⁻¹-norm."""
    n, k = z.shape
    step = rhos[:, None] ** gaps[None, :]
    sd = np.sqrt(1 - step**2)
    a = np.column_stack([z, u])
    white = np.empty((len(rhos), n, k + 1))
    white[:, 0] = a[0]
    white[:, 1:] = (a[None, 1:] - step[:, :, None] * a[None, :-1]) / sd[:, :, None]
    gram = np.swapaxes(white, 1, 2) @ white
    chol = np.linalg.cholesky(gram[:, :k, :k])
    half = np.linalg.solve(chol, gram[:, :k, k:])[..., 0]
    rss = np.maximum(gram[:, k, k] - np.sum(half**2, axis=1), np.finfo(float).tiny)
    log_det = 2 * np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2)), axis=1)
    out: np.ndarray = -np.sum(np.log(sd), axis=1) - 0.5 * log_det - 0.5 * (n - k) * np.log(rss)
    return out


def _estimate_rho(z: np.ndarray, u: np.ndarray, gaps: np.ndarray) -> float:
    """The REML estimate of the AR(1) coefficient in :data:`_RHO_RANGE`: the best of a grid
    of 0.05, then of 0.005 around it, then the top of the parabola through the best three.
    Days all an even number apart (every other day) cannot tell ``rho`` from ``−rho``, which
    give the same fit: the estimate is then the one ≥ 0."""
    low, high = _RHO_RANGE
    if int(np.gcd.reduce(gaps)) % 2 == 0:
        low = 0.0
    coarse = np.linspace(low, high, round((high - low) / 0.05) + 1)
    i = int(np.argmax(_restricted_loglik(z, u, gaps, coarse)))
    fine = np.linspace(coarse[max(i - 1, 0)], coarse[min(i + 1, len(coarse) - 1)], 21)
    ll = _restricted_loglik(z, u, gaps, fine)
    j = int(np.argmax(ll))
    if 0 < j < len(fine) - 1:
        left, top, right = ll[j - 1], ll[j], ll[j + 1]
        bend = left - 2 * top + right
        if bend < 0:
            return float(fine[j] + 0.5 * (fine[1] - fine[0]) * (left - right) / bend)
    return float(fine[j])


def _gls(z: np.ndarray, u: np.ndarray, gaps: np.ndarray, rho: float, combos: np.ndarray, *,
         adjust: bool) -> _Fit:
    """Generalised least squares of ``u`` on ``z`` with AR(1) errors of coefficient ``rho``:
    the ``combos`` of the coefficients, and their standard errors and degrees of freedom, by
    Kenward and Roger (1997) when ``adjust`` (else the plain GLS ones with n − k).

    Kenward–Roger for Σ = σ²·R(ρ), θ = (σ², ρ), C = Z'R⁻¹Z, Φ = σ²C⁻¹ (the plain covariance):
    the adjusted covariance is Φ + 2ΦΛΦ with Λ = Σ W_ij (Q_ij − P_iΦP_j − ¼R_ij) (their P, Q
    and R, W the inverse of REML's expected information). With σ² a scale, the terms in σ²
    cancel but for R_σρ, which leaves, with D = ∂R/∂ρ, D₂ = ∂²R/∂ρ², M = R⁻¹ − R⁻¹ZC⁻¹Z'R⁻¹,
    J₁ = ½tr(MD), J₂ = ½tr(MDMD), Δ = ½(n − k)·J₂ − J₁², Pd = Z'R⁻¹DR⁻¹Z:
    ``Λσ² = [½(n − k)·(Z'R⁻¹DR⁻¹DR⁻¹Z − Pd·C⁻¹·Pd − ¼Z'R⁻¹D₂R⁻¹Z) + J₁·Pd/2] / Δ``; and for
    a combination c, with a = c'C⁻¹PdC⁻¹c / c'C⁻¹c, the degrees of freedom 2/A with
    ``A = (J₂ − 2J₁a + ½(n − k)a²) / Δ`` (n − k when ρ is known), kept within [1, n − k].
    Computed without any n×n×n product (R⁻¹ is tridiagonal), so a year of days stays quick."""
    n, k = z.shape
    white = _Whitener(gaps, rho)
    zt, ut = white(z), white(u)
    c_inv = np.linalg.inv(zt.T @ zt)
    b = c_inv @ (zt.T @ ut)
    e = ut - zt @ b
    dof_r = n - k
    s2 = float(e @ e) / dof_r
    plain = np.einsum("ij,jk,ik->i", combos, c_inv, combos)
    points = combos @ b
    if adjust:
        place = np.concatenate([[0], np.cumsum(gaps)])
        d = np.abs(place[:, None] - place[None, :])
        dr = np.where(d > 0, d * rho ** np.maximum(d - 1, 0), 0.0)
        d2r = np.where(d > 1, d * (d - 1) * rho ** np.maximum(d - 2, 0), 0.0)
        rz = white.t(zt)  # R⁻¹Z
        rd = white.t(white(dr))  # R⁻¹D
        g = dr @ rz  # DR⁻¹Z
        pd = rz.T @ g
        cp = c_inv @ pd
        # M·D = R⁻¹D − R⁻¹Z·C⁻¹·(DR⁻¹Z)'
        j1 = 0.5 * (float(np.trace(rd)) - float(np.trace(cp)))
        j2 = 0.5 * (float(np.sum(rd * rd.T)) - 2 * float(np.trace(c_inv @ (g.T @ (rd @ rz))))
                    + float(np.sum(cp * cp.T)))
        delta = 0.5 * dof_r * j2 - j1**2
        if delta > 1e-12 * max(0.5 * dof_r * j2, np.finfo(float).tiny):
            wg = white(g)
            lam = (0.5 * dof_r * (wg.T @ wg - pd @ cp - 0.25 * (rz.T @ (d2r @ rz))) + 0.5 * j1 * pd) / delta
            adjusted = np.einsum("ij,jk,ik->i", combos, c_inv + 2 * c_inv @ lam @ c_inv, combos)
            a = np.einsum("ij,jk,ik->i", combos, cp @ c_inv, combos) / plain
            big_a = (j2 - 2 * j1 * a + 0.5 * dof_r * a**2) / delta
            if np.all(np.isfinite(adjusted)) and np.all(adjusted > 0) and np.all(big_a > 0):
                dof = np.clip(2 / big_a, 1.0, float(dof_r))
                return _Fit(points, np.sqrt(s2 * adjusted), dof)
    return _Fit(points, np.sqrt(s2 * plain), np.full(len(combos), float(dof_r)))


def _design(t: np.ndarray, c: float, weekday: np.ndarray | None) -> np.ndarray:
    """The columns 1, t, post, (t − c)·post and, given the days' weekdays, one indicator for
    each weekday but Monday."""
    post = (t >= c).astype(float)
    columns = [np.ones(len(t)), t, post, (t - c) * post]
    if weekday is not None:
        columns += [(weekday == d).astype(float) for d in range(1, 7)]
    return np.column_stack(columns)


def _mean(y: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * y) / w.sum()) if len(y) else math.nan


def _unknown() -> tuple[Estimate, Estimate, Estimate]:
    nan = Estimate(math.nan, math.nan, (math.nan, math.nan), math.nan)
    return nan, nan, nan
