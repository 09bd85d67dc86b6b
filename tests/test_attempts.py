"""Cutting a moment's events into attempts: restarts, timeouts, outcomes, retries."""

from __future__ import annotations

from .helpers import ev

SPEC = """\
journeys:
  - name: payment
    moments:
      - name: pay
        start: {event: open}
        steps:
          - {event: loaded}
          - {event: card, where: {valid: true}}
        complete: {event: ok}
        fail: {event: failed}
        escalate: {event: contact, channel: [chat, voice]}
        timeout: 10m
        sla: 60s
"""


def attempts(ws):
    df = ws.attempts("pay").to_pandas().sort_values(["person", "start_ts"])
    return [(r.person, r.outcome, r.duration_s, r.furthest_step, r.retries)
            for r in df.itertuples()]


def test_outcomes_and_durations(make_ws):
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a"), ev("10:00:05", "loaded", "a"),
        ev("10:00:20", "card", "a", properties={"valid": True}), ev("10:00:30", "ok", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:09", "failed", "b"),
        ev("10:00:00", "open", "c"), ev("10:01:00", "contact", "c", channel="chat"),
        ev("10:00:00", "open", "d"), ev("10:00:30", "loaded", "d"),
        ev("10:00:00", "open", "e"), ev("10:01:00", "contact", "e", channel="email"),
        ev("11:00:00", "noise", "z"),
    ])
    assert attempts(ws) == [
        ("a", "completed", 30.0, 3, 0),
        ("b", "failed", 9.0, 0, 0),
        ("c", "escalated", 60.0, 0, 0),
        ("d", "abandoned", 30.0, 1, 0),  # silent for 10m+ before the data ends at 11:00
        ("e", "abandoned", 0.0, 0, 0),  # an e-mail contact is not in the escalate channels
    ]


def test_in_progress_at_end_of_data(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:05:00", "loaded", "a"),
                        ev("10:09:00", "noise", "z")])
    assert attempts(ws) == [("a", "in_progress", 300.0, 1, 0)]


def test_timeout_cuts_and_restart_is_a_retry(make_ws):
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a"), ev("10:00:10", "loaded", "a"),
        ev("10:00:20", "open", "a"),  # re-opened inside the open attempt: a retry of step 0
        ev("10:00:30", "loaded", "a"),  # and step 1 again
        ev("10:20:00", "open", "a"),  # 19.5 min of silence > 10m: the first attempt was abandoned
        ev("10:20:10", "ok", "a"),
        ev("10:20:20", "ok", "a"),  # after the outcome, outside any attempt
        ev("10:30:00", "loaded", "a"),  # a step with no start: not an attempt
        ev("10:45:00", "noise", "z"),
    ])
    assert attempts(ws) == [("a", "abandoned", 30.0, 1, 2), ("a", "completed", 10.0, 3, 0)]


def test_gap_exactly_at_timeout_continues(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:10:00", "ok", "a")])
    assert attempts(ws) == [("a", "completed", 600.0, 3, 0)]


def test_new_start_after_outcome_is_new_attempt(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:00:05", "failed", "a"),
                        ev("10:00:10", "open", "a"), ev("10:00:15", "ok", "a")])
    assert attempts(ws) == [("a", "failed", 5.0, 0, 0), ("a", "completed", 5.0, 3, 0)]


def test_anonymous_events_join_the_user_after_login(make_ws):
    ws = make_ws(SPEC, [
        {**ev("10:00:00", "open", "anon"), "user_id": "", "anonymous_id": "a1"},
        {**ev("10:00:05", "login", "u1"), "anonymous_id": "a1"},
        ev("10:00:10", "ok", "u1"),
    ])
    assert attempts(ws) == [("u1", "completed", 10.0, 3, 0)]


def test_channels_and_start_properties(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a", channel="app", context={"device": "mobile"}),
                        ev("10:00:30", "contact", "a", channel="voice")])
    row = ws.attempts("pay").to_pandas().iloc[0]
    assert (row.channel, row.channels, row.outcome) == ("app", 2, "escalated")
    assert row.context == {"device": "mobile"}


def test_sla_met_only_for_completed(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:00:50", "ok", "a"),
                        ev("10:00:00", "open", "b"), ev("10:02:00", "ok", "b"),
                        ev("10:00:00", "open", "c"), ev("10:00:10", "failed", "c")])
    df = ws.attempts("pay").to_pandas().set_index("person")
    assert bool(df.loc["a", "sla_met"]) is True and bool(df.loc["b", "sla_met"]) is False
    assert df.loc["c", "sla_met"] is None or df.loc["c", "sla_met"] != df.loc["c", "sla_met"]


def test_attempts_refresh_when_events_or_spec_change(make_ws, tmp_path):
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:00:05", "ok", "a")])
    assert ws.attempts().count().execute() == 1
    assert not ws.refresh() and ws.refresh().mode == "none"  # nothing changed
    from .helpers import write_events

    ws.ingest(write_events(tmp_path / "more.csv", [ev("10:01:00", "open", "b")]))
    assert ws.attempts().count().execute() == 2
    ws.spec_path.write_text(SPEC.replace("start: {event: open}", "start: {event: loaded}"))
    ws.reload()
    assert ws.attempts().count().execute() == 0


def test_all_moments_in_one_pass(make_ws):
    two = SPEC + """\
      - name: reset
        start: {event: reset_requested}
        complete: {event: ok}
        timeout: 1h
"""
    ws = make_ws(two, [ev("10:00:00", "open", "a"), ev("10:00:01", "reset_requested", "a"),
                       ev("10:00:05", "ok", "a")])
    df = ws.attempts().to_pandas()
    # One `ok` event completes both moments: an event may play a role in several moments.
    assert sorted(zip(df.moment, df.outcome, strict=True)) == [("pay", "completed"),
                                                              ("reset", "completed")]
