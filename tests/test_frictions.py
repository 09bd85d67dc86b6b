"""Friction detectors, worked by hand on small streams, and the friction summaries."""

from __future__ import annotations

import pandas as pd
import pytest

from microjourney.analysis.frictions import ranked
from microjourney.analysis.stats import difference_interval
from microjourney.errors import QueryError, SpecError
from microjourney.spec import KINDS, parse_workspace

from .helpers import ev

PAY = """\
journeys:
  - name: payment
    moments:
      - name: pay
        start: {event: open}
        steps:
          - {event: loaded, sla: 3s}
          - {event: card, where: {valid: true}}
        complete: {event: ok}
        fail: {event: failed}
        timeout: 10m
"""

CALL = """\
journeys:
  - name: support
    moments:
      - name: call
        start: {event: call_started, channel: voice}
        steps:
          - {event: agent_answered}
        complete: {event: call_resolved}
        fail: {event: call_dropped}
        timeout: 1h
frictions:
  uncertainty: {events: [status_checked], within: 60s}
  repeated_auth: {events: [caller_identified]}
  redundant_input: {events: [caller_identified]}
"""


def found(ws, kind=None):
    df = ws.frictions(kind=kind).to_pandas()
    return sorted((r.kind, r.step, round(r.seconds_lost, 3)) for r in df.itertuples())


def click(t, x, y, who="a", **props):
    return ev(t, "click", who, properties={"x": x, "y": y, "selector": "#pay", **props})


def test_rage_and_dead_clicks_and_step_sla(make_ws):
    ws = make_ws(PAY, [
        ev("10:00:00", "open", "a"),
        # A burst of four clicks, each within 1 s and 30 px of the one before.
        click("10:00:01.000", 100, 100), click("10:00:01.400", 105, 102),
        click("10:00:01.900", 108, 100), click("10:00:02.500", 110, 100),
        ev("10:00:06", "loaded", "a"),  # 6 s after open; its sla is 3 s
        click("10:00:10.000", 100, 100), click("10:00:10.500", 300, 300),  # too far apart
        ev("10:00:20", "card", "a", properties={"valid": True}),
        ev("10:00:30", "ok", "a"),
    ])
    assert found(ws) == [
        # The last click of the burst and the far click wait 3.5 s and 9.5 s for anything.
        ("dead_click", 0, 3.5), ("dead_click", 1, 9.5),
        # From the burst's first click to the next event after it.
        ("rage_click", 0, 5.0),
        ("waiting", 1, 3.0),
    ]
    rage = ws.frictions(kind="rage_click").to_pandas().iloc[0]
    assert len(rage.evidence) == 4 and rage.version == 1 and rage.moment == "pay"


def test_input_errors_detours_and_repeats(make_ws):
    b = "b"
    ws = make_ws(PAY, [
        ev("10:00:00", "open", b),
        ev("10:00:05", "loaded", b),                      # 5 s against a 3 s sla: 2 s lost
        ev("10:00:08", "logged_in", b),
        ev("10:00:12", "field_edited", b, properties={"field": "email", "edits": 1, "dwell_ms": 4000}),
        ev("10:00:25", "help_opened", b, properties={"topic": "cvc"}),   # 5 s until the next event
        ev("10:00:30", "field_edited", b,
           properties={"field": "card_number", "edits": 7, "dwell_ms": 40000}),  # 40 s - 10 s
        ev("10:00:31", "card", b, properties={"valid": False}),  # invalid: 10 s to the valid card
        ev("10:00:31.500", "error_shown", b, properties={"message": "Check the card number"}),
        ev("10:00:40", "field_edited", b,  # the same field at the same step: not redundant
           properties={"field": "card_number", "edits": 1, "dwell_ms": 3000}),
        ev("10:00:41", "card", b, properties={"valid": True}),
        ev("10:00:43", "logged_in", b),                   # signed in again: 2 s after the card
        ev("10:00:45", "field_edited", b, properties={"field": "email", "edits": 1, "dwell_ms": 5000}),
        ev("10:00:50", "page_viewed", b, properties={"page": "payment"}),
        ev("10:00:55", "page_viewed", b, properties={"page": "basket"}),
        ev("10:01:00", "page_viewed", b, properties={"page": "payment"}),  # back after 5 s
        ev("10:01:10", "loaded", b),                      # back to step 1, 29 s after the card
        ev("10:01:20", "ok", b),
    ])
    assert found(ws) == [
        ("cognitive_load", 1, 5.0), ("cognitive_load", 1, 30.0),
        ("error_shown", 1, 9.5), ("error_shown", 1, 10.0),
        ("redundant_input", 2, 5.0),
        ("repeated_attempt", 1, 65.0),
        ("repeated_auth", 2, 2.0),
        ("u_turn", 1, 29.0), ("u_turn", 2, 5.0),
        ("waiting", 1, 2.0),
    ]


