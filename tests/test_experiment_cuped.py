"""CUPED on a workspace's own data (docs/experiments.md, "CUPED on the workspace's data"):
each exposed person's covariate is the same metric over their attempts in the ``cuped_days``
before their first exposure. On a planted workspace the engine's sums give the same CUPED lift
as a person-by-person computation of the linearised ratios; the adjustment removes variance
and keeps the estimate near the planted truth; over many simulated experiments it is unbiased
and its intervals cover."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from microjourney.analysis.experiments.frequentist import difference
from microjourney.registry.experiment_rows import _cuped, ratio
from microjourney.spec.load import parse_workspace

from .helpers import PAYMENT_YAML, workspace_of

YAML = PAYMENT_YAML + """\
experiments:
  - name: short_form
    moment: card_payment
    variants: [{name: control}, {name: short}]
    metric: completion_rate
    guardrails: []
"""
EXPOSED = datetime(2024, 1, 29, 9, tzinfo=UTC)  # a Monday
#: The planted effect: +0.1 on each person's chance to complete, whose mean is 0.45.
DELTA, MEAN_Q = 0.1, 0.45
TRUTH = DELTA / MEAN_Q


def people(rng: np.random.Generator, n: int) -> list[dict]:
    """Persons with a steady chance ``q`` to complete (0.05 + 0.8 × Beta(0.4, 0.4): many
    nearly always complete, many nearly always fail), some attempts in the 28 days before
    exposure (none for about a fifth) and one to four after it."""
    out = []
    for i in range(n):
        treated = i % 2 == 1
        q = 0.05 + 0.8 * rng.beta(0.4, 0.4)
        k_pre = 0 if rng.random() < 0.2 else 1 + min(int(rng.poisson(2.5)), 8)
        k_post = 1 + min(int(rng.poisson(1.5)), 3)
        pre_days = sorted(rng.choice(np.arange(1, 28), size=k_pre, replace=False))
        post_days = sorted(rng.choice(np.arange(0, 14), size=k_post, replace=False))
        out.append({
            "who": f"p{i:04d}", "variant": "short" if treated else "control",
            "pre": [(EXPOSED - timedelta(days=int(d)), bool(rng.random() < q)) for d in pre_days],
            "post": [(EXPOSED + timedelta(days=int(d), hours=1), bool(rng.random() < q + DELTA * treated))
                     for d in post_days],
            # Out of the window: 30 days before exposure, a failure the covariate must not see.
            "old": [(EXPOSED - timedelta(days=30), False)] if i % 7 == 0 else [],
        })
    return out


def events(persons: list[dict]) -> list[dict]:
    rows = []
    for p in persons:
        rows.append({"timestamp": EXPOSED.isoformat(), "event": "experiment_exposure", "user_id": p["who"],
                     "channel": "web", "properties": {"experiment": "short_form", "variant": p["variant"]}})
        for at, ok in p["pre"] + p["post"] + p["old"]:
            rows.append({"timestamp": at.isoformat(), "event": "checkout_payment_opened",
                         "user_id": p["who"], "channel": "web"})
            rows.append({"timestamp": (at + timedelta(seconds=20)).isoformat(),
                         "event": "payment_succeeded" if ok else "payment_failed",
                         "user_id": p["who"], "channel": "web"})
    return rows


def sums(persons: list[dict], variant: str) -> dict[str, float]:
    """The engine's sums for one variant, computed person by person from the planted data."""
    mine = [p for p in persons if p["variant"] == variant]
    m = np.array([sum(ok for _, ok in p["post"]) for p in mine], dtype=float)
    d = np.array([len(p["post"]) for p in mine], dtype=float)
    m0 = np.array([sum(ok for _, ok in p["pre"]) for p in mine], dtype=float)
    d0 = np.array([len(p["pre"]) for p in mine], dtype=float)
    return {"units": len(mine), "num": m.sum(), "den": d.sum(), "num2": (m * m).sum(),
            "den2": (d * d).sum(), "numden": (m * d).sum(), "pre_units": int((d0 > 0).sum()),
            "pre_num": m0.sum(), "pre_den": d0.sum(), "pre_num2": (m0 * m0).sum(),
            "pre_den2": (d0 * d0).sum(), "pre_numden": (m0 * d0).sum(), "num_pre_num": (m * m0).sum(),
            "num_pre_den": (m * d0).sum(), "den_pre_num": (d * m0).sum(), "den_pre_den": (d * d0).sum()}


def by_person(persons: list[dict]) -> tuple[float, float]:
    """The CUPED lift and its variance from each person's linearised ratios: with R = Σm/Σd
    and P = Σm₀/Σd₀ per arm, a person's (m − R·d)/d̄ and (m₀ − P·d₀)/d̄₀; θ = Σ_arms Cov/n ÷
    Σ_arms Var₀/n; the lift (R_b − θP_b − R_a + θP_a)/R_a, its variance by the delta method."""
    arm = {}
    for variant in ("control", "short"):
        mine = [p for p in persons if p["variant"] == variant]
        m = np.array([sum(ok for _, ok in p["post"]) for p in mine], dtype=float)
        d = np.array([len(p["post"]) for p in mine], dtype=float)
        m0 = np.array([sum(ok for _, ok in p["pre"]) for p in mine], dtype=float)
        d0 = np.array([len(p["pre"]) for p in mine], dtype=float)
        r, p0 = m.sum() / d.sum(), m0.sum() / d0.sum()
        y, x = (m - r * d) / d.mean(), (m0 - p0 * d0) / d0.mean()
        arm[variant] = (len(mine), r, p0, y.var(ddof=1), x.var(ddof=1), np.cov(y, x)[0, 1])
    (na, ra, pa, vya, vxa, ca), (nb, rb, pb, vyb, vxb, cb) = arm["control"], arm["short"]
    theta = (ca / na + cb / nb) / (vxa / na + vxb / nb)
    lift = (rb - theta * pb - ra + theta * pa) / ra
    g = rb / ra
    var = ((vyb + theta**2 * vxb - 2 * theta * cb) / nb
           + (vya * g * g - 2 * theta * g * ca + theta**2 * vxa) / na) / ra**2
    return lift, var


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    persons = people(np.random.default_rng(20240129), 600)
    w = workspace_of(tmp_path_factory.mktemp("cuped"), YAML, events(persons))
    result = w.analysis("experiment", experiment="short_form")
    w.close()
    return persons, result


