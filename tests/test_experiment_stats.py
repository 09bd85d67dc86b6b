"""The statistics of experiments (microjourney.analysis.experiments) against published values
(GrowthBook's gbstats tests), hand-worked cases and small seeded simulations."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest

from microjourney.analysis.experiments import (
    Prior,
    Proportion,
    Regression,
    SampleMean,
    bayesian,
    benjamini_hochberg,
    cuped,
    difference,
    durability,
    holm,
    mde,
    plan,
    power,
    sample_size,
    sequential,
    srm,
    srm_by,
    verdict,
)
from microjourney.analysis.experiments.cuped import adjusted_moments
from microjourney.analysis.experiments.sequential import from_moments, halfwidths

MODULES = ["notices", "statistics", "frequentist", "sequential", "bayesian", "cuped", "srm", "multiple",
           "power", "guardrails", "weekly", "compare", "table"]

# gbstats tests/frequentist/test_tests.py
A = SampleMean(n=3407, sum=1396.87, sum_squares=52377.9767)
B = SampleMean(n=3461, sum=2422.7, sum_squares=134698.29)


def close(x: float, y: float, tol: float = 1e-4) -> bool:
    return abs(x - y) <= tol


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"microjourney.analysis.experiments.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0
    assert result.attempted > 0 or name == "table"


def test_absolute_difference_matches_gbstats():
    e = difference(A, B)
    assert close(e.estimate, 0.29) and close(e.se, 0.12478)
    assert close(e.ci[0], 0.04538) and close(e.ci[1], 0.53462)
    assert close(e.p_value, 0.02016)
    assert e.test == "welch" and e.notices == ()


def test_relative_difference_matches_gbstats():
    e = difference(A, B, relative=True)
    assert close(e.estimate, 0.70732) and close(e.se, 0.37879)
    assert close(e.ci[0], -0.03526) and close(e.ci[1], 1.44989)
    assert close(e.p_value, 0.06191)


def test_two_proportions_match_gbstats():
    e = difference(Proportion(28, 14), Proportion(30, 16), relative=True)
    assert e.test == "two-proportion"
    assert close(e.ci[0], -0.47767) and close(e.ci[1], 0.61101) and close(e.p_value, 0.80707)
    assert [n.code for n in e.notices] == ["too-few-units"]  # 28 < 30: said, not raised


def test_sequential_intervals_match_gbstats():
    a = SampleMean(3000, 1396.87, 52377.9767)
    s = sequential(a, B, relative=True, n_star=1000)
    assert close(s.estimate, 0.50336) and close(s.ci[0], -0.55844) and close(s.ci[1], 1.56516)
    assert s.p_value == 1
    p = sequential(Proportion(3000, 1396), Proportion(3461, 2422), relative=True)
    assert close(p.ci[0], 0.40098) and close(p.ci[1], 0.60675) and p.p_value < 1e-6


def test_cuped_sequential_matches_gbstats():
    a = Regression(3000, SampleMean(3000, 1396.87, 52377.9767), SampleMean(3000, 16.87, 527.9767), 1)
    b = Regression(3461, B, SampleMean(3461, 22.7, 1348.29), 1)
    m, _ = adjusted_moments(a, b, relative=True)
    e = from_moments(m, a.n + b.n, relative=True)
    assert close(e.estimate, 0.50338) and close(e.ci[0], -0.50969) and close(e.ci[1], 1.51646)


def test_bayesian_matches_gbstats():
    b = bayesian(Proportion(100, 49), Proportion(100, 51))
    assert close(b.mean, 0.04082) and close(b.sd, 0.14725) and close(b.chance_to_win, 0.60918)
    assert close(b.risk_control, 0.0814) and close(b.risk_treatment, 0.04058)
    assert close(b.ci[0], -0.24779) and close(b.ci[1], 0.32943)
    a, t = SampleMean(10, 100, 1002.25), SampleMean(10, 105, 1111.5)
    flat = bayesian(a, t, min_units=2)
    assert close(flat.chance_to_win, 0.91923) and close(flat.risk_control, 0.05131)
    assert close(flat.risk_treatment, 0.00131) and close(flat.ci[0], -0.02) and close(flat.ci[1], 0.12)
    informed = bayesian(a, t, prior=Prior(0.1, 0.1, proper=True), min_units=2)
    assert close(informed.mean, 0.05063) and close(informed.sd, 0.03549)
    assert close(informed.chance_to_win, 0.92315) and close(informed.risk_treatment, 0.00123)


def test_chance_to_win_is_a_half_for_identical_arms_and_grows_with_the_effect():
    same = bayesian(SampleMean(1000, 5000, 35000), SampleMean(1000, 5000, 35000))
    assert same.chance_to_win == pytest.approx(0.5)
    assert same.risk_control == pytest.approx(same.risk_treatment)
    wins = [bayesian(SampleMean(1000, 5000, 35000), SampleMean(1000, 5000 + d, 35000 + 10 * d)).chance_to_win
            for d in (-500, -200, -50, 0, 50, 200, 500)]
    assert wins == sorted(wins) and wins[0] < 0.05 and wins[-1] > 0.95
    empty = bayesian(SampleMean(0, 0, 0), SampleMean(0, 0, 0))
    assert empty.chance_to_win == 0.5 and empty.notices[0].code == "too-few-units"


def test_problems_come_back_as_notices():
    flat = difference(SampleMean(50, 50, 50), SampleMean(50, 60, 80))
    assert math.isnan(flat.estimate) and [n.code for n in flat.notices] == ["zero-variance"]
    zero = difference(Proportion(100, 0), Proportion(100, 5), relative=True)
    assert [n.code for n in zero.notices] == ["zero-variance"]
    base = difference(SampleMean(50, 0, 50), SampleMean(50, 10, 80), relative=True)
    assert [n.code for n in base.notices] == ["baseline-zero"]
    few = difference(SampleMean(5, 10, 30), SampleMean(5, 12, 40))
    assert math.isfinite(few.estimate) and few.notices[0].code == "too-few-units"


def test_holm_and_benjamini_hochberg_hand_worked():
    p = [.01, .04, .03, .005, .55, .6]
    assert sorted(holm(p)) == pytest.approx([.03, .05, .12, .12, 1, 1])
    assert holm(p) == pytest.approx([.05, .12, .12, .03, 1, 1])
    # p·m/rank from the largest down, each at most the one above: .6, .6, .06, .06, .03, .03
    assert benjamini_hochberg(p) == pytest.approx([.03, .06, .06, .03, .6, .6])
    assert benjamini_hochberg([0.02, math.nan, 0.04]) == pytest.approx([0.04, math.nan, 0.04], nan_ok=True)


def test_sample_ratio_mismatch():
    s = srm([1000, 1200])
    assert s.p_value == pytest.approx(0.0000201, abs=1e-7) and s.flagged and s.notice.code == "srm"
    assert not srm([1000, 1050]).flagged
    assert not srm([1000, 1980], [1, 2]).flagged  # planned 1:2
    assert srm([0, 0]).p_value == 1
    by = srm_by({"web": [500, 520], "app": [300, 420], "ivr": [40, 41]}, dimension="platform")
    assert [k for k, c in by.items() if c.flagged] == ["app"]
    assert "platform = app" in by["app"].notice.message


def _correlated(rng, n, effect):
    x = rng.normal(10, 2, n)
    y = 2 + 0.9 * x + rng.normal(0, 1, n) + effect
    return Regression(n, SampleMean(n, y.sum(), (y * y).sum()), SampleMean(n, x.sum(), (x * x).sum()),
                      (x * y).sum())


def test_cuped_reduces_variance_and_stays_unbiased():
    rng = np.random.default_rng(7)
    results = [cuped(_correlated(rng, 500, 0.0), _correlated(rng, 500, 0.3)) for _ in range(300)]
    first = results[0]
    # ρ² = 3.24 / 4.24 = 0.76 of the variance is the covariate's
    assert 0.7 < first.variance_reduction < 0.82 and 0.8 < first.theta < 1.0
    assert first.adjusted.se < first.unadjusted.se / 2
    estimates = np.array([r.adjusted.estimate for r in results])
    se = estimates.std(ddof=1) / math.sqrt(len(estimates))
    assert abs(estimates.mean() - 0.3) < 4 * se
    covered = np.mean([r.adjusted.ci[0] <= 0.3 <= r.adjusted.ci[1] for r in results])
    assert abs(covered - 0.95) < 4 * math.sqrt(0.95 * 0.05 / len(results))
    a, b = (_correlated(rng, 100, 0.0).post for _ in range(2))
    own = [Regression(100, s, s, s.sum_squares) for s in (a, b)]  # the metric as its own covariate
    assert cuped(*own).adjusted.notices[-1].code == "negative-variance-after-cuped"


def test_power_and_mde_hand_worked():
    # σ² = 0.1 × 0.9, n = 1000: se = √(0.18/1000) = 0.0134164; (1.959964 + 0.841621) × se
    assert mde(0.09, 1000) == pytest.approx(0.0375870, abs=1e-6)
    assert power(0.0375870, 0.09, 1000) == pytest.approx(0.8, abs=1e-4)
    assert power(0.0, 0.09, 1000) == pytest.approx(0.05)
    # 2σ²(z₀.₉₇₅ + z₀.₈)² / δ² = 0.18 × 7.848879 / 0.0004 = 3531.99; Lehr's 16σ²/δ² = 3600
    assert sample_size(0.02, 0.09) == 3532
    p = plan(0.10, 500)
    assert (p.n_per_variant, p.days) == (3500, 14)
    assert p.mde == pytest.approx(2.801585 * math.sqrt(0.18 / 3500), abs=1e-6)
    assert plan(0.10, 500, days=28).mde == pytest.approx(p.mde / math.sqrt(2))


def test_guardrail_and_durability_verdicts():
    e = difference(SampleMean(1000, 1000, 2000), SampleMean(1000, 900, 1800), relative=True)
    assert verdict(e).verdict == "harmful" and verdict(e, higher_is_better=False).verdict == "ok"
    flat = difference(SampleMean(1000, 1000, 2000), SampleMean(1000, 995, 1990), relative=True)
    assert verdict(flat).verdict == "inconclusive" and verdict(flat, margin=0.2).verdict == "ok"
    weeks = [difference(SampleMean(2000, 2000, 4000), SampleMean(2000, 2000 + d, 4000 + 2 * d))
             for d in (300, 150, 20)]
    assert durability(weeks).verdict == "novelty"
    steady = [difference(SampleMean(2000, 2000, 4000), SampleMean(2000, 2200, 4400))] * 3
    assert durability(steady).verdict == "durable"
    assert durability(weeks[:1]).verdict == "inconclusive"


# -- seeded simulations (small and vectorised: a few tenths of a second) ------------------------------


def _mc(rate: float, runs: int) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / runs)  # 3 Monte Carlo standard errors


def test_fixed_horizon_false_positive_rate_and_coverage():
    rng = np.random.default_rng(2024)
    runs, n = 2000, 200
    y = rng.exponential(2.0, (runs, 2, n))  # skewed, no effect
    sums, squares = y.sum(axis=2), (y * y).sum(axis=2)
    effects = [difference(SampleMean(n, sums[i, 0], squares[i, 0]), SampleMean(n, sums[i, 1], squares[i, 1]))
               for i in range(runs)]
    fpr = np.mean([e.p_value < 0.05 for e in effects])
    assert abs(fpr - 0.05) < _mc(0.05, runs)
    covered = np.mean([e.ci[0] <= 0 <= e.ci[1] for e in effects])
    assert abs(covered - 0.95) < _mc(0.95, runs)
    # proportions with an effect: the relative interval covers the true lift
    k = rng.binomial(n * 5, [0.2, 0.24], (runs, 2))
    rel = [difference(Proportion(n * 5, k[i, 0]), Proportion(n * 5, k[i, 1]), relative=True)
           for i in range(runs)]
    covered = np.mean([e.ci[0] <= 0.2 <= e.ci[1] for e in rel])
    assert abs(covered - 0.95) < _mc(0.95, runs) + 0.01  # the delta method's small bias at n = 1000


def test_sequential_intervals_keep_alpha_under_continuous_peeking():
    rng = np.random.default_rng(11)
    runs, looks, step = 1000, 40, 50  # 40 looks, every 50 units per arm, up to 2,000 per arm
    y = rng.normal(0, 1, (runs, 2, looks * step))
    sums = y.reshape(runs, 2, looks, step).sum(axis=3).cumsum(axis=2)
    squares = (y * y).reshape(runs, 2, looks, step).sum(axis=3).cumsum(axis=2)
    n = step * np.arange(1, looks + 1)
    means = sums / n
    var = (squares - sums * sums / n) / (n - 1)
    diff = means[:, 1] - means[:, 0]
    var_diff = (var[:, 0] + var[:, 1]) / n
    # the fixed-horizon test, read at every look, stopped at the first "significant" one
    peeking_fixed = np.mean((np.abs(diff) > 1.96 * np.sqrt(var_diff)).any(axis=1))
    assert peeking_fixed > 0.15  # why sequential intervals exist
    half = halfwidths(var_diff, 2 * n, alpha=0.05, n_star=2 * looks * step)
    peeking_sequential = np.mean((np.abs(diff) > half).any(axis=1))
    assert peeking_sequential <= 0.05 + _mc(0.05, runs)
    # the public function gives the same interval at the last look of the first run
    last = sequential(SampleMean(int(n[-1]), sums[0, 0, -1], squares[0, 0, -1]),
                      SampleMean(int(n[-1]), sums[0, 1, -1], squares[0, 1, -1]), n_star=2 * looks * step)
    assert last.ci[1] - last.estimate == pytest.approx(half[0, -1], rel=1e-6)
