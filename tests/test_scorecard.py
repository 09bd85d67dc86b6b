"""Scorecards and daily series: counts, rates, Wilson intervals, times, breakdowns."""

from __future__ import annotations

import math

import pytest

from microjourney.analysis import wilson_interval
from microjourney.errors import QueryError

from .helpers import ev
from .test_attempts import SPEC


def test_wilson_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, method 3: 81/263 -> 0.2553 to 0.3662.
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    # Same paper: 15/148 -> 0.0624 to 0.1605; 0/20 -> 0 to 0.1611; 1/29 -> 0.0061 to 0.1718.
    assert [round(x, 4) for x in wilson_interval(15, 148)] == [0.0624, 0.1605]
    assert [round(x, 4) for x in wilson_interval(0, 20)] == [0.0, 0.1611]
    assert [round(x, 4) for x in wilson_interval(1, 29)] == [0.0061, 0.1718]
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 4)


def _people(n_done: int, n_failed: int, channel: str = "web", day: str = "01") -> list[dict]:
    """Completed attempts taking 10, 20, 30... s, and failed ones taking 5 s."""
    ends = [("d", i, "ok", 10 * (i + 1)) for i in range(n_done)]
    ends += [("f", i, "failed", 5) for i in range(n_failed)]
    rows = []
    for kind, i, outcome, secs in ends:
        who = f"{channel}{day}{kind}{i}"
        rows += [{**ev("10:00:00", "open", who, channel=channel),
                  "timestamp": f"2024-01-{day}T10:00:00+00:00"},
                 {**ev("10:00:00", outcome, who, channel=channel),
                  "timestamp": f"2024-01-{day}T10:00:{secs:02d}+00:00"}]
    return rows


def test_scorecard_numbers(make_ws):
    # 5 completed in 10, 20, 30, 40, 50 s (SLA 60 s) and 3 failed.
    ws = make_ws(SPEC, _people(5, 3))
    r = ws.scorecard().to_pandas().iloc[0]
    assert (r.moment, r.journey, r.attempts, r.persons) == ("pay", "payment", 8, 8)
    assert (r.completed, r.failed, r.abandoned, r.escalated, r.in_progress) == (5, 3, 0, 0, 0)
    assert r.completion_rate == pytest.approx(5 / 8)
    assert list(r.completion_ci) == pytest.approx(list(wilson_interval(5, 8)))
    assert r.duration_median_s == 30.0
    assert r.duration_p90_s == pytest.approx(46.0)  # linear interpolation: 40 + 0.6 * 10
    assert r.sla_met_rate == 1.0 and r.sla_s == 60.0
    assert r.failure_rate == pytest.approx(3 / 8)


def test_breakdown_by_channel_and_property(make_ws):
    rows = _people(3, 1, "web") + _people(1, 3, "app")
    rows[0]["context"] = {"device": "mobile"}
    ws = make_ws(SPEC, rows)
    by = ws.scorecard(by="channel").to_pandas().set_index("channel")
    assert by.loc["web", "completion_rate"] == 0.75 and by.loc["app", "completion_rate"] == 0.25
    dev = ws.scorecard(by="device").to_pandas().set_index("device")
    assert dev.loc["mobile", "attempts"] == 1 and dev.loc["(none)", "attempts"] == 7


def test_since_until_and_daily(make_ws):
    ws = make_ws(SPEC, _people(2, 2, day="01") + _people(3, 0, day="02"))
    assert ws.scorecard(since="2024-01-02").to_pandas().iloc[0].attempts == 3
    assert ws.scorecard(until="2024-01-02").to_pandas().iloc[0].attempts == 4
    d = ws.daily("pay").to_pandas()
    assert list(d.day) == ["2024-01-01", "2024-01-02"]
    assert list(d.attempts) == [4, 3] and list(d.completion_rate) == [0.5, 1.0]
    with pytest.raises(QueryError, match="not a date"):
        ws.scorecard(since="last week")


