"""The experiment's effect by week of the attempts and its durability, and the sample-ratio
check per dimension of the exposures (docs/experiments.md, "Effect by week" and "Sample-ratio
mismatch"): by hand on small workspaces, a fading effect flagged ``novelty``, a broken
channel flagged where the overall check is not."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy.stats import chi2 as chi_square
from scipy.stats import t as student

import microjourney as mj
from microjourney.registry.experiment_rows import weekly_rows
from microjourney.spec.load import parse_workspace

from .helpers import PAYMENT_YAML, workspace_of

YAML = PAYMENT_YAML + """\
experiments:
  - name: short_form
    moment: card_payment
    variants: [{name: control}, {name: short}]
    metric: completion_rate
    guardrails: [failure_rate]
"""


def at(day: str, time: str, event: str, who: str, **extra: object) -> dict:
    return {"timestamp": f"{day}T{time}+00:00", "event": event, "user_id": who,
            "channel": extra.pop("channel", "web"), **extra}


def attempt(day: str, time: str, who: str, ok: bool) -> list[dict]:
    end = "payment_succeeded" if ok else "payment_failed"
    return [at(day, time, "checkout_payment_opened", who), at(day, time[:-2] + "20", end, who)]


def exposure(day: str, who: str, variant: str, channel: str = "web", os: str | None = None) -> dict:
    row = at(day, "09:00:00", "experiment_exposure", who, channel=channel,
             properties={"experiment": "short_form", "variant": variant})
    if os is not None:
        row["context"] = {"os": os}
    return row


def make(tmp_path_factory, name: str, rows: list[dict]) -> mj.Workspace:
    return workspace_of(tmp_path_factory.mktemp(name), YAML, rows)


@pytest.fixture(scope="module")
def two_weeks(tmp_path_factory):
    rows = []
    # Week of Monday 2024-01-01: control 2 of 4 complete, short 3 of 4 (s4 fails late on
    # Sunday the 7th: still that week). Week of the 8th: 2 of 4 in both.
    for who, first, second in (("c1", True, True), ("c2", True, True), ("c3", False, False),
                               ("c4", False, False)):
        rows += [exposure("2024-01-01", who, "control"), *attempt("2024-01-02", "10:00:00", who, first),
                 *attempt("2024-01-09", "10:00:00", who, second)]
    for who, first, second in (("s1", True, True), ("s2", True, True), ("s3", True, False)):
        rows += [exposure("2024-01-01", who, "short"), *attempt("2024-01-03", "10:00:00", who, first),
                 *attempt("2024-01-10", "10:00:00", who, second)]
    rows += [exposure("2024-01-01", "s4", "short"), *attempt("2024-01-07", "23:50:00", "s4", False),
             *attempt("2024-01-08", "00:10:00", "s4", False)]
    w = make(tmp_path_factory, "weeks", rows)
    yield w
    w.close()


def test_the_effect_by_week_by_hand(two_weeks):
    r = two_weeks.analysis("experiment", experiment="short_form")
    weeks = r.table("weeks")
    rates = weeks[weeks.metric == "completion_rate"].set_index("week")
    assert list(rates.index) == ["2024-01-01", "2024-01-08"]
    assert list(rates.units) == [4, 4] and list(rates.control_units) == [4, 4]
    one, two = rates.loc["2024-01-01"], rates.loc["2024-01-08"]
    # Week 1 as tests/test_experiment.py: lift 0.5, variance 1.0, Welch df 5.88.
    df1 = (1 / 12 + 1 / 16) ** 2 / ((1 / 12) ** 2 / 3 + (1 / 16) ** 2 / 3)
    assert one.lift == pytest.approx(0.5)
    assert one.lift_ci == pytest.approx([0.5 - student.ppf(0.975, df1), 0.5 + student.ppf(0.975, df1)])
    # Week 2: 2 of 4 against 2 of 4, unit variances 1/3: the lift's variance
    # (1/3)/(4 × 0.25) + 0.5² × (1/3)/(4 × 0.5⁴) = 2/3; df (1/6)² / (2 × (1/12)² / 3) = 6.
    half = student.ppf(0.975, 6) * math.sqrt(2 / 3)
    assert two.lift == 0 and two.lift_ci == pytest.approx([-half, half])
    assert two.p == pytest.approx(1.0)
    # Neither week is significant: no verdict either way.
    metrics = r.table("metrics").set_index(["metric", "variant"])
    assert metrics.loc[("completion_rate", "short")].durability == "inconclusive"
    assert r.meta["durability"]["completion_rate"] == {"short": "inconclusive"}
    assert "novelty" not in {w.code for w in r.warnings}


def _week(week: str, variant: str, units: int, done: int) -> dict:
    """A week of one variant's sums, one attempt per person, ``done`` of ``units`` complete."""
    return {"metric": "completion_rate", "variant": variant, "week": week, "units": units, "num": done,
            "den": units, "num2": done, "den2": units, "numden": done}


