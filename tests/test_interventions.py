"""Interventions served by ``GET /v1/decide`` on a real server on 127.0.0.1
(docs/interventions.md): signals seen live as events arrive, caps, quiet hours, holdout,
consent, closed attempts, hostile requests, bounded memory, and decisions kept across a
restart."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

import microjourney as mj
from microjourney.server.decide import share
from microjourney.server.live import Live
from microjourney.spec.load import parse_workspace

from .live_server import LiveServer
from .test_decide import make

NOW = datetime.now(UTC)
QUIET = f"{(NOW - timedelta(hours=1)):%H:%M}-{(NOW + timedelta(hours=1)):%H:%M}"

SPEC = f"""\
server: {{rate_limit: 5000, burst: 5000}}
journeys:
  - name: shop
    moments:
      - name: pay
        start: {{event: pay_opened}}
        steps: [{{event: card_entered}}]
        complete: {{event: paid}}
        fail: {{event: pay_failed}}
      - {{name: track, start: {{event: track_opened}}, complete: {{event: tracked}}}}
      - {{name: calm, start: {{event: calm_opened}}, complete: {{event: calm_done}},
         fail: {{event: calm_failed}}}}
      - {{name: busy, start: {{event: busy_opened}}, complete: {{event: busy_done}},
         fail: {{event: busy_failed}}}}
      - {{name: held, start: {{event: held_opened}}, complete: {{event: held_done}},
         fail: {{event: held_failed}}}}
      - {{name: paged, start: {{event: page_viewed, where: {{page: /pay}}}},
         complete: {{event: paged_done}}}}
interventions:
  - name: pay_help
    moment: pay
    when: {{signal: failure, count: 2}}
    offer: help
    text: Card declined twice? Check its expiry date, or pay by bank transfer.
    languages: {{de: Karte zweimal abgelehnt?}}
  - name: rage_chat
    moment: pay
    when: {{signal: rage_click}}
    offer: chat
    text: Need a hand?
  - name: track_callback
    moment: track
    when: {{signal: uncertainty, events: [status_checked], count: 3}}
    offer: callback
    text: Shall we call you about your parcel?
    cap: {{person: 5}}
  - name: calm_help
    moment: calm
    when: {{signal: failure, count: 1}}
    offer: help
    text: Quiet now.
    quiet_hours: "{QUIET}"
  - name: busy_help
    moment: busy
    when: {{signal: failure, count: 1}}
    offer: help
    text: One a day.
    cap: {{moment_day: 1}}
  - name: held_help
    moment: held
    when: {{signal: failure, count: 1}}
    offer: help
    text: Half of you.
    holdout: 50
  - name: paged_help
    moment: paged
    when: {{signal: error_shown}}
    offer: help
    text: From a page call.
intervention_persons: 40
"""

_people = itertools.count()
_events = itertools.count()


def person() -> str:
    return f"ip-{next(_people)}"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("interventions") / "ws"
    k = make(root, SPEC)
    server = LiveServer(root).start()
    c = server.client(k["write"])
    yield server, c, k, root
    c.close()
    server.stop()


def track(c, who: str, *events: str | tuple[str, dict], context: dict | None = None) -> str:
    """Post ``events`` of ``who`` (name, or (name, properties)); the last one's id."""
    calls = []
    for e in events:
        name, props = (e, {}) if isinstance(e, str) else e
        calls.append({"type": "track", "event": name, "event_id": f"ev-{next(_events)}",
                      "anonymous_id": who, "timestamp": datetime.now(UTC).isoformat(),
                      "properties": props, **({"context": context} if context else {})})
    r = c.post("/v1/batch", json={"batch": calls})
    assert r.status_code == 200 and not r.json()["rejected"], r.text
    return calls[-1]["event_id"]