def test_assisted_channels_transfer_hold_uncertainty(make_ws):
    c, d = "c", "d"
    v = {"channel": "voice"}
    ws = make_ws(CALL, [
        ev("10:00:00", "call_started", c, **v),
        ev("10:00:30", "caller_identified", c, **v),
        ev("10:01:00", "status_checked", c), ev("10:01:30", "status_checked", c),  # only two
        ev("10:03:00", "agent_answered", c, properties={"hold_seconds": 100}, **v),
        ev("10:05:00", "call_transferred", c, **v),
        ev("10:06:00", "agent_answered", c, properties={"hold_seconds": 20}, **v),
        ev("10:06:30", "caller_identified", c, **v),
        ev("10:07:00", "status_checked", c), ev("10:07:10", "status_checked", c),
        ev("10:07:20", "status_checked", c),
        ev("10:10:00", "call_resolved", c, **v),
        ev("11:00:00", "call_started", d, **v),
        ev("11:05:00", "call_dropped", d, **v),
    ])
    assert found(ws) == [
        ("redundant_input", 1, 30.0),      # security questions again after the transfer
        ("repeated_attempt", 1, 180.0),    # answered twice
        ("repeated_auth", 1, 30.0),
        ("transfer_hold", 0, 60.0),        # c answered after 3 min: 1 min over 2 min
        ("transfer_hold", 0, 180.0),       # d never answered: 5 min - 2 min
        ("transfer_hold", 1, 60.0),        # the transfer: 1 min until the next agent
        ("transfer_hold", 1, 70.0),        # 100 s hold - 30 s allowance
        ("uncertainty", 1, 20.0),
    ]


def test_settings_disable_and_tune(make_ws):
    spec = PAY + "frictions:\n  dead_click: {enabled: false}\n  rage_click: {clicks: 5}\n"
    ws = make_ws(spec, [
        ev("10:00:00", "open", "a"),
        click("10:00:01.000", 100, 100), click("10:00:01.400", 105, 102),
        click("10:00:01.900", 108, 100), click("10:00:02.500", 110, 100),
        ev("10:00:02.600", "loaded", "a"), ev("10:00:09", "ok", "a"),
    ])
    assert found(ws) == []
    kinds = [d["kind"] for d in ws.friction_detectors()]
    assert kinds == list(KINDS)
    dead = next(d for d in ws.friction_detectors() if d["kind"] == "dead_click")
    assert dead["enabled"] is False and dead["settings"]["within"] == 2.5


def test_unknown_settings_point_at_the_line():
    with pytest.raises(SpecError) as err:
        parse_workspace("frictions:\n  rage_click: {clickz: 3}\n  sulking: {}\n")
    text = str(err.value)
    assert "microjourney.yaml:2:16: unknown key 'clickz'" in text
    assert "unknown key 'sulking'" in text and "waiting" in text


def test_unknown_kind_is_a_query_error(make_ws):
    ws = make_ws(PAY, [ev("10:00:00", "open", "a")])
    with pytest.raises(QueryError, match="unknown friction kind 'sulk'"):
        ws.frictions(kind="sulk")


def test_summary_score_and_impact(make_ws):
    rows = []
    # Four attempts: two with an error (one completes), two without (both complete).
    for i, (error, outcome) in enumerate([(True, "ok"), (True, "failed"), (False, "ok"),
                                          (False, "ok")]):
        who = f"p{i}"
        rows += [ev("10:00:00", "open", who), ev("10:00:02", "loaded", who)]
        if error:
            rows.append(ev("10:00:04", "error_shown", who))
        rows.append(ev("10:00:10", outcome, who))
    ws = make_ws(PAY, rows)
    summary, kinds = (t.to_pandas() for t in ws.friction_summary("pay"))
    s = summary.iloc[0]
    # Errors cost 6 s each (4 s -> the outcome at 10 s); attempts last 10 s each.
    assert (s.attempts, s.affected, s.friction_seconds) == (4, 2, 12.0)
    assert s.seconds_per_attempt == 3.0 and s.friction_score == pytest.approx(30.0)
    k = kinds.set_index("kind").loc["error_shown"]
    assert (k.frictions, k.attempts, k["rank"]) == (2, 2, 1)
    assert (k.completion_with, k.completion_without) == (0.5, 1.0)
    assert k.completion_difference == -0.5
    assert k.difference_ci == pytest.approx(list(difference_interval(1, 2, 2, 2)))


