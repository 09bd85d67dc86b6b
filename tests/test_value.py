"""Value at stake and the portfolio (docs/value.md): the ``value:`` keys and their defaults;
failure, deflection and retention value by hand on small workspaces; the bootstrap over
persons against a hand-worked normal approximation and, in seeded simulations, its coverage;
notices for missing costs and too few persons; the ranking."""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microjourney.analysis import value as va
from microjourney.analysis.value import Costs, value_at_stake
from microjourney.cli import app
from microjourney.errors import SpecError
from microjourney.spec import parse_workspace
from microjourney.spec.value import DAY, Value, effective, resolved

from .helpers import PAYMENT_YAML, ev

SPEC = """\
journeys:
  - name: payment
    moments:
      - name: pay
        start: {event: open}
        complete: {event: ok}
        fail: {event: failed}
        escalate: {event: contact, channel: [chat, voice, agent, email]}
        timeout: 10m
"""
T0 = datetime(2024, 1, 1)


def at(day: float, event: str, who: str, **extra) -> dict:
    """An event ``day`` days (fractions allowed) after 2024-01-01 00:00 UTC."""
    row = ev("00:00:00", event, who, **extra)
    row["timestamp"] = (T0 + timedelta(days=day)).isoformat() + "+00:00"
    return row


def H(hours: float) -> float:
    return hours / 24


# -- the workspace keys --------------------------------------------------------------------

def test_value_keys_defaults_and_where_each_comes_from():
    ws = parse_workspace(PAYMENT_YAML + "        failure_cost: 38\n"
                         "        value: {lifetime_value: 420, retention_days: 14}\n"
                         "value: {contact_cost: 6.5, currency: GBP, retention_days: 4w}\n")
    m = ws.moments["card_payment"]
    v = effective(m, ws.value)
    assert (v.failure_cost, v.contact_cost, v.lifetime_value) == (38, 6.5, 420)
    assert v.currency == "GBP" and v.retention_days == 14 * DAY  # a number is days
    assert ws.value.retention_days == 28 * DAY                     # a duration as written
    where = {k: s for k, (_, s) in resolved(m, ws.value).items()}
    assert where == {"failure_cost": "moment", "contact_cost": "workspace",
                     "lifetime_value": "moment", "currency": "workspace",
                     "retention_days": "moment"}
    bare = parse_workspace(PAYMENT_YAML)
    v = effective(bare.moments["card_payment"], bare.value)
    assert v == Value() and v.currency == "EUR" and v.retention_days == 30 * DAY
    assert v.failure_cost is None and v.contact_cost is None and v.lifetime_value is None


@pytest.mark.parametrize(("extra", "expected"), [
    ("        value: {failure_cst: 3}\n", "ws.yaml:17:17: unknown key 'failure_cst'; allowed keys: "
     "failure_cost, contact_cost, lifetime_value, currency, retention_days"),
    ("value: {currency: euro}\n", "ws.yaml:17:19: currency 'euro' is not an ISO 4217 code"),
    ("value: {contact_cost: -1}\n", "ws.yaml:17:23: Input should be greater than or equal to 0"),
    ("value: {retention_days: 0}\n", "ws.yaml:17:25: Input should be greater than 0"),
    ("        failure_cost: 3\n        value: {failure_cost: 4}\n",
     "ws.yaml:18:9: failure_cost is given twice, on the moment and in its value; keep one"),
])
def test_value_mistakes_point_at_file_line_column(extra, expected):
    with pytest.raises(SpecError) as info:
        parse_workspace(PAYMENT_YAML + extra, file="ws.yaml")
    assert str(info.value.problems[0]).startswith(expected)


# -- failure and deflection value by hand ---------------------------------------------------

CONTACT_ROWS = [
    # f: fails on the web, chats 2 h later (an escalation), calls 3 days later (a repeat).
    at(0, "open", "f"), at(H(0.01), "failed", "f"),
    at(H(2), "contact", "f", channel="chat"), at(3, "contact", "f", channel="voice"),
    # g: fails, calls two days later: outside the 24 h escalation window.
    at(0, "open", "g"), at(H(0.01), "failed", "g"), at(2, "contact", "g", channel="voice"),
    # h: completes.
    at(0, "open", "h"), at(H(0.01), "ok", "h"),
    # j: escalates inside the attempt (web -> chat), contacts again 10 days later (no repeat).
    at(0, "open", "j"), at(H(0.02), "contact", "j", channel="chat"),
    at(10, "contact", "j", channel="chat"),
    # d: fails twice on the web, then chats: both attempts escalated into the one chat.
    at(0, "open", "d"), at(H(0.01), "failed", "d"), at(H(0.5), "open", "d"),
    at(H(0.51), "failed", "d"), at(H(1), "contact", "d", channel="chat"),
]


