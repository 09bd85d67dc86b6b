"""Week on week: the windows, the counts, the interval and test against published and
hand-worked values, Holm across moments, and a seeded simulation of false alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microjourney.analysis.week_on_week import compare, headline

SPEC = """\
journeys:
  - name: j
    moments:
      - {name: pay, start: {event: open}, complete: {event: ok}, fail: {event: failed}, timeout: 10m}
      - {name: chat, start: {event: chat_opened}, complete: {event: resolved}, timeout: 10m}
"""


def _counts(**columns: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"moment": [f"m{i}" for i in range(len(next(iter(columns.values()))))],
                         **columns})


def test_the_interval_and_test_match_published_and_hand_worked_values():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 − 48/80 = 0.2,
    # hybrid score interval (method 10) 0.0524 to 0.3339.
    t = compare(_counts(finished_before=[80], completed_before=[48], finished_now=[70], completed_now=[56]))
    assert t.change[0] == pytest.approx(0.2)
    assert t.change_ci[0] == pytest.approx([0.0524, 0.3339], abs=5e-5)
    # By hand, pooled z: 45/50 against 30/50, p = 0.75, se = sqrt(.75 × .25 × (1/50 + 1/50))
    # = 0.0866, z = 0.30 / 0.0866 = 3.464, two-sided p = 0.000532.
    t = compare(_counts(finished_before=[50], completed_before=[30], finished_now=[50], completed_now=[45]))
    assert t.p_value[0] == pytest.approx(0.000532, abs=1e-6)
    assert t.moved[0] == "up"


def test_holm_gives_the_published_values_and_keeps_the_order():
    from microjourney.analysis.stats import holm

    # GrowthBook's gbstats tests: p = [.01, .04, .03, .005, .55, .6] adjust, in sorted order,
    # to [.03, .05, .12, .12, 1, 1].
    assert sorted(holm([.01, .04, .03, .005, .55, .6])) == pytest.approx([.03, .05, .12, .12, 1, 1])
    rng = np.random.default_rng(7)
    for m in (1, 2, 5, 12, 40):
        p = list(rng.uniform(0, 0.2, size=m) ** 2)
        adjusted = holm(p)
        assert all(raw <= adj <= 1 for raw, adj in zip(p, adjusted, strict=True))
        by_raw = [adjusted[i] for i in np.argsort(p)]
        assert by_raw == sorted(by_raw)  # the order of the raw p-values is kept
        assert min(adjusted) == pytest.approx(min(1, m * min(p)))


def test_holm_across_moments_ranks_moves_first_and_flags_none_by_chance():
    # Three moments: a big fall, a small rise beyond chance alone, nothing at all.
    t = compare(_counts(finished_before=[400, 400, 400], completed_before=[360, 200, 300],
                        finished_now=[400, 400, 400], completed_now=[300, 230, 300]))
    p = sorted(t.p_value)
    # Holm: the smallest × 3, the next × 2 (never below the one before), the last × 1.
    expected = [min(1, 3 * p[0]), min(1, max(3 * p[0], 2 * p[1])), 1.0]
    assert sorted(t.p_adjusted) == pytest.approx(expected)
    assert list(t.moment) == ["m0", "m1", "m2"]  # the move of 15 points first
    assert list(t.moved) == ["down", None, None]  # 7.5 points: p 0.035 raw, 0.07 adjusted
    assert t.p_value[1] < 0.05 < t.p_adjusted[1]
    assert headline(t.to_dict("records"), 7) == (
        "m0: completion down 15.0 points week on week (90.0% → 75.0%; 400 and 400 finished attempts).")
    calm = compare(_counts(finished_before=[100, 0], completed_before=[80, 0], finished_now=[100, 5],
                           completed_now=[82, 5]))
    assert calm.moved.isna().all() and np.isnan(calm.p_value[1]) and calm.change_ci[1] is None
    assert headline(calm.to_dict("records"), 14) == (
        "No moment's completion moved beyond chance on the 14 days before; the clearest change: "
        "m0 +2.0 points.")


def test_under_no_change_a_week_rarely_raises_a_false_alarm():
    """Seeded: 400 weeks of 12 moments whose completion never changes. Holm keeps the
    chance that a week shows any move at or under 5% (within Monte Carlo error); flagging
    each moment at p < 0.05 alone would alarm in about 46% of weeks."""
    rng = np.random.default_rng(20261206)
    weeks, moments = 400, 12
    rates = rng.uniform(0.6, 0.95, size=moments)
    sizes = rng.integers(80, 2000, size=moments)
    alarms = raw_alarms = 0
    for _ in range(weeks):
        t = compare(_counts(finished_before=list(sizes), completed_before=list(rng.binomial(sizes, rates)),
                            finished_now=list(sizes), completed_now=list(rng.binomial(sizes, rates))))
        alarms += bool(t.moved.notna().any())
        raw_alarms += bool((t.p_value < 0.05).any())
    se = (0.05 * 0.95 / weeks) ** 0.5
    assert alarms / weeks <= 0.05 + 2.5 * se, alarms
    assert raw_alarms / weeks > 0.3  # the unadjusted test would cry wolf


def test_the_windows_end_at_the_data_or_at_until(make_ws):
    from .helpers import ev

    def day(d: int, t: str) -> str:
        return f"2024-01-{d:02d}T{t}+00:00"

    rows = []
    # pay: 10 attempts on Jan 2-3 (all complete), 10 on Jan 9-10 (4 complete, 6 fail); the
    # data ends on Jan 10, so "now" is Jan 3 23:59.. to Jan 10 and "before" the 7 days before.
    for i in range(10):
        rows += [ev("10:00:00", "open", f"a{i}"), ev("10:01:00", "ok", f"a{i}")]
        rows[-2]["timestamp"], rows[-1]["timestamp"] = day(2, "10:00:00"), day(2, "10:01:00")
    for i in range(10):
        rows += [ev("10:00:00", "open", f"b{i}"), ev("10:01:00", "ok" if i < 4 else "failed", f"b{i}")]
        rows[-2]["timestamp"], rows[-1]["timestamp"] = day(10, "10:00:00"), day(10, "10:01:00")
    ws = make_ws(SPEC, rows)
    r = ws.analysis("week-on-week").to_dict()
    pay = next(x for x in r["tables"]["moments"] if x["moment"] == "pay")
    assert (pay["finished_before"], pay["finished_now"]) == (10, 10)
    assert (pay["completion_before"], pay["completion_now"]) == (1.0, 0.4)
    assert r["meta"]["windows"]["now"][1].startswith("2024-01-10T10:01:00.001")
    chat = next(x for x in r["tables"]["moments"] if x["moment"] == "chat")
    assert chat["finished_now"] == 0 and chat["change_ci"] is None
    assert {w["code"] for w in r["warnings"]} >= {"few-units", "no-units"}
    # Ending the windows on Jan 9: nothing of Jan 10 counts, Jan 2 is "now".
    earlier = ws.analysis("week-on-week", until="2024-01-09").to_dict()
    pay = next(x for x in earlier["tables"]["moments"] if x["moment"] == "pay")
    assert (pay["finished_before"], pay["finished_now"]) == (0, 10)