def test_moment_without_attempts_is_listed(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "noise")])
    r = ws.scorecard().to_pandas().iloc[0]
    assert r.attempts == 0 and math.isnan(r.completion_rate)


def test_on_target(make_ws):
    spec = SPEC + "        target: {metric: completion_rate, value: 0.6}\n"
    ws = make_ws(spec, _people(5, 3))
    r = ws.scorecard().to_pandas().iloc[0]
    assert (r.target_metric, r.target_value, r.on_target) == ("completion_rate", 0.6, True)


def test_unknown_moment_and_options(make_ws):
    ws = make_ws(SPEC, [])
    with pytest.raises(QueryError, match="no moment 'nope'; moments: pay"):
        ws.funnel("nope")
    with pytest.raises(QueryError, match="unknown funnel order 'sideways'"):
        ws.funnel("pay", order="sideways")
    with pytest.raises(QueryError, match="not a duration"):
        ws.funnel("pay", window="soon")


def test_workspace_without_moments_says_so(make_ws):
    ws = make_ws("journeys: []\n", [ev("10:00:00", "a")])
    with pytest.raises(QueryError, match="no moments defined yet: declare journeys and moments in"):
        ws.scorecard()


def test_attempts_short_of_target_is_the_gap_times_the_rates_denominator():
    from microjourney.analysis.scorecard import attempts_short
    from microjourney.spec.model import Target

    def t(metric: str, value: float) -> Target:
        return Target(metric=metric, value=value)

    # 80% completed of 1,000 finished, against 92%: 120 more would have met it.
    assert attempts_short({"completion_rate": 0.80, "finished": 1000}, t("completion_rate", 0.92)) == 120
    assert attempts_short({"completion_rate": 0.95, "finished": 1000}, t("completion_rate", 0.92)) == 0
    # A ceiling: 15% escalated of 200 against at most 10%: 10 too many.
    assert attempts_short({"escalation_rate": 0.15, "finished": 200}, t("escalation_rate", 0.10)) == 10
    # The SLA rate is over the completed attempts with an SLA, not the finished ones.
    assert attempts_short({"sla_met_rate": 0.5, "sla_known": 30, "finished": 99},
                          t("sla_met_rate", 0.9)) == 12
    assert attempts_short({"duration_median_s": 50.0}, t("duration_median_s", 30)) is None  # not attempts
    assert attempts_short({"completion_rate": float("nan"), "finished": 0}, t("completion_rate", 0.9)) is None
    assert attempts_short({"completion_rate": 0.5, "finished": 10}, None) is None


def test_persons_are_those_with_an_attempt_through_incremental_refreshes(make_ws, tmp_path):
    """The plain scorecard counts the persons from what the refresh keeps (tag_last), the
    filtered one over the attempts: the same persons, whatever batches brought the events.
    A person whose only row is a step before any start has no attempt until they start."""
    from .helpers import write_events

    card = {"properties": {"valid": True}}
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:00:30", "ok", "a"),
                        ev("10:00:00", "card", "b", **card)], name="persons")

    def persons(**filters: object) -> int:
        t = ws.analysis("scorecard", **filters).table()
        return int(t.loc[t["moment"] == "pay", "persons"].iloc[0])

    assert ws.refresh().mode == "full"
    assert persons() == persons(channel="web") == 1  # b: a step, no attempt
    # b starts; a's new row, a step after the outcome, is in no attempt: a still has one.
    ws.ingest(write_events(tmp_path / "more.csv", [ev("10:01:00", "open", "b"),
                                                    ev("10:02:00", "card", "a", **card)]))
    assert ws.refresh().mode == "incremental"
    assert persons() == persons(channel="web") == 2
    assert ws.con.execute("SELECT count(*) FROM attempts WHERE moment = 'pay'"
                          ).fetchall() == [(2,)]
