"""The interrupted time series (microjourney.analysis.its): exact recovery of a planted change,
the method pinned against a hand computation of generalised least squares with AR(1) errors (the
Prais–Winsten transform, the restricted likelihood of the coefficient and Kenward and Roger's
covariance and degrees of freedom, from their general formulas), the coverage of its intervals
with independent and autocorrelated days, and every notice."""

from __future__ import annotations

import doctest
import math
from datetime import date, timedelta

import numpy as np
import pytest
from scipy import stats as sps

import microjourney.analysis.its as its
from microjourney.analysis.its import (
    CHANGE_OUTSIDE_DATA,
    HORIZON_BEYOND_DATA,
    MISSING_VALUES,
    SINGULAR,
    TOO_FEW_DAYS_AFTER,
    TOO_FEW_DAYS_BEFORE,
    ZERO_VARIANCE,
    interrupted,
)

START = date(2025, 1, 6)  # a Monday
BUMPS = [0.0, 0.01, -0.02, 0.015, 0.0, -0.03, 0.025]  # by weekday, Monday first


def span(n: int, start: date = START) -> list[date]:
    return [start + timedelta(i) for i in range(n)]


def codes(r: its.Interrupted) -> list[str]:
    return [n.code for n in r.notices]


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """A stationary AR(1) series with unit innovations."""
    e = np.empty(n)
    e[0] = rng.normal() / math.sqrt(1 - phi**2)
    z = rng.normal(size=n)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + z[i]
    return e


def test_docstring_examples() -> None:
    result = doctest.testmod(its)
    assert result.attempted > 0 and result.failed == 0


def test_a_noiseless_change_is_recovered_exactly() -> None:
    days = span(56)
    change = days[28]
    y = [0.80 + 0.001 * i + (i >= 28) * (0.05 + 0.002 * (i - 28)) + BUMPS[d.weekday()]
         for i, d in enumerate(days)]
    for weights in (None, [100 + 7 * (i % 5) for i in range(56)]):
        r = interrupted(days, y, change, weights, horizon=14)
        assert r.level.estimate == pytest.approx(0.05, abs=1e-9)
        assert r.slope.estimate == pytest.approx(0.002, abs=1e-9)
        assert r.effect.estimate == pytest.approx(0.05 + 0.002 * 14, abs=1e-9)
        assert (r.days_before, r.days_after) == (28, 28) and math.isnan(r.rho)  # nothing to estimate it from
        # A line through every day: no spread to give a standard error.
        assert codes(r) == [ZERO_VARIANCE]
        assert math.isnan(r.level.se) and math.isnan(r.effect.p_value)
    r = interrupted(days, y, change)
    assert r.before == pytest.approx(np.mean(y[:28])) and r.after == pytest.approx(np.mean(y[28:]))