def decide(c, event: str, who: str, **params) -> dict:
    r = c.get("/v1/decide", params={"event": event, "anonymous_id": who, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"ok", "survey", "experiments", "refused", "intervention"}
    return body


def test_a_second_failure_gets_help_in_the_same_page_view(served):
    _, c, _, _ = served
    who = person()
    track(c, who, "pay_opened", "pay_failed")
    assert decide(c, "pay_failed", who)["intervention"] is None  # one failure is not two
    last = track(c, who, "pay_opened", "card_entered", "pay_failed")
    got = decide(c, "pay_failed", who, event_id=last, language="de-DE")
    i = got["intervention"]
    assert (i["name"], i["offer"], i["text"], i["language"], i["moment"], i["signal"]) == (
        "pay_help", "help", "Karte zweimal abgelehnt?", "de", "pay", "failure")
    assert i["decision"].startswith("i") and got["survey"] is None
    # Asked again for the same event: the same decision; for the next event: none (once per
    # attempt), and no other rule either (one intervention a day for the person).
    assert decide(c, "pay_failed", who, event_id=last)["intervention"]["decision"] == i["decision"]
    # A new attempt: the failures were answered (not counted again), rage clicks are new.
    nxt = track(c, who, "pay_opened", ("click", {"selector": "#pay"}), ("click", {"selector": "#pay"}),
                ("click", {"selector": "#pay"}))
    again = decide(c, "click", who, event_id=nxt)
    assert again["intervention"] is None and again["intervention_refused"] == {"rage_chat": "person_cap"}


def test_the_event_named_by_decide_counts_before_its_batch(served):
    _, c, _, _ = served
    who = person()
    track(c, who, "pay_opened", ("click", {"selector": "#a"}), ("click", {"selector": "#a"}))
    # The third click reaches decide before its batch (the SDK sends both): it counts once.
    got = decide(c, "click", who, event_id="late-click", properties=json.dumps({"selector": "#a"}))
    assert got["intervention"]["name"] == "rage_chat" and got["intervention"]["offer"] == "chat"
    r = c.post("/v1/batch", json={"batch": [{"type": "track", "event": "click", "event_id": "late-click",
                                             "anonymous_id": who, "properties": {"selector": "#a"},
                                             "timestamp": datetime.now(UTC).isoformat()}]})
    assert r.json()["accepted"] == 1
    assert decide(c, "click", who)["intervention"] is None  # counted once, decided once
    # Clicks on different targets make no burst.
    other = person()
    last = track(c, other, "pay_opened", ("click", {"selector": "#a"}), ("click", {"selector": "#b"}),
                 ("click", {"selector": "#a"}))
    assert decide(c, "click", other, event_id=last)["intervention"] is None


def test_repeated_status_checks_get_a_callback(served):
    _, c, _, _ = served
    who = person()
    track(c, who, "track_opened", "status_checked", "status_checked")
    assert decide(c, "status_checked", who)["intervention"] is None
    track(c, who, "status_checked")
    assert decide(c, "status_checked", who)["intervention"]["offer"] == "callback"


def test_a_closed_attempt_gets_nothing(served):
    _, c, _, _ = served
    who = person()
    last = track(c, who, "pay_opened", ("click", {"selector": "#x"}), ("click", {"selector": "#x"}),
                 ("click", {"selector": "#x"}), "paid")
    got = decide(c, "paid", who, event_id=last)
    assert got["intervention"] is None and got["intervention_refused"] == {}
    # Two failures, then paid: the moment is done.
    who = person()
    last = track(c, who, "pay_opened", "pay_failed", "pay_opened", "pay_failed", "pay_opened", "paid")
    assert decide(c, "paid", who, event_id=last)["intervention"] is None


def test_quiet_hours(served):
    _, c, _, _ = served
    who = person()
    last = track(c, who, "calm_opened", "calm_failed")
    got = decide(c, "calm_failed", who, event_id=last)
    assert got["intervention"] is None and got["intervention_refused"] == {"calm_help": "quiet"}


def test_the_moment_cap(served):
    _, c, _, _ = served
    first, second = person(), person()
    last = track(c, first, "busy_opened", "busy_failed")
    assert decide(c, "busy_failed", first, event_id=last)["intervention"]["name"] == "busy_help"
    last = track(c, second, "busy_opened", "busy_failed")
    got = decide(c, "busy_failed", second, event_id=last)
    assert got["intervention"] is None and got["intervention_refused"] == {"busy_help": "moment_cap"}


def held_persons() -> tuple[str, str]:
    """A person inside held_help's holdout and one outside it."""
    held = out = None
    while held is None or out is None:
        who = person()
        if share("holdout", "held_help", who) < 50:
            held = held or who
        else:
            out = out or who
    return held, out


def test_the_holdout_gets_nothing_and_is_recorded(served):
    _, c, _, _ = served
    held, treated = held_persons()
    last = track(c, held, "held_opened", "held_failed")
    got = decide(c, "held_failed", held, event_id=last)
    assert got["intervention"] is None and got["intervention_refused"] == {"held_help": "holdout"}
    assert decide(c, "held_failed", held, event_id=last)["intervention"] is None
    last = track(c, treated, "held_opened", "held_failed")
    assert decide(c, "held_failed", treated, event_id=last)["intervention"]["name"] == "held_help"
    served[0].held = held  # read from the store by the last test


def test_hostile_requests_are_never_a_500(served):
    server, c, _, _ = served
    who = person()
    for params in ({"event": "x" * 5000, "anonymous_id": who},
                   {"event": "pay_failed", "anonymous_id": "a" * 500},
                   {"event": "pay_failed", "anonymous_id": who, "properties": "[1]"},
                   {"event": "pay_failed", "anonymous_id": who, "properties": '{"selector": {"a": [1]}}'},
                   {"event": "pay_failed", "anonymous_id": who, "event_id": "e" * 300},
                   {"event": "pay_failed", "anonymous_id": who, "language": "<script>"},
                   {"event": "pay_failed", "anonymous_id": who, "channel": "fax"}, {"event": "pay_failed"}):
        r = c.get("/v1/decide", params=params)
        assert r.status_code in (200, 400), (params, r.text)
    weird = [{"type": "track", "event": "click", "event_id": f"w{i}", "anonymous_id": who,
              "timestamp": ts, "properties": props, "context": ctx}
             for i, (ts, props, ctx) in enumerate([
                 ("not a time", {"selector": None}, "not json"), (12, {"selector": ["a"]}, {"consent": 1}),
                 ("9999-01-01T00:00:00+00:00", {"selector": "x" * 5000}, None)])]
    weird.append({"type": "track", "event": "pay_opened", "event_id": "w-open", "anonymous_id": who})
    r = c.post("/v1/batch", json={"batch": weird})
    assert r.status_code in (200, 400), r.text
    assert c.get("/v1/decide", params={"event": "click", "anonymous_id": who}).status_code == 200
    assert server.proc is not None and server.proc.poll() is None


def test_memory_is_bounded_by_intervention_persons(served):
    _, c, _, _ = served
    first = person()
    track(c, first, "pay_opened", "pay_failed")
    # 60 persons more than the 40 followed: the least recently active (first) is forgotten,
    # so its second failure is a first one.
    for _ in range(3):
        calls = [{"type": "track", "event": "pay_opened", "event_id": f"ev-{next(_events)}",
                  "anonymous_id": person(), "timestamp": datetime.now(UTC).isoformat()} for _ in range(20)]
        r = c.post("/v1/batch", json={"batch": calls})
        assert r.status_code == 200 and r.json()["accepted"] == 20, r.text
    last = track(c, first, "pay_opened", "pay_failed")
    assert decide(c, "pay_failed", first, event_id=last)["intervention"] is None
    # In the process: never more than the limit, whatever comes.
    spec = parse_workspace(SPEC)
    live = Live(spec, limit=100)
    now = time.time()
    for n in range(5_000):
        live.feed((f"p{n}",), "pay_opened", "web", {}, now, f"e{n}", now)
        assert len(live) <= 100
    live.sweep(now + 3 * 3600)  # idle past every moment's timeout: all forgotten
    assert len(live) == 0


def test_no_consent_gets_nothing(tmp_path):
    root = tmp_path / "ws"
    k = make(root, SPEC.replace("intervention_persons: 40", "privacy: {consent: required}"))
    yes = {"consent": {"analytics": True}}
    with LiveServer(root) as server, server.client(k["write"]) as c:
        who = person()
        last = track(c, who, "pay_opened", "pay_failed", "pay_opened", "pay_failed", context=yes)
        got = decide(c, "pay_failed", who, event_id=last)
        assert got["intervention"] is None and got["intervention_refused"] == {"pay_help": "consent"}
        got = decide(c, "pay_failed", who, event_id=last, consent="true")
        assert got["intervention"]["name"] == "pay_help"
        # Events without consent are not stored, so they are not followed either.
        other = person()
        r = c.post("/v1/batch", json={"batch": [
            {"type": "track", "event": e, "event_id": f"ev-{next(_events)}", "anonymous_id": other,
             "timestamp": datetime.now(UTC).isoformat()}
            for e in ("pay_opened", "pay_failed", "pay_opened", "pay_failed")]})
        assert r.json()["withheld"] == 4
        assert decide(c, "pay_failed", other, consent="true")["intervention"] is None


def test_decisions_hold_across_a_restart(served):
    server, c, k, root = served
    who = person()
    last = track(c, who, "pay_opened", "pay_failed", "pay_opened", "pay_failed")
    assert decide(c, "pay_failed", who, event_id=last)["intervention"]["name"] == "pay_help"
    server.stop()
    server.start()
    with server.client(k["write"]) as c2:
        last = track(c2, who, "pay_opened", "pay_failed", "pay_opened", "pay_failed")
        got = decide(c2, "pay_failed", who, event_id=last)
        assert got["intervention"] is None and got["intervention_refused"] == {"pay_help": "person_cap"}
    server.stop()
    ws = mj.open(root)
    try:
        rows = ws.con.sql("SELECT event, anonymous_id, properties->>'intervention', "
                          "properties->>'holdout' FROM events WHERE event LIKE 'intervention_%' "
                          "ORDER BY seq").fetchall()
    finally:
        ws.close()
    assert ("intervention_held", server.held, "held_help", "true") in rows
    assert ("intervention_offered", who, "pay_help", "false") in rows
    server.start()


def test_an_attempt_open_across_a_restart_is_followed_again(served):
    """A failure before the restart and one after are a second failure: the server reads
    the recent stored events back when it starts (one failure in all is not)."""
    server, c, k, root = served
    who, quiet = person(), person()
    track(c, who, "pay_opened", "pay_failed")
    track(c, quiet, "pay_opened", "paid")  # completed, no failure
    server.stop()
    server.start()
    with server.client(k["write"]) as c2:
        last = track(c2, who, "pay_failed")
        got = decide(c2, "pay_failed", who, event_id=last)
        assert got["intervention"] is not None and got["intervention"]["name"] == "pay_help"
        last = track(c2, quiet, "pay_opened", "pay_failed")
        assert decide(c2, "pay_failed", quiet, event_id=last)["intervention"] is None


def test_resuming_reads_only_the_recent_events_a_rule_reads(tmp_path):
    spec = parse_workspace(SPEC)
    live = Live(spec)
    now = time.time()
    con = duckdb.connect()
    con.execute("CREATE TABLE events (seq BIGINT, event_id VARCHAR, timestamp TIMESTAMPTZ, "
                "event VARCHAR, anonymous_id VARCHAR, user_id VARCHAR, channel VARCHAR, "
                "properties JSON)")
    week = 7 * 86400
    rows = [(1, "a", now - week, "pay_opened", "old"), (2, "b", now - week + 1, "pay_failed", "old"),
            (3, "c", now - 60, "pay_opened", "new"), (4, "d", now - 59, "pay_failed", "new"),
            (5, "e", now - 58, "banner_seen", "new"), (6, "f", now - 57, "pay_opened", "it's \"quoted\"")]
    con.executemany("INSERT INTO events VALUES (?, ?, to_timestamp(?), ?, ?, NULL, 'web', '{}')", rows)
    assert live.resume(con.table("events"), now) == 3  # the week-old two and the banner left
    assert len(live) == 2  # the two recent persons followed
    assert not live.fired(("old",), now)


def test_a_page_call_and_a_call_without_a_type_are_followed(served):
    """A moment that starts on a page view (a ``page`` call, stored as ``page_viewed`` with
    the path of its URL as ``page``), and a track call that leaves out ``type``: the error
    shown in the attempt the page opened is seen; after another page, no attempt is open."""
    server, c, k, root = served
    who, other = person(), person()
    at = datetime.now(UTC).isoformat()
    r = c.post("/v1/batch", json={"batch": [
        {"type": "page", "anonymous_id": who, "timestamp": at,
         "properties": {"url": "https://shop.example/pay?step=1#top"}},
        {"event": "error_shown", "event_id": f"ev-{next(_events)}", "anonymous_id": who,
         "timestamp": at},
        {"type": "page", "anonymous_id": other, "timestamp": at, "name": "/home"},
        {"event": "error_shown", "event_id": f"ev-{next(_events)}", "anonymous_id": other,
         "timestamp": at}]})
    assert r.status_code == 200 and r.json()["accepted"] == 4, r.text
    got = decide(c, "error_shown", who)
    assert got["intervention"] is not None and got["intervention"]["name"] == "paged_help"
    assert decide(c, "error_shown", other)["intervention"] is None  # /home starts nothing


def test_the_python_client_asks_for_a_chat_or_a_call(served):
    """A chat bot or an IVR on the Python client: track each step, then ask what is due."""
    server, _, k, _ = served
    who = person()
    with mj.Client(server.url, k["write"], flush_interval=60) as client:
        for _ in range(2):
            client.track("pay_opened", anonymous_id=who, channel="chat")
            last = client.track("pay_failed", anonymous_id=who, channel="chat")
        got = client.intervention("pay_failed", channel="chat", anonymous_id=who, event_id=last)
        assert got is not None and (got["name"], got["offer"]) == ("pay_help", "help")
        assert client.intervention("pay_failed", channel="chat", anonymous_id=who) is None  # once
        with pytest.raises(ValueError, match="channel must be one of"):
            client.intervention("pay_failed", channel="fax", anonymous_id=who)
