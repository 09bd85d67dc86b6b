"""The weekly review's rules on small hand-made tables (microjourney.analysis.review): the
RAG colour and its reasons, the tests of a move, the wall, the frictions that grew."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from microjourney.analysis.review import better_change, compare, counts_of, grown, judge, wall


@pytest.mark.parametrize(("row", "colour", "reasons"), [
    ({"status": "on target"}, "green", ["on target"]),
    ({"status": "near target"}, "amber", ["near target"]),
    ({"status": "off target"}, "amber", ["off target"]),
    ({"status": "no target"}, "grey", ["no target"]),
    ({"status": "no data"}, "grey", ["no data"]),
    ({"status": "on target", "baseline_moved": "worse"}, "amber",
     ["worse than its baseline beyond chance"]),
    ({"status": "on target", "moved": "worse"}, "red", ["worse than last week beyond chance"]),
    ({"status": "no target", "alerts": 2}, "red", ["2 regression alerts ran in the week"]),
    ({"status": "off target", "overdue": True}, "red", ["off target past its target day"]),
    ({"status": "near target", "overdue": True}, "amber", ["near target"]),  # not clearly off
    ({"status": "on target", "moved": "better", "baseline_moved": "better"}, "green", ["on target"]),
    ({"status": "off target", "alerts": 1, "moved": "worse", "baseline_moved": "worse"}, "red",
     ["a regression alert ran in the week", "worse than last week beyond chance", "off target",
      "worse than its baseline beyond chance"]),
])
def test_each_rule_of_the_colour(row, colour, reasons):
    assert judge(row) == (colour, reasons)


def test_a_move_is_one_only_beyond_chance_after_holm():
    # 80/100 → 70/100 alone is p = 0.102 (pooled z = 1.633): no move. 90/100 → 60/100 is
    # z = 4.899, p = 9.6e-7, as is c's 10 → 40; Holm triples the two smallest: still moves.
    t = compare(pd.DataFrame({
        "moment": ["a", "b", "c"], "metric": ["completion_rate", "completion_rate", "failure_rate"],
        "k_now": [70, 60, 40], "n_now": [100, 100, 100], "k_before": [80, 90, 10],
        "n_before": [100, 100, 100], "k_base": [None, 45, None], "n_base": [None, 50, None]}))
    a, b, c = (t.iloc[i] for i in range(3))
    assert a.p_value == pytest.approx(0.10247, abs=1e-5) and a.moved is None
    assert b.p_value == pytest.approx(9.634e-7, rel=1e-3)
    assert b.p_adjusted == pytest.approx(3 * b.p_value) and b.moved == "worse"
    assert c.moved == "worse"  # a failure rate that rose is worse
    assert a.p_adjusted == pytest.approx(min(1.0, a.p_value))  # the largest of three: × 1
    # Against the baseline: only b has one (45 of 50 = 90% → 60%).
    assert math.isnan(a.vs_baseline) and b.vs_baseline == pytest.approx(-0.3)
    assert b.baseline_moved == "worse" and a.baseline_moved is None
    # A time is shown, not tested.
    d = compare(pd.DataFrame({"moment": ["t"], "metric": ["duration_median_s"], "k_now": [None],
                              "n_now": [None], "k_before": [None], "n_before": [None],
                              "k_base": [None], "n_base": [None]}))
    assert d.moved[0] is None and math.isnan(d.p_value[0]) and d.change_ci[0] is None


def test_the_wall_puts_each_moment_on_one_side():
    rows = [
        {"moment": "a", "rag": "red", "metric": "completion_rate", "change": 0.02, "moved": None},
        {"moment": "b", "rag": "red", "metric": "completion_rate", "change": -0.10, "moved": "worse"},
        {"moment": "c", "rag": "amber", "metric": "failure_rate", "change": 0.05, "moved": None},
        {"moment": "d", "rag": "green", "metric": "completion_rate", "change": 0.01, "moved": None},
        {"moment": "e", "rag": "amber", "metric": "failure_rate", "change": -0.08, "moved": "better"},
        {"moment": "f", "rag": "grey", "metric": "completion_rate", "change": 0.3, "moved": None},
    ]
    assert wall(rows) == [{"side": "worst", "moment": "b"}, {"side": "worst", "moment": "a"},
                          {"side": "worst", "moment": "c"}, {"side": "best", "moment": "e"},
                          {"side": "best", "moment": "d"}]
    assert wall(rows, size=1) == [{"side": "worst", "moment": "b"}, {"side": "best", "moment": "e"}]
    assert better_change("failure_rate", -0.08) == 0.08 and better_change("completion_rate", -0.1) == -0.1
    assert counts_of(["red", "red", "grey"]) == {"red": 2, "amber": 0, "green": 0, "grey": 1}


def test_the_frictions_that_grew():
    now = pd.DataFrame({"moment": ["pay", "pay", "login"], "kind": ["waiting", "error_shown", "waiting"],
                        "seconds": [500.0, 90.0, 10.0], "hit": [20, 3, 1]})
    before = pd.DataFrame({"moment": ["pay", "login"], "kind": ["waiting", "waiting"],
                           "seconds": [400.0, 30.0], "hit": [18, 2]})
    t = grown(now, before, top=5)
    assert list(zip(t.moment, t.kind, t.growth, t.new, strict=True)) == [
        ("pay", "waiting", 100.0, False), ("pay", "error_shown", 90.0, True)]  # login shrank
    assert list(grown(now, before, top=1).kind) == ["waiting"]
    assert grown(now.iloc[:0], before.iloc[:0], top=5).empty