def test_the_method_is_prais_winsten_gls_with_kenward_roger() -> None:
    rng = np.random.default_rng(11)
    days = span(40)
    del days[7], days[30]  # days need not be contiguous: t is the day's number
    t = np.array([(d - START).days for d in days], dtype=float)
    c = 19.0
    y = 0.7 + 0.002 * t + 0.04 * (t >= c) + np.array([BUMPS[d.weekday()] for d in days]) + 0.02 * ar1(
        rng, len(days), 0.4)
    w = rng.integers(20, 400, size=len(days)).astype(float)
    horizon, alpha = 14, 0.1
    r = interrupted(days, list(y), START + timedelta(19), list(w), horizon=horizon, alpha=alpha)

    post = (t >= c).astype(float)
    weekday = np.array([d.weekday() for d in days])
    x = np.column_stack([np.ones(len(t)), t, post, (t - c) * post]
                        + [(weekday == k).astype(float) for k in range(1, 7)])
    n, k = x.shape
    z, zy = x * np.sqrt(w)[:, None], y * np.sqrt(w)  # each day scaled by √weight

    def corr(phi: float) -> np.ndarray:  # AR(1) in calendar days: phi^gap across a missing day
        return np.asarray(phi ** np.abs(t[:, None] - t[None, :]))

    def restricted_loglik(phi: float) -> float:  # REML, the variance profiled out
        r_inv = np.linalg.inv(corr(phi))
        czz = z.T @ r_inv @ z
        e = zy - z @ np.linalg.solve(czz, z.T @ r_inv @ zy)
        return float(-0.5 * np.linalg.slogdet(corr(phi))[1] - 0.5 * np.linalg.slogdet(czz)[1]
                     - 0.5 * (n - k) * math.log(e @ r_inv @ e))

    # rho is the REML estimate in [-0.5, 0.95].
    rho = r.rho
    assert 0.1 < rho < 0.8
    at = restricted_loglik(rho)
    assert at >= max(restricted_loglik(p) for p in np.linspace(-0.5, 0.95, 146)) - 1e-9
    assert at >= max(restricted_loglik(rho - 1e-3), restricted_loglik(rho + 1e-3))

    # The Prais–Winsten transform at rho, by hand: the first day times √(1 − ρ²), each next one
    # less ρ^gap times the one before, times √((1 − ρ²)/(1 − ρ^(2·gap))) (1 without a gap).
    rows_z, rows_y = [math.sqrt(1 - rho**2) * z[0]], [math.sqrt(1 - rho**2) * zy[0]]
    for i in range(1, n):
        gap = t[i] - t[i - 1]
        f = math.sqrt((1 - rho**2) / (1 - rho ** (2 * gap)))
        rows_z.append(f * (z[i] - rho**gap * z[i - 1]))
        rows_y.append(f * (zy[i] - rho**gap * zy[i - 1]))
    zt, yt = np.array(rows_z), np.array(rows_y)
    b = np.linalg.lstsq(zt, yt, rcond=None)[0]
    e = yt - zt @ b
    s2 = float(e @ e) / (n - k)  # the innovations' variance
    plain = s2 * np.linalg.inv(zt.T @ zt)  # the GLS covariance, rho taken as known

    # Kenward and Roger (1997) from their general formulas, for Σ(θ) = σ²·R(ρ), θ = (σ², ρ), with
    # numerical derivatives of Σ: Φ_A = Φ + 2Φ·ΣW_ij(Q_ij − P_iΦP_j − ¼R_ij)·Φ, W the inverse of
    # the REML expected information, and per combination Satterthwaite's degrees of freedom.
    theta = np.array([s2 / (1 - rho**2), rho])  # the days' variance (not the innovations')
    step = np.array([theta[0] * 1e-4, 1e-4])

    def sigma(th: np.ndarray) -> np.ndarray:
        return np.asarray(th[0] * corr(float(th[1])))

    def shift(i: int) -> np.ndarray:
        return np.asarray(np.eye(2)[i] * step[i])

    def phi_of(th: np.ndarray) -> np.ndarray:
        return np.linalg.inv(z.T @ np.linalg.inv(sigma(th)) @ z)

    d1 = [(sigma(theta + shift(i)) - sigma(theta - shift(i))) / (2 * step[i]) for i in range(2)]
    d2 = [[(sigma(theta + shift(i) + shift(j)) - sigma(theta + shift(i) - shift(j))
            - sigma(theta - shift(i) + shift(j)) + sigma(theta - shift(i) - shift(j)))
           / (4 * step[i] * step[j]) for j in range(2)] for i in range(2)]
    s_inv = np.linalg.inv(sigma(theta))
    phi = phi_of(theta)
    assert phi == pytest.approx(plain, rel=1e-8, abs=1e-14)
    proj = s_inv - s_inv @ z @ phi @ z.T @ s_inv
    info = np.array([[0.5 * np.trace(proj @ d1[i] @ proj @ d1[j]) for j in range(2)] for i in range(2)])
    wt = np.linalg.inv(info)
    p = [z.T @ s_inv @ d1[i] @ s_inv @ z for i in range(2)]
    lam = sum(wt[i, j] * (z.T @ s_inv @ d1[i] @ s_inv @ d1[j] @ s_inv @ z - p[i] @ phi @ p[j]
                          - 0.25 * z.T @ s_inv @ d2[i][j] @ s_inv @ z)
              for i in range(2) for j in range(2))
    adjusted = phi + 2 * phi @ lam @ phi
    for got, combo in ((r.level, [2]), (r.slope, [3]), (r.effect, [2] + [3] * horizon)):
        v = np.bincount(combo, minlength=k).astype(float)
        est, se = float(v @ b), math.sqrt(v @ adjusted @ v)
        grad = np.array([(v @ phi_of(theta + shift(i)) @ v - v @ phi_of(theta - shift(i)) @ v) / (2 * step[i])
                         for i in range(2)])
        dof = 2 * float(v @ phi @ v) ** 2 / float(grad @ wt @ grad)
        q = sps.t.ppf(1 - alpha / 2, dof)
        assert got.estimate == pytest.approx(est, abs=1e-12)
        assert got.se == pytest.approx(se, rel=1e-6)
        assert got.ci == pytest.approx((est - q * se, est + q * se), rel=1e-6)
        assert got.p_value == pytest.approx(2 * sps.t.sf(abs(est) / se, dof), rel=1e-5)
        # Wider than the plain GLS interval: rho's own uncertainty, and fewer degrees of freedom.
        assert se > math.sqrt(v @ plain @ v) and 1 < dof < n - k
    assert r.before == pytest.approx(np.average(y[t < c], weights=w[t < c]))
    assert r.after == pytest.approx(np.average(y[t >= c], weights=w[t >= c]))
    assert (r.days_before, r.days_after, r.notices) == (18, 20, ())
    # The order the days come in does not matter.
    order = rng.permutation(len(days))
    shuffled = interrupted([days[i] for i in order], list(y[order]), START + timedelta(19), list(w[order]),
                           horizon=horizon, alpha=alpha)
    assert shuffled.level.se == pytest.approx(r.level.se, rel=1e-9) and shuffled.rho == pytest.approx(rho)