def test_failure_and_deflection_value_by_hand(make_ws):
    ws = make_ws(SPEC.replace("timeout: 10m", "timeout: 10m\n        value: {failure_cost: 10, "
                              "contact_cost: 5}"), CONTACT_ROWS)
    r = ws.analysis("portfolio")
    row = r.table().iloc[0]
    # 6 attempts (f, g, h, j, d twice), all finished, 4 failed.
    assert (row.attempts, row.persons) == (6, 5)
    assert row.failure_rate == pytest.approx(4 / 6)
    assert row.failure_value == pytest.approx(6 * 4 / 6 * 10)
    # Avoidable: f's chat (escalation) and its repeat (the call), j's chat (escalation), d's
    # one chat (two escalations into it): 4. The scorecard counts d's chat twice: 5.
    assert row.avoidable_contacts == 4 and row.deflection_value == 20
    card = ws.analysis("scorecard").table().iloc[0]
    assert card.escalations + card.repeat_contacts == 5
    assert row.total_value == 40 + 20 and r.meta["total_value"] == 60
    assert math.isnan(row.retention_value) and row.currency == "EUR" and r.meta["currency"] == "EUR"
    codes = {(w.code, w.where.get("parameter")) for w in r.warnings}
    assert ("missing-parameter", "lifetime_value") in codes
    assert ("too-few-persons", None) in codes and ("few-units", None) in codes
    assert not any(p == "failure_cost" for _, p in codes)
    # Each interval holds its value.
    for c in ("failure_value", "deflection_value", "total_value"):
        low, high = row[f"{c}_ci"]
        assert low <= row[c] <= high, c
    params = r.table("parameters").iloc[0]
    assert (params.failure_cost, params.contact_cost) == (10, 5) and params.lifetime_value is None
    assert params.source == "moment: failure_cost, contact_cost"


def retention_rows() -> list[dict]:
    """25 persons complete on day 0 and 15 of them come back on day 10; 25 fail on day 0 and
    5 come back: 3 log in on day 10, 2 pay again on day 3 (a later attempt of the moment is a
    return). Of the other 20 who failed, in the day after the failure (the moment's escalation
    window: its aftermath), 8 retry, 4 answer a survey, 4 call about it; 4 get an SMS on day 2
    (the company's, perhaps): none of it is a return. 6 more persons fail on day 35: their
    30-day window is not over by the end of the data (day 40)."""
    rows: list[dict] = []
    for i in range(25):
        who = f"c{i}"
        rows += [at(0, "open", who), at(H(0.01), "ok", who)]
        if i < 15:
            rows.append(at(10, "login", who))
        else:
            rows.append(at(31, "login", who))  # after the window
    for i in range(25):
        who = f"x{i}"
        rows += [at(0, "open", who), at(H(0.01), "failed", who)]
        if i < 3:
            rows.append(at(10, "login", who, channel="app"))
        elif i < 5:
            rows += [at(3, "open", who), at(3 + H(0.01), "ok", who)]
        elif i < 13:
            rows += [at(H(0.5), "open", who), at(H(0.51), "ok", who), at(H(1), "login", who)]
        elif i < 17:
            rows.append(at(H(0.1), "survey_response", who,
                           properties={"survey": "s", "question": "q", "answer": 1}))
        elif i < 21:
            rows.append(at(2, "promo", who, channel="sms"))
        else:
            rows.append(at(H(3), "contact", who, channel="voice"))
    for i in range(6):
        rows += [at(35, "open", f"late{i}"), at(35 + H(0.01), "failed", f"late{i}")]
    rows.append(at(40, "login", "someone"))
    return rows