def test_newcombe_difference_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10.
    published = {(56, 70, 48, 80): (0.0524, 0.3339), (9, 10, 3, 10): (0.1705, 0.8090),
                 (5, 56, 0, 29): (-0.0381, 0.1926), (0, 10, 0, 20): (-0.1611, 0.2775),
                 (10, 10, 0, 20): (0.6791, 1.0)}
    for counts, expected in published.items():
        assert [round(x, 4) for x in difference_interval(*counts)] == list(expected)


def test_ranking_uses_attempts_that_reached_the_step():
    spec = parse_workspace(PAY)
    kinds = pd.DataFrame([
        # 10 attempts met waiting (8 finished, 6 completed); 40 finished reached its step.
        {"moment": "pay", "kind": "waiting", "frictions": 12, "attempts": 10, "seconds_lost": 50.0,
         "finished": 8, "completed": 6, "first_step": 1, "reached_finished": 40,
         "reached_completed": 30},
        {"moment": "pay", "kind": "error_shown", "frictions": 3, "attempts": 3, "seconds_lost": 90.0,
         "finished": 3, "completed": 0, "first_step": 1, "reached_finished": 40,
         "reached_completed": 30},
    ])
    moments = pd.DataFrame([{"moment": "pay", "attempts": 100, "finished": 90, "completed": 60,
                             "attempt_seconds": 1000.0, "affected": 12, "friction_seconds": 140.0}])
    df = ranked(kinds, moments, spec).set_index("kind")
    assert list(df.index) == ["error_shown", "waiting"]  # by seconds lost
    w = df.loc["waiting"]
    assert w.completion_with == 6 / 8 and w.completion_without == 24 / 32
    assert w.share_of_attempts == 0.1 and w.seconds_per_affected == 5.0


def test_two_factors_are_not_a_repeated_sign_in(make_ws):
    ws = make_ws(PAY, [
        ev("10:00:00", "open", "a"), ev("10:00:01", "logged_in", "a"),
        ev("10:00:02", "otp_verified", "a"), ev("10:00:03", "loaded", "a"), ev("10:00:04", "ok", "a"),
    ])
    assert found(ws, "repeated_auth") == []


NESTED = PAY + """\
  - name: onboarding
    moments:
      - name: open_account
        start: {event: signup_started}
        complete: {event: account_ready}
        timeout: 7d
"""


def burst(t0, who, ids):
    """Four clicks 0.3 s apart on one spot, listed latest first (so ingest order runs
    against time order)."""
    rows = [ev(f"{t0}.{300 * k:03d}", "click", who, event_id=i,
               properties={"x": 100 + k, "y": 100, "selector": "#pay"}) for k, i in enumerate(ids)]
    return rows[::-1]


def test_events_go_to_the_innermost_attempt_and_evidence_keeps_time_order(make_ws):
    ws = make_ws(NESTED, [
        ev("09:00:00", "signup_started", "a"),
        ev("10:00:00", "open", "a"),
        *burst("10:00:01", "a", ["z1", "y2", "x3", "w4"]),  # inside both spans: the payment's
        ev("10:00:06", "loaded", "a"),
        ev("10:00:20", "card", "a", properties={"valid": True}),
        ev("10:00:30", "ok", "a"),
        *burst("10:05:00", "a", ["q1", "p2", "o3", "n4"]),  # after the payment: the account's
        ev("11:00:00", "account_ready", "a"),
        ev("10:00:00", "open", "b"),
        *burst("10:00:02", "b", ["b1", "b2", "b3", "b4"]),  # one span alone
        ev("10:00:09", "ok", "b"),
    ])
    rage = ws.frictions(kind="rage_click").to_pandas().sort_values(["person", "at_ms"])
    assert [(r.person, r.moment, list(r.evidence)) for r in rage.itertuples()] == [
        ("a", "pay", ["z1", "y2", "x3", "w4"]),
        ("a", "open_account", ["q1", "p2", "o3", "n4"]),
        ("b", "pay", ["b1", "b2", "b3", "b4"]),
    ]
    # The stored summary counts them per moment.
    _, kinds = ws.friction_summary("open_account")
    k = kinds.to_pandas().set_index("kind")
    assert k.loc["rage_click", "frictions"] == 1 and k.loc["rage_click", "attempts"] == 1