@pytest.mark.parametrize("phi, weighted", [(0.0, False), (0.5, False), (0.5, True)])
def test_intervals_cover_at_the_nominal_level(phi: float, weighted: bool) -> None:
    # 1,000 series of 56 days with a weekly rhythm, a trend, AR(1) errors and a change on day 28
    # that does nothing. Each 95% interval should contain the true 0 in 95% of them: the Monte
    # Carlo standard error is 0.007, the bounds about 3 of them. Weighted: days of 50 to 2,000
    # attempts, errors with a variance ∝ 1/weight, and a tenth of the days missing. A level with
    # p < 0.05 is a false alarm: the weekday indicators must not inflate them with independent days.
    # (docs/playbook.md has the table, on 4,000 series a row.)
    rng = np.random.default_rng(20250301 + int(10 * phi) + weighted)
    days = span(56)
    t = np.arange(56.0)
    rhythm = np.array([BUMPS[d.weekday()] for d in days])
    runs = 1000
    covered = np.zeros(3)
    alarms = 0
    rhos = []
    for _ in range(runs):
        e = ar1(rng, 56, phi)
        keep = np.ones(56, dtype=bool)
        w = None
        if weighted:
            w = rng.integers(50, 2000, size=56).astype(float)
            e *= np.sqrt(500 / w)
            keep = rng.random(56) > 0.1
        y = 0.8 + 0.001 * t + rhythm + 0.01 * e
        r = interrupted([d for d, k in zip(days, keep, strict=True) if k], list(y[keep]), days[28],
                        None if w is None else list(w[keep]))
        covered += [est.ci[0] <= 0 <= est.ci[1] for est in (r.level, r.slope, r.effect)]
        alarms += r.level.p_value < 0.05
        rhos.append(r.rho)
    level, slope, effect = covered / runs
    assert 0.93 <= level <= 0.97 and 0.93 <= slope <= 0.97 and 0.93 <= effect <= 0.97, covered / runs
    assert 0.03 <= alarms / runs <= 0.07
    assert np.mean(rhos) == pytest.approx(phi, abs=0.04)  # REML: nearly unbiased