def test_retention_gap_and_value_by_hand(make_ws):
    spec = SPEC + "value: {lifetime_value: 100}\n"
    ws = make_ws(spec, retention_rows())
    r = ws.analysis("portfolio")
    ret = r.table("retention").iloc[0]
    assert (ret.completed_persons, ret.failed_persons) == (25, 25)
    assert ret.completed_returned == 15 / 25 and ret.failed_returned == 5 / 25
    assert ret.retention_difference == pytest.approx(0.4)
    # Affected: the 25 who failed first, and the 6 whose window is still open.
    assert (ret.affected, ret.open) == (31, 6) and ret.retention_s == 30 * DAY
    row = r.table().iloc[0]
    assert row.retention_value == pytest.approx(0.4 * 31 * 100)
    low, high = row.retention_difference_ci
    assert 0 < low < 0.4 < high
    codes = [w.code for w in r.warnings]
    assert "retention-not-significant" not in codes and "too-few-persons" not in codes
    # A shorter window: the day-10 returns fall outside it; only the two who paid again on
    # day 3 came back. A gap of −8 points within chance: reported as measured, not hidden.
    ws2 = make_ws(SPEC + "value: {lifetime_value: 100, retention_days: 5}\n", retention_rows(),
                  name="short")
    r2 = ws2.analysis("portfolio")
    ret2 = r2.table("retention").iloc[0]
    assert ret2.completed_returned == 0 and ret2.failed_returned == 2 / 25
    assert r2.table().iloc[0].retention_value == pytest.approx(-0.08 * 31 * 100)
    assert "retention-not-significant" in [w.code for w in r2.warnings]
    # A window no longer than the aftermath: nobody can come back; said, not computed.
    ws3 = make_ws(SPEC + "value: {lifetime_value: 100, retention_days: 1}\n", retention_rows(),
                  name="empty")
    r3 = ws3.analysis("portfolio")
    assert {"retention-window-empty", "too-few-persons"} <= {w.code for w in r3.warnings}
    assert math.isnan(r3.table().iloc[0].retention_value)


def test_retention_counts_any_later_event_of_another_moment(make_ws):
    spec = SPEC + """\
      - name: browse
        start: {event: login}
        complete: {event: browsed}
"""
    ws = make_ws(spec + "value: {lifetime_value: 1}\n", retention_rows())
    r = ws.analysis("portfolio")
    ret = r.table("retention").set_index("moment")
    # The logins are now attempts of another moment: returns for pay all the same.
    assert ret.loc["pay", "completed_returned"] == 15 / 25 and ret.loc["pay", "failed_returned"] == 5 / 25
    # browse's attempts are abandoned (no outcome): none completed or failed first.
    assert ret.loc["browse", "completed_persons"] == 0


# -- the bootstrap ---------------------------------------------------------------------------

def patterns(**columns) -> pd.DataFrame:
    """A pattern table from equal-length lists (``first`` and ``returned`` may hold None)."""
    return pd.DataFrame(columns)


def test_bootstrap_matches_the_normal_approximation():
    # 400 persons, one finished attempt each, 100 failed: the failure value is 100 × cost, and
    # resampling persons makes the failures binomial: SE = sqrt(400 × 0.25 × 0.75) = 8.660.
    p = patterns(attempts=[1, 1], finished=[1, 1], failed=[1, 0], avoidable=[2, 0],
                 first=["failed", "completed"], returned=[False, True], persons=[100, 300])
    v = value_at_stake("m", p, Costs(failure_cost=1.0, contact_cost=0.5), resamples=4000)
    se = math.sqrt(400 * 0.25 * 0.75)
    assert v.failure_value.value == 100
    assert v.failure_value.low == pytest.approx(100 - 1.96 * se, abs=1.5)
    assert v.failure_value.high == pytest.approx(100 + 1.96 * se, abs=1.5)
    assert v.failure_rate.low == pytest.approx(0.25 - 1.96 * se / 400, abs=0.004)
    # Deflection: 2 contacts per failed person: 200 × 0.5, SE = 2 × 0.5 × 8.660.
    assert v.deflection_value.value == 100
    assert v.deflection_value.high - 100 == pytest.approx(1.96 * se, abs=1.5)
    # The total moves with both at once (they are the same persons): SE = 2 × 8.660.
    assert v.total.high - v.total.value == pytest.approx(1.96 * 2 * se, abs=2.5)


