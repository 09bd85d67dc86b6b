"""Planning the next experiment (``experiment-plan``; docs/experiments.md, "Planning the next
experiment"): persons per week and the per-person variance from the workspace's data, the
minimum detectable effect for the planned weeks and by length, the persons and weeks a
target lift needs — checked against a power calculation by hand."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import norm
from typer.testing import CliRunner

from microjourney.cli import app

from .helpers import PAYMENT_YAML, workspace_of

#: z₁₋α/₂ + z_power at 5% and 80%: 1.959964 + 0.841621.
Z = 2.801585


def rows() -> list[dict]:
    """40 persons, one attempt each over 14 days (2024-01-01 to the 14th), 10 complete."""
    out = []
    for i in range(40):
        day = f"2024-01-{1 + i % 14:02d}"
        end = "payment_succeeded" if i < 10 else "payment_failed"
        out += [{"timestamp": f"{day}T10:{i:02d}:00+00:00", "event": "checkout_payment_opened",
                 "user_id": f"p{i}", "channel": "web"},
                {"timestamp": f"{day}T10:{i:02d}:30+00:00", "event": end, "user_id": f"p{i}",
                 "channel": "web"}]
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = workspace_of(tmp_path_factory.mktemp("plan"), PAYMENT_YAML, rows())
    yield w
    w.close()


def test_the_minimum_detectable_effect_by_hand(ws):
    r = ws.analysis("experiment-plan", moment="card_payment", weeks=2)
    plan = r.table("plan").iloc[0]
    # The window: 28 days before the day after the last attempt (2024-01-15), but the data
    # begin on the 1st: 14 days. 40 persons × 7 / 14 = 20 a week.
    assert r.meta["window_start"].startswith("2024-01-01") and r.meta["window_end"].startswith("2024-01-15")
    assert plan.persons_per_week == 20 and plan.rate == 0.25
    # One attempt each: a person's value is 0 or 1; σ² = (10 − 10²/40) / 39 = 7.5 / 39.
    var = 7.5 / 39
    assert plan.sd == pytest.approx(math.sqrt(var))
    # Two weeks, two variants: 20 persons each; MDE = 2.801585 × √(2 × 0.192308 / 20)
    # = 2.801585 × 0.138675 = 0.388510 (rate points), ÷ 0.25 = 1.554 relative.
    assert plan.persons_per_variant == 20
    assert plan.mde_points == pytest.approx(0.388510, abs=1e-6)
    assert plan.mde == pytest.approx(0.388510 / 0.25, abs=1e-5)
    assert math.isnan(plan.get("mde_seconds", math.nan))
    weeks = r.table("weeks")
    assert weeks.weeks.tolist() == list(range(1, 9))
    assert weeks.persons_per_variant.tolist() == [10 * w for w in range(1, 9)]
    # Eight weeks: 80 each; MDE = 2.801585 × √(2 × 0.192308 / 80) = 0.194255.
    assert weeks.mde_points.iloc[7] == pytest.approx(0.194255, abs=1e-6)
    assert weeks.mde.iloc[7] == pytest.approx(Z * math.sqrt(2 * var / 80) / 0.25, rel=1e-6)
    codes = {w.code for w in r.warnings}
    assert "too-few-units" not in codes  # 40 persons read


def test_persons_and_weeks_a_target_lift_needs(ws):
    r = ws.analysis("experiment-plan", moment="card_payment", weeks=2, mde=0.5)
    plan = r.table("plan").iloc[0]
    var = 7.5 / 39
    # A 50% lift of 0.25: 0.125 points. Persons per variant 2 × 0.192308 × 2.801585² /
    # 0.125² = 193.2, so 194; at 20 a week and 2 variants, 194 × 2 / 20 = 19.4: 20 weeks.
    assert plan.target == 0.5
    assert plan.persons_needed == 194 == math.ceil(2 * var * Z**2 / 0.125**2)
    assert plan.weeks_needed == 20
    # The power of two weeks (20 each): se = 0.138675, Φ(0.9014 − 1.96) + Φ(−0.9014 − 1.96).
    se = math.sqrt(2 * var / 20)
    z = norm.ppf(0.975)
    assert plan.power == pytest.approx(norm.cdf(0.125 / se - z) + norm.cdf(-0.125 / se - z))
    assert plan.power == pytest.approx(0.1470, abs=1e-4)
    powers = r.table("weeks").power.tolist()
    assert powers == sorted(powers) and powers[1] == pytest.approx(plan.power)


def test_three_variants_alpha_and_power_change_the_plan(ws):
    r = ws.analysis("experiment-plan", moment="card_payment", weeks=3, variants=3, alpha=0.01,
                    power=0.9)
    plan = r.table("plan").iloc[0]
    assert plan.persons_per_variant == 20  # 20 a week × 3 weeks ÷ 3
    z = norm.ppf(0.995) + norm.ppf(0.9)
    assert plan.mde_points == pytest.approx(z * math.sqrt(2 * (7.5 / 39) / 20))


def test_no_data_and_too_few_persons_are_notices(ws):
    empty = ws.analysis("experiment-plan", moment="card_payment", since="2025-01-01")
    assert [w.code for w in empty.warnings] == ["no-attempts"] and empty.table("plan").empty
    few = ws.analysis("experiment-plan", moment="card_payment", since="2024-01-10")
    assert "too-few-units" in {w.code for w in few.warnings}
    # From the 10th: days 10 to 14, 5 days; person i attempts on day 1 + i mod 14, so
    # persons 9–13, 23–27 and 37–39: 13 persons × 7 / 5 days.
    plan = few.table("plan").iloc[0]
    assert plan.persons_per_week == pytest.approx(13 * 7 / 5)


def test_the_command_line(ws):
    root = ws.root
    runner = CliRunner()
    done = runner.invoke(app, ["experiment-plan", "card_payment", "--weeks", "2", "--mde", "0.5",
                               "--json", "-w", str(root)])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["tables"]["plan"][0]["persons_needed"] == 194
    text = runner.invoke(app, ["experiment-plan", "card_payment", "-w", str(root)],
                         env={"COLUMNS": "200"}).output
    assert "Planning completion_rate" in text and "155.4%" in text and "+38.9 pts" in text