def test_a_planted_effect_is_found_and_a_null_one_is_not() -> None:
    # 100 series of 56 days with AR(1) noise (phi 0.3, sd about 0.01), with and without a jump of
    # 0.04 on day 28 (about 4 standard errors of the level). Measured on 1,000: the jump is found
    # (level and effect both at p < 0.05) in 95.5% of them, and 5.0% of the null ones are false
    # alarms (each null series is a test at 5%). Here 96 and 4.
    rng = np.random.default_rng(5)
    days = span(56)
    t = np.arange(56.0)
    found = alarms = 0
    for _ in range(100):
        base = 0.75 + np.array([BUMPS[d.weekday()] for d in days]) + 0.01 * ar1(rng, 56, 0.3)
        planted = interrupted(days, list(base + 0.04 * (t >= 28)), days[28])
        found += planted.level.p_value < 0.05 and planted.level.ci[0] > 0 and planted.effect.p_value < 0.05
        null = interrupted(days, list(base), days[28])
        alarms += null.level.p_value < 0.05
        assert planted.notices == () and null.notices == ()
    assert found >= 90
    assert alarms <= 12
    # One of each, to read.
    assert planted.level.estimate == pytest.approx(0.04, abs=0.015) and planted.level.p_value < 1e-4
    assert null.level.p_value > 0.05 and null.level.ci[0] < 0 < null.level.ci[1]


def test_too_few_days_on_either_side() -> None:
    rng = np.random.default_rng(1)
    y = list(0.5 + 0.01 * rng.normal(size=40))
    short_before = interrupted(span(40), y, span(40)[10])
    assert codes(short_before) == [TOO_FEW_DAYS_BEFORE] and short_before.days_before == 10
    assert math.isfinite(short_before.level.se)  # still estimated, with the warning
    short_after = interrupted(span(40), y, span(40)[36])
    assert codes(short_after) == [TOO_FEW_DAYS_AFTER, HORIZON_BEYOND_DATA] and short_after.days_after == 4
    assert math.isfinite(short_before.rho) and math.isfinite(short_after.rho)
    # Three days a side: 2 residual degrees of freedom, too few to estimate rho (taken as 0, and
    # t with n − k); estimates still given, with the warnings.
    tiny = interrupted(span(6), y[:6], span(6)[3])
    assert codes(tiny) == [TOO_FEW_DAYS_BEFORE, TOO_FEW_DAYS_AFTER, HORIZON_BEYOND_DATA]
    assert tiny.rho == 0.0 and math.isfinite(tiny.level.se) and tiny.level.ci[0] < tiny.level.estimate


def test_no_days_on_one_side_gives_no_estimates() -> None:
    rng = np.random.default_rng(2)
    days = span(30)
    y = list(0.5 + 0.01 * rng.normal(size=30))
    on_first = interrupted(days, y, days[0])
    assert codes(on_first) == [TOO_FEW_DAYS_BEFORE] and on_first.days_before == 0
    assert math.isnan(on_first.level.estimate) and math.isnan(on_first.before)
    assert on_first.after == pytest.approx(np.mean(y))
    # Every day after the change without a value: counted, then nothing to compare.
    gone = interrupted(days, y[:20] + [math.nan] * 10, days[20])
    assert codes(gone) == [MISSING_VALUES, TOO_FEW_DAYS_AFTER] and gone.days_after == 0
    assert math.isnan(gone.effect.estimate)