def test_retention_interval_matches_the_normal_approximation():
    # Completed first: 120 of 200 came back; failed first: 40 of 100. Gap 0.2,
    # SE = sqrt(0.6 × 0.4 / 200 + 0.4 × 0.6 / 100) = 0.0600.
    p = patterns(attempts=[1] * 4, finished=[1] * 4, failed=[0, 0, 1, 1], avoidable=[0] * 4,
                 first=["completed", "completed", "failed", "failed"],
                 returned=[True, False, True, False], persons=[120, 80, 40, 60])
    v = value_at_stake("m", p, Costs(lifetime_value=10.0), resamples=4000)
    d = v.retention.difference
    se = math.sqrt(0.6 * 0.4 / 200 + 0.4 * 0.6 / 100)
    assert d.value == pytest.approx(0.2)
    assert d.low == pytest.approx(0.2 - 1.96 * se, abs=0.01)
    assert d.high == pytest.approx(0.2 + 1.96 * se, abs=0.01)
    assert v.retention_value.value == pytest.approx(0.2 * 100 * 10)
    assert v.notes == ()


def simulate(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` persons: 1 + Poisson(0.5) attempts, each failing with probability 0.3 (all
    finished); Poisson(0.2) avoidable contacts per failure; coming back with probability 0.6
    after a completed first attempt, 0.4 after a failed one; as patterns."""
    attempts = 1 + rng.poisson(0.5, n)
    failed = rng.binomial(attempts, 0.3)
    first_failed = rng.random(n) < failed / attempts  # the first attempt is one of them
    avoidable = rng.poisson(0.2 * failed)
    back = rng.random(n) < np.where(first_failed, 0.4, 0.6)
    df = pd.DataFrame({"attempts": attempts, "finished": attempts, "failed": failed,
                       "avoidable": avoidable,
                       "first": np.where(first_failed, "failed", "completed"), "returned": back})
    return df.value_counts().rename("persons").reset_index()


def test_bootstrap_intervals_cover_near_nominal():
    """300 seeded data sets of 400 persons: how often each 95% interval holds the value a
    period of 400 persons has on average. The Monte Carlo error of a coverage near 0.95 over
    300 sets is 0.013, so 0.91–0.99 is a wide margin; it runs in a few seconds."""
    rng = np.random.default_rng(2026)
    n, sets = 400, 300
    costs = Costs(failure_cost=2.0, contact_cost=3.0, lifetime_value=5.0)
    # Expected values per 400 persons: failures 400 × 1.5 × 0.3; contacts 0.2 per failure.
    # P(first failed) = 0.3 (each attempt fails with 0.3, whatever their number).
    failure = n * 1.5 * 0.3 * 2.0
    deflection = n * 1.5 * 0.3 * 0.2 * 3.0
    retention = 0.2 * n * 0.3 * 5.0
    truth = {"failure_value": failure, "deflection_value": deflection,
             "retention_value": retention, "total": failure + deflection + retention}
    held = {k: 0 for k in truth} | {"difference": 0}
    started = time.perf_counter()
    for i in range(sets):
        v = value_at_stake(f"m{i}", simulate(rng, n), costs, seed=i)
        for k, x in truth.items():
            held[k] += getattr(v, k).covers(x)
        held["difference"] += v.retention.difference.covers(0.2)
    elapsed = time.perf_counter() - started
    coverage = {k: h / sets for k, h in held.items()}
    assert all(0.91 <= c <= 0.99 for c in coverage.values()), coverage
    assert elapsed < 30, elapsed


def test_the_same_patterns_in_any_order_give_the_same_intervals():
    rng = np.random.default_rng(5)
    p = simulate(rng, 500)
    a = value_at_stake("m", p, Costs(1.0, 1.0, 1.0))
    b = value_at_stake("m", p.sample(frac=1, random_state=3), Costs(1.0, 1.0, 1.0))
    assert a == b
    # Another moment's name draws other resamples (its intervals do not move with others').
    c = value_at_stake("n", p, Costs(1.0, 1.0, 1.0))
    assert c.total.value == a.total.value and c.total.low != a.total.low


def test_a_moment_without_persons_or_costs():
    empty = patterns(attempts=[], finished=[], failed=[], avoidable=[], first=[], returned=[],
                     persons=[])
    v = value_at_stake("m", empty, Costs(1.0, 1.0, 1.0))
    assert v.persons == 0 and v.total is None and v.failure_rate is None
    p = simulate(np.random.default_rng(1), 100)
    v = value_at_stake("m", p, Costs())
    assert v.failure_rate is not None and v.failure_value is None and v.total is None
    assert v.retention.difference is not None and v.retention_value is None
    notes = va.missing({"a": Costs(), "b": Costs(failure_cost=1.0)})
    assert [(code, where["parameter"], where["moments"]) for code, _, where in notes] == [
        ("missing-parameter", "failure_cost", ["a"]), ("missing-parameter", "contact_cost", ["a", "b"]),
        ("missing-parameter", "lifetime_value", ["a", "b"])]
    assert "their failure value is not computed" in notes[0][1]


def test_too_few_persons_leaves_the_retention_out_and_says_so():
    p = patterns(attempts=[1, 1], finished=[1, 1], failed=[1, 0], avoidable=[0, 0],
                 first=["failed", "completed"], returned=[True, None], persons=[30, 19])
    v = value_at_stake("m", p, Costs(1.0, 1.0, 1.0))
    assert v.retention.difference is None and v.retention_value is None
    assert v.retention.open == 19
    assert v.total.value == v.failure_value.value + v.deflection_value.value
    assert [code for code, _ in v.notes] == ["too-few-persons"]


def test_a_reversed_retention_gap_is_reported():
    p = patterns(attempts=[1] * 4, finished=[1] * 4, failed=[0, 0, 1, 1], avoidable=[0] * 4,
                 first=["completed", "completed", "failed", "failed"],
                 returned=[True, False, True, False], persons=[20, 80, 80, 20])
    v = value_at_stake("m", p, Costs(lifetime_value=1.0))
    assert v.retention.difference.value == pytest.approx(-0.6) and v.retention_value.value < 0
    assert [code for code, _ in v.notes] == ["retention-reversed"]


# -- the ranking -----------------------------------------------------------------------------

def test_ranking_by_total_then_attempts():
    p = simulate(np.random.default_rng(2), 200)
    big = value_at_stake("big", p, Costs(failure_cost=10.0))
    small = value_at_stake("small", p, Costs(failure_cost=1.0))
    none_many = value_at_stake("none_many", pd.concat([p, p]), Costs())
    none_few = value_at_stake("none_few", p, Costs())
    order = va.rank({"none_few": none_few, "small": small, "none_many": none_many, "big": big})
    assert order == ["big", "small", "none_many", "none_few"]


RANK_SPEC = SPEC + """\
        value: {failure_cost: 1}
      - name: refund
        start: {event: ask}
        complete: {event: refunded}
        fail: {event: refused}
        value: {failure_cost: 50, currency: EUR}
value: {contact_cost: 2}
"""


def test_the_portfolio_ranks_moments_by_value_at_stake(make_ws, tmp_path):
    rows = []
    for i in range(30):  # pay: 30 attempts, 10 failed; refund: 6 attempts, 3 failed
        rows += [at(0, "open", f"p{i}"), at(H(0.01), "failed" if i < 10 else "ok", f"p{i}")]
    for i in range(6):
        rows += [at(0, "ask", f"r{i}"), at(H(0.01), "refused" if i < 3 else "refunded", f"r{i}")]
    ws = make_ws(RANK_SPEC, rows)
    r = ws.analysis("portfolio")
    t = r.table()
    assert t.moment.tolist() == ["refund", "pay"] and t["rank"].tolist() == [1, 2]
    assert t.failure_value.tolist() == [150, 10] and t.attempts.tolist() == [6, 30]
    assert t.deflection_value.tolist() == [0, 0] and t.total_value.tolist() == [150, 10]
    assert r.meta["total_value"] == 160
    params = r.table("parameters").set_index("moment")
    assert params.loc["refund", "source"] == "moment: failure_cost, currency; workspace: contact_cost"
    # The command line: `microjourney portfolio --json`, the same numbers.
    root = ws.root
    ws.close()
    out = CliRunner().invoke(app, ["portfolio", "--json", "-w", str(root)])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [row["moment"] for row in data["tables"]["moments"]] == ["refund", "pay"]
    assert data["tables"]["moments"][0]["total_value_ci"][0] <= 150
    text = CliRunner().invoke(app, ["portfolio", "-w", str(root)], env={"COLUMNS": "200"})
    assert text.exit_code == 0 and "value at stake" in text.output


def test_mixed_currencies_are_flagged(make_ws):
    spec = RANK_SPEC.replace("currency: EUR", "currency: USD")
    ws = make_ws(spec, [at(0, "open", "a"), at(H(0.01), "failed", "a")])
    r = ws.analysis("portfolio")
    assert "mixed-currencies" in [w.code for w in r.warnings]
    assert r.meta["currency"] is None and r.meta["total_value"] is None
    assert set(r.table().currency) == {"EUR", "USD"}
