"""Escalation after self-service, repeat contact, channel hops and self-service rates."""

from __future__ import annotations

from .helpers import ev

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


def at(d: int, t: str, event: str, who: str, **extra) -> dict:
    row = ev(t, event, who, **extra)
    row["timestamp"] = f"2024-01-{d:02d}T{t}+00:00"
    return row


ROWS = [
    # f: fails on the web, chats 2 h later (escalated), and again 3 days later (repeat).
    at(1, "10:00:00", "open", "f"), at(1, "10:00:10", "failed", "f"),
    at(1, "12:00:00", "contact", "f", channel="chat"), at(4, "09:00:00", "contact", "f", channel="voice"),
    # g: fails, calls two days later: outside the 24 h window.
    at(1, "10:00:00", "open", "g"), at(1, "10:00:10", "failed", "g"),
    at(3, "10:00:00", "contact", "g", channel="voice"),
    # h: completes, signed in.
    at(1, "10:00:00", "open", "h"), at(1, "10:00:10", "ok", "h"),
    # j: escalates inside the attempt (web -> chat), contacts again 10 days later (no repeat).
    at(1, "10:00:00", "open", "j"), at(1, "10:01:00", "contact", "j", channel="chat"),
    at(11, "10:00:00", "contact", "j", channel="chat"),
]
ANONYMOUS = [  # i: completes without signing in
    {"timestamp": "2024-01-01T10:00:00+00:00", "event": "open", "anonymous_id": "i", "channel": "app"},
    {"timestamp": "2024-01-01T10:00:10+00:00", "event": "ok", "anonymous_id": "i", "channel": "app"},
]


def test_escalation_repeat_contact_and_hops(make_ws):
    ws = make_ws(SPEC, ROWS + ANONYMOUS)
    a = ws.attempts("pay").to_pandas().set_index("person")
    assert a.loc["f", "outcome"] == "failed" and bool(a.loc["f", "escalated"])
    assert a.loc["f", "escalation_channel"] == "chat"
    assert a.loc["f", "escalation_delay_s"] == 2 * 3600 - 10
    assert a.loc["f", "channel_hops"] == 1 and bool(a.loc["f", "repeat_contact"])
    assert not a.loc["g", "escalated"] and not a.loc["g", "contact"]
    assert a.loc["j", "outcome"] == "escalated" and a.loc["j", "escalation_channel"] == "chat"
    assert a.loc["j", "channel_hops"] == 1 and not a.loc["j", "repeat_contact"]
    assert a["repeat_contact"].isna()[["g", "h", "i"]].all()  # no contact: unknown, not False
    assert bool(a.loc["h", "authenticated"]) and not a.loc["i", "authenticated"]
    assert a["self_service"].all()

    s = ws.scorecard().to_pandas().iloc[0]
    assert (s.attempts, s.escalated, s.escalations) == (5, 1, 2)
    assert s.escalation_rate == 2 / 5
    assert (s.contacts, s.repeat_contacts, s.repeat_contact_rate) == (2, 1, 0.5)
    assert s.self_service_rate == 2 / 5                 # h and i
    assert s.authenticated_self_service_rate == 1 / 5   # h only


def test_windows_are_per_moment(make_ws):
    spec = SPEC + "        escalation_window: 3d\n        repeat_contact_window: 12d\n"
    ws = make_ws(spec, ROWS)
    a = ws.attempts("pay").to_pandas().set_index("person")
    assert bool(a.loc["g", "escalated"]) and a.loc["g", "escalation_channel"] == "voice"
    assert bool(a.loc["j", "repeat_contact"])


def test_a_call_is_a_contact_and_not_self_service(make_ws):
    spec = SPEC.replace("{event: open}", "{event: open, channel: [web, voice]}")
    ws = make_ws(spec, [
        at(1, "10:00:00", "open", "k", channel="voice"), at(1, "10:05:00", "ok", "k", channel="voice"),
        at(2, "10:00:00", "open", "k", channel="voice"), at(2, "10:05:00", "ok", "k", channel="voice"),
    ])
    a = ws.attempts("pay").to_pandas().sort_values("start_ts")
    assert list(a["contact"]) == [True, True] and not a["self_service"].any()
    assert list(a["repeat_contact"]) == [True, False]
    s = ws.scorecard().to_pandas().iloc[0]
    assert s.self_service_rate == 0 and s.repeat_contact_rate == 0.5