def test_a_change_outside_the_data() -> None:
    days = span(30)
    y = [0.5] * 30
    for change in (START - timedelta(1), START + timedelta(30)):
        r = interrupted(days, y, change)
        assert codes(r) == [CHANGE_OUTSIDE_DATA]
        assert math.isnan(r.level.estimate) and math.isnan(r.effect.se)
    assert codes(interrupted([], [], START)) == [CHANGE_OUTSIDE_DATA]


def test_days_left_out_are_counted() -> None:
    rng = np.random.default_rng(3)
    days = span(42)
    y = 0.6 + 0.01 * rng.normal(size=42)
    w = np.full(42, 50.0)
    y[5], w[30], w[31] = math.nan, 0.0, math.nan
    r = interrupted(days, list(y), days[21], list(w))
    assert codes(r) == [MISSING_VALUES] and "3 days" in r.notices[0].message
    assert (r.days_before, r.days_after) == (20, 19)
    kept = [i for i in range(42) if i not in (5, 30, 31)]
    same = interrupted([days[i] for i in kept], list(y[kept]), days[21], list(w[kept]))
    assert same.level == r.level


def test_a_design_that_cannot_separate_the_change() -> None:
    rng = np.random.default_rng(4)
    days = span(29)
    r = interrupted(days, list(0.5 + 0.01 * rng.normal(size=29)), days[28])
    # One day after: its jump and its slope are the same column.
    assert codes(r) == [TOO_FEW_DAYS_AFTER, SINGULAR]
    assert math.isnan(r.level.estimate) and r.days_after == 1


def test_the_effect_is_at_the_last_day_when_the_horizon_is_past_it() -> None:
    rng = np.random.default_rng(6)
    days = span(38)
    y = 0.5 + 0.01 * rng.normal(size=38) + 0.001 * np.arange(38) * (np.arange(38) >= 28)
    r = interrupted(days, list(y), days[28], horizon=30)
    assert codes(r) == [HORIZON_BEYOND_DATA] and "day 9" in r.notices[0].message
    assert r.effect.estimate == pytest.approx(r.level.estimate + 9 * r.slope.estimate, abs=1e-12)
    at_zero = interrupted(days, list(y), days[28], horizon=0)
    assert at_zero.effect == at_zero.level


def test_a_flat_series_has_no_spread() -> None:
    r = interrupted(span(35), [0.9] * 35, span(35)[20])
    assert codes(r) == [ZERO_VARIANCE]
    assert r.level.estimate == pytest.approx(0, abs=1e-12) and math.isnan(r.level.ci[0])


def test_calls_that_cannot_be_meant_raise() -> None:
    days = span(30)
    with pytest.raises(ValueError):
        interrupted(days, [0.5] * 29, days[15])
    with pytest.raises(ValueError):
        interrupted(days[:29] + [days[0]], [0.5] * 30, days[15])
    with pytest.raises(ValueError):
        interrupted(days, [0.5] * 30, days[15], [-1.0] + [1.0] * 29)
    with pytest.raises(ValueError):
        interrupted(days, [0.5] * 30, days[15], alpha=1.5)
    with pytest.raises(ValueError):
        interrupted(days, [0.5] * 30, days[15], horizon=-1)
    with pytest.raises(TypeError):  # no lags any more: the AR(1) model has none to choose
        interrupted(days, [0.5] * 30, days[15], lags=3)  # type: ignore[call-arg]


def test_two_weeks_split_at_a_week_start_are_fitted_without_weekdays() -> None:
    # The weekday indicators, the trend and the jump are then one combination of another.
    rng = np.random.default_rng(7)
    r = interrupted(span(14), list(0.5 + 0.01 * rng.normal(size=14)), span(14)[7], horizon=6)
    assert codes(r) == [TOO_FEW_DAYS_BEFORE] and math.isfinite(r.level.se)