def test_the_engine_sums_give_the_person_by_person_cuped_lift(planted):
    persons, r = planted
    t = r.table("metrics").set_index(["metric", "variant"])
    short = t.loc[("completion_rate", "short")]
    lift, var = by_person(persons)
    assert short.cuped_lift == pytest.approx(lift, rel=1e-9)
    plain = difference(ratio(sums(persons, "control")), ratio(sums(persons, "short")), relative=True)
    assert short.lift == pytest.approx(plain.estimate, rel=1e-12)
    assert short.variance_reduction == pytest.approx(1 - var / plain.se**2, rel=1e-9)
    low, high = short.cuped_lift_ci
    assert (high - low) / 2 == pytest.approx(math.sqrt(var) * 1.96, rel=3e-3)  # t at some 600 df
    assert r.meta["cuped"] == ["completion_rate"] and r.meta["cuped_days"] == 28
    assert "cuped-not-applied" not in {w.code for w in r.warnings}


def test_cuped_removes_variance_and_stays_near_the_truth(planted):
    _, r = planted
    short = r.table("metrics").set_index(["metric", "variant"]).loc[("completion_rate", "short")]
    assert 0.15 < short.variance_reduction < 0.8
    low, high = short.cuped_lift_ci
    plain_low, plain_high = short.lift_ci
    assert high - low < plain_high - plain_low
    se = (high - low) / (2 * 1.96)
    assert abs(short.cuped_lift - TRUTH) < 2.5 * se, (short.cuped_lift, TRUTH, se)
    assert low < TRUTH < high


def draw(rng: np.random.Generator, n: int) -> dict[str, dict[str, float]]:
    """The engine's sums of each variant for ``n`` persons drawn as :func:`people` plants them."""
    q = 0.05 + 0.8 * rng.beta(0.4, 0.4, n)
    treated = np.arange(n) % 2 == 1
    d0 = np.where(rng.random(n) < 0.2, 0, 1 + np.minimum(rng.poisson(2.5, n), 8)).astype(float)
    d = (1 + np.minimum(rng.poisson(1.5, n), 3)).astype(float)
    m0 = rng.binomial(d0.astype(int), q).astype(float)
    m = rng.binomial(d.astype(int), q + DELTA * treated).astype(float)
    out = {}
    for name, arm in (("control", ~treated), ("short", treated)):
        a, b, a0, b0 = m[arm], d[arm], m0[arm], d0[arm]
        out[name] = {"units": int(arm.sum()), "num": a.sum(), "den": b.sum(), "num2": a @ a,
                     "den2": b @ b, "numden": a @ b, "pre_units": int((b0 > 0).sum()),
                     "pre_num": a0.sum(), "pre_den": b0.sum(), "pre_num2": a0 @ a0, "pre_den2": b0 @ b0,
                     "pre_numden": a0 @ b0, "num_pre_num": a @ a0, "num_pre_den": a @ b0,
                     "den_pre_num": b @ a0, "den_pre_den": b @ b0}
    return out


def test_cuped_is_unbiased_and_covers_over_simulated_experiments():
    """Sums drawn as the engine would return them, 1,000 experiments of 600 persons: the
    mean CUPED lift is the truth within Monte Carlo error, its 95% intervals cover 93.5–96.5%
    and they are narrower than the plain ones."""
    rng = np.random.default_rng(7)
    hits, estimates, reductions = 0, [], []
    runs = 1000
    for _ in range(runs):
        arms = draw(rng, 600)
        base, row = arms["control"], arms["short"]
        plain = difference(ratio(base), ratio(row), relative=True)
        got = _cuped(base, row, plain)
        assert got is not None
        adjusted, reduction, _ = got
        estimates.append(adjusted.estimate)
        reductions.append(reduction)
        hits += adjusted.ci[0] < TRUTH < adjusted.ci[1]
    mc_se = np.std(estimates) / math.sqrt(runs)
    assert abs(np.mean(estimates) - TRUTH) < 3 * mc_se
    assert 0.935 <= hits / runs <= 0.965
    assert np.mean(reductions) > 0.2 and np.mean(np.array(reductions) > 0) > 0.95


def test_cuped_days_is_a_setting_and_zero_turns_it_off(tmp_path):
    e = parse_workspace(YAML.replace("guardrails: []", "guardrails: []\n    cuped_days: 0")).experiments[0]
    assert e.cuped_days == 0
    assert parse_workspace(YAML).experiments[0].cuped_days == 28
    with pytest.raises(Exception, match="cuped_days"):
        parse_workspace(YAML.replace("guardrails: []", "guardrails: []\n    cuped_days: -1"))