def test_a_fading_effect_is_novelty_and_a_steady_one_durable():
    e = parse_workspace(YAML).experiments[0]
    weeks = ("2024-01-01", "2024-01-08", "2024-01-15")
    fading = pd.DataFrame([r for week, short in zip(weeks, (650, 600, 510), strict=True)
                           for r in (_week(week, "control", 1000, 500), _week(week, "short", 1000, short))])
    table, verdicts, notices = weekly_rows(e, fading)
    lifts = table[table.metric == "completion_rate"].lift.round(6).tolist()
    assert lifts == [0.3, 0.2, 0.02]
    assert verdicts[("completion_rate", "short")].verdict == "novelty"
    assert [n.code for n in notices] == ["novelty"]
    assert notices[0].where == {"metric": "completion_rate", "variant": "short"}
    assert "week 1 +0.3, last week +0.02" in notices[0].message
    steady = pd.DataFrame([r for week in weeks
                           for r in (_week(week, "control", 1000, 500), _week(week, "short", 1000, 600))])
    _, verdicts, notices = weekly_rows(e, steady)
    assert verdicts[("completion_rate", "short")].verdict == "durable" and not notices
    # No week for a metric: inconclusive, and its rows absent.
    assert verdicts[("failure_rate", "short")].verdict == "inconclusive"


@pytest.fixture(scope="module")
def broken_app(tmp_path_factory):
    """Web: 100 persons per variant (os macos). App: 100 control, but 40 short (ios): the
    app's short variant loses most of its exposures."""
    rows = []
    for i in range(100):
        rows += [exposure("2024-01-01", f"wc{i}", "control", "web", "macos"),
                 exposure("2024-01-01", f"ws{i}", "short", "web", "macos"),
                 exposure("2024-01-01", f"ac{i}", "control", "app", "ios")]
    rows += [exposure("2024-01-01", f"as{i}", "short", "app", "ios") for i in range(40)]
    rows += attempt("2024-01-02", "10:00:00", "wc0", True) + attempt("2024-01-02", "11:00:00", "ws0", False)
    w = make(tmp_path_factory, "srm", rows)
    yield w
    w.close()


def test_a_broken_channel_is_flagged_where_the_overall_check_is_not(broken_app):
    r = broken_app.analysis("experiment", experiment="short_form")
    srm = r.table("srm").set_index(["dimension", "value"])
    # Overall 200 against 140: χ² = 2 × 30² / 170 = 10.59, p = 0.00114: not below 0.001.
    overall = srm.loc[("all", "all")]
    assert overall.split == [200, 140] and overall.exposed == 340
    assert overall.p == pytest.approx(chi_square.sf(2 * 30**2 / 170, 1)) and not overall.mismatch
    assert r.meta["srm_p"] == pytest.approx(0.001138, abs=1e-6)
    # The app: 100 against 40, χ² = 2 × 30² / 70 = 25.71, p = 3.96e-7; Holm over the four
    # values checked (channel app and web, os ios and macos): the two smallest × 4.
    p_app = chi_square.sf(2 * 30**2 / 70, 1)
    for key in (("channel", "app"), ("os", "ios")):
        assert srm.loc[key].split == [100, 40]
        assert srm.loc[key].p == pytest.approx(4 * p_app) and srm.loc[key].mismatch
    for key in (("channel", "web"), ("os", "macos")):
        assert srm.loc[key].split == [100, 100] and srm.loc[key].p == 1 and not srm.loc[key].mismatch
    flagged = [w for w in r.warnings if w.code == "srm"]
    assert [(w.where["dimension"], w.where["value"]) for w in flagged] == [("channel", "app"), ("os", "ios")]
    assert "Holm-adjusted p = 1.6e-06" in flagged[0].message
