"""Surveys served to the SDK: ``GET /v1/decide`` and ``POST /v1/responses`` on a real
server on 127.0.0.1 (docs/surveys.md, "Serving surveys"). Each rule of decide is shown to
hold and to fail; answers are stored once per display and question."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

import microjourney as mj
from microjourney.engine.tagging import tag
from microjourney.server.survey_history import History
from microjourney.spec.load import parse_workspace
from microjourney.spec.matching import Outcomes

from .live_server import LiveServer

TODAY = datetime.now(UTC).date()

SPEC = f"""\
server: {{rate_limit: 1000, burst: 1000}}
journeys:
  - name: shop
    moments:
      - name: pay
        start: {{event: pay_opened}}
        complete: {{event: paid, channel: [web, app], where: {{amount: {{gt: 10}}}}}}
        fail: {{event: pay_failed}}
      - {{name: signup, start: {{event: signup_opened}}, complete: {{event: signed_up}}}}
      - {{name: login, start: {{event: login_opened}}, complete: {{event: logged_in}}}}
      - {{name: search, start: {{event: search_opened}}, complete: {{event: searched}}}}
      - name: refund
        start: {{event: refund_opened}}
        complete: {{event: refunded}}
        fail: {{event: refund_failed}}
      - {{name: capped, start: {{event: cap_opened}}, complete: {{event: cap_done}}}}
      - {{name: season, start: {{event: season_opened}}, complete: {{event: season_done}}}}
surveys:
  - name: pay_csat
    moment: pay
    title: Your payment
    trigger: {{outcomes: [completed], channel: [web], delay: 2s}}
    questions:
      - {{id: ease, type: csat, text: How easy was paying?}}
      - {{id: why, type: text, text: What made it hard?, when: {{question: ease, at_most: 3}}}}
      - {{id: plan, type: multiple, text: Which plan?, choices: [basic, gold], required: false}}
    languages:
      de: {{ease: Wie einfach war das Bezahlen?}}
  - name: signup_nps
    moment: signup
    questions: [{{id: nps, type: nps, text: Recommend us?}}]
    display: {{show: until_answered, recontact: 1s}}
  - name: login_times
    moment: login
    questions: [{{id: ok, type: thumbs, text: Easy?}}]
    display: {{show: times, times: 2}}
  - name: search_sample
    moment: search
    questions: [{{id: ok, type: thumbs, text: Found it?}}]
    display: {{sample: 30}}
  - name: refund_control
    moment: refund
    trigger: {{outcomes: [failed]}}
    questions: [{{id: ces, type: ces, text: How easy?}}]
    control: 50
  - name: capped
    moment: capped
    questions: [{{id: ok, type: thumbs, text: Good?}}]
    display: {{cap: 1}}
  - name: season_old
    moment: season
    questions: [{{id: ok, type: thumbs, text: Old?}}]
    display: {{end: {TODAY - timedelta(days=1)}}}
  - name: season_later
    moment: season
    questions: [{{id: ok, type: thumbs, text: Later?}}]
    display: {{start: {TODAY + timedelta(days=1)}}}
  - name: season_now
    moment: season
    questions: [{{id: ok, type: thumbs, text: Now?}}]
    display: {{start: {TODAY}, end: {TODAY}}}
"""

_people = itertools.count()


def person() -> str:
    return f"anon-{next(_people)}"


def make(root: Path, spec: str) -> dict[str, str]:
    mj.init(root).close()
    (root / "microjourney.yaml").write_text(spec, encoding="utf-8")
    k = mj.workspace.keys(root)
    return {"write": k.write_key, "secret": k.secret_key}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("decide") / "ws"
    k = make(root, SPEC)
    with LiveServer(root) as server, server.client(k["write"]) as c:
        yield server, c, k


def decide(c, event: str, who: str, **params) -> dict:
    r = c.get("/v1/decide", params={"event": event, "anonymous_id": who, **params})
    assert r.status_code == 200, r.text
    return r.json()


def answer(c, shown: dict, who: str, question: str, value, **more) -> dict:
    r = c.post("/v1/responses", json={"survey": shown["name"], "display": shown["display"],
                                      "question": question, "answer": value, "anonymous_id": who,
                                      **more})
    assert r.status_code == 200, r.text
    return r.json()


def test_trigger_outcomes_channels_and_the_moments_matchers(served):
    _, c, _ = served
    who = person()
    got = decide(c, "paid", who, properties=json.dumps({"amount": 20}))["survey"]
    assert got["name"] == "pay_csat" and got["control"] is False and got["delay_ms"] == 2000
    assert got["title"] == "Your payment" and got["language"] is None
    ease, why, plan = got["questions"]
    assert (ease["type"], ease["scale"], ease["text"]) == ("csat", [1, 5], "How easy was paying?")
    assert why["when"] == {"question": "ease", "at_least": None, "at_most": 3}
    assert (plan["choices"], plan["required"], plan["scale"]) == (["basic", "gold"], False, None)
    # A failure is not among the trigger's outcomes; app is a channel of the moment, not of
    # the survey; a payment of 5 is no completion (where: amount > 10); voice no channel
    # of the moment; an event of no moment.
    assert decide(c, "pay_failed", person()) == {"ok": True, "survey": None, "experiments": {},
                                                 "refused": {"pay_csat": "trigger"}}
    assert decide(c, "paid", person(), channel="app", properties='{"amount": 20}')["refused"] == {
        "pay_csat": "trigger"}
    for props, channel in (('{"amount": 5}', "web"), ('{"amount": "lots"}', "web"), ("{}", "web"),
                           ('{"amount": 20}', "voice")):
        assert decide(c, "paid", person(), channel=channel, properties=props) == {
            "ok": True, "survey": None, "experiments": {}, "refused": {}}
    assert decide(c, "page_viewed", person())["survey"] is None


def test_show_once_and_a_retried_decide_gets_its_display(served):
    _, c, _ = served
    who = person()
    first = decide(c, "paid", who, properties='{"amount": 11}', event_id="ev-1")["survey"]
    again = decide(c, "paid", who, properties='{"amount": 11}', event_id="ev-1")["survey"]
    assert first["display"] == again["display"]  # the same event asked again: a retry
    assert decide(c, "paid", who, properties='{"amount": 11}', event_id="ev-2")["refused"] == {
        "pay_csat": "shown"}
    # The user id counts as the same person as the anonymous id it is sent with.
    assert decide(c, "paid", person(), user_id="user-once", properties='{"amount": 11}')["survey"]
    assert decide(c, "paid", person(), user_id="user-once", properties='{"amount": 11}')["refused"] == {
        "pay_csat": "shown"}


def test_language_variants_fall_back_to_the_default_texts(served):
    _, c, _ = served
    texts = {}
    for language in ("de", "de-AT", "fr"):
        got = decide(c, "paid", person(), language=language, properties='{"amount": 20}')["survey"]
        texts[language] = (got["language"], got["questions"][0]["text"], got["questions"][1]["text"])
    assert texts == {"de": ("de", "Wie einfach war das Bezahlen?", "What made it hard?"),
                     "de-AT": ("de", "Wie einfach war das Bezahlen?", "What made it hard?"),
                     "fr": (None, "How easy was paying?", "What made it hard?")}


def test_until_answered_and_recontact(served):
    _, c, _ = served
    who = person()
    first = decide(c, "signed_up", who)["survey"]
    assert first["name"] == "signup_nps"
    assert decide(c, "signed_up", who)["refused"] == {"signup_nps": "recontact"}
    time.sleep(1.05)
    second = decide(c, "signed_up", who)["survey"]  # not answered yet, the wait is over
    assert second["display"] != first["display"]
    assert answer(c, second, who, "nps", 9, final=True)["accepted"] == 1
    time.sleep(1.05)
    assert decide(c, "signed_up", who)["refused"] == {"signup_nps": "shown"}


def test_show_times(served):
    _, c, _ = served
    who = person()
    assert decide(c, "logged_in", who)["survey"] and decide(c, "logged_in", who)["survey"]
    assert decide(c, "logged_in", who)["refused"] == {"login_times": "shown"}


def test_sample_is_a_deterministic_share(served):
    _, c, _ = served
    people = [person() for _ in range(60)]
    first = {p: decide(c, "searched", p, event_id=f"s-{p}") for p in people}
    shown = [p for p in people if first[p]["survey"]]
    assert {a["refused"].get("search_sample") for p, a in first.items() if p not in shown} == {"sample"}
    assert 6 <= len(shown) <= 30  # 30% of 60
    again = {p: decide(c, "searched", p, event_id=f"s-{p}") for p in people}
    assert [p for p in people if again[p]["survey"]] == shown  # the same answer for the same event
    assert all(again[p]["survey"]["display"] == first[p]["survey"]["display"] for p in shown)


def test_control_share_is_asked_whatever_the_outcome(served):
    _, c, _ = served
    answers = [decide(c, "refunded", person(), event_id=f"r-{i}") for i in range(40)]
    control = [a for a in answers if a["survey"]]
    assert all(a["survey"]["control"] is True for a in control)
    assert {a["refused"]["refund_control"] for a in answers if not a["survey"]} == {"trigger"}
    assert 8 <= len(control) <= 32  # 50% of 40
    failed = decide(c, "refund_failed", person())["survey"]  # the trigger's own outcome
    assert failed["name"] == "refund_control"


def test_cap_counts_answered_displays(served):
    _, c, _ = served
    a, b, late = person(), person(), person()
    first, second = decide(c, "cap_done", a)["survey"], decide(c, "cap_done", b)["survey"]
    assert first and second  # shown, none answered yet
    answer(c, first, a, "ok", "up", final=True)
    assert decide(c, "cap_done", late)["refused"] == {"capped": "cap"}


def test_start_and_end_days(served):
    _, c, _ = served
    got = decide(c, "season_done", person())
    assert got["survey"]["name"] == "season_now"
    assert got["refused"] == {"season_old": "window", "season_later": "window"}


def test_answers_are_checked_and_name_their_field(served):
    _, c, _ = served
    who = person()
    shown = decide(c, "paid", who, properties='{"amount": 50}')["survey"]
    base = {"survey": "pay_csat", "display": shown["display"], "anonymous_id": who}
    cases = [
        ({**base, "question": "ease", "answer": 6}, "answer: '6' is not an answer to csat"),
        ({**base, "question": "nope", "answer": 1}, "question: survey 'pay_csat' has no question"),
        ({**base, "question": "plan", "answer": ["basic", "platinum"]}, "answer: 'basic;platinum'"),
        ({**base, "survey": "other", "question": "ease", "answer": 1}, "survey: no survey"),
        ({**base, "question": "ease", "answer": 1, "anonymous_id": None}, "anonymous_id: "),
        ({**base, "question": "ease", "answer": 1, "timestamp": "2026-01-01 10:00"}, "timestamp: has no"),
        ({**base, "question": "ease", "answer": {"x": 1}}, "answer: required"),
        ({**base, "question": "ease", "answer": 1, "final": "maybe"}, "final: true or false"),
        ({**base, "question": "ease", "answer": 1, "display": "d" * 201}, "display: 201 characters"),
        ({**base, "question": "ease", "answer": 1, "channel": "fax"}, "channel: unknown channel"),
        ({"answers": [{**base, "question": "ease", "answer": 2}, {**base, "question": "why"}]},
         "answers[1].answer: required"),
        ([], "body: "), (7, "body: "), ({"answers": "x"}, "answers: "),
        ([{**base, "question": "ease", "answer": 1}] * 101, "body: 101 answers"),
    ]
    for body, message in cases:
        r = c.post("/v1/responses", json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "request/bad"), (body, r.text)
        assert r.json()["error"]["message"].startswith(message), r.json()
    r = c.post("/v1/responses", content=b'{"survey": ', headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "request/bad-json")
    for params in ({"event": "paid"}, {"anonymous_id": "x"}, {"event": "paid", "anonymous_id": "x",
                   "properties": "[1]"}, {"event": "paid", "anonymous_id": "x", "channel": "fax"},
                   {"event": "paid", "anonymous_id": "x", "language": "<b>"},
                   {"event": "paid", "anonymous_id": "x", "properties": "{" * 3000}):
        r = c.get("/v1/decide", params=params)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "request/bad"), (params, r.text)
    assert c.get("/v1/decide", params={"event": "paid", "anonymous_id": "x"},
                 headers={"Authorization": "Bearer nope"}).status_code == 401


def test_partial_answers_are_kept_and_never_counted_twice(tmp_path):
    root = tmp_path / "ws"
    k = make(root, SPEC)
    who = person()
    with LiveServer(root) as server, server.client(k["write"]) as c:
        shown = decide(c, "paid", who, properties='{"amount": 20}', attempt="att-1")["survey"]
        first = answer(c, shown, who, "ease", "2", attempt="att-1")  # partial
        again = answer(c, shown, who, "ease", 5, attempt="att-1")  # sent again, changed: the first counts
        last = c.post("/v1/responses", json={"answers": [
            {"survey": "pay_csat", "display": shown["display"], "question": "why", "anonymous_id": who,
             "answer": "Call me on +44 20 7946 0958", "final": True, "attempt": "att-1"},
            {"survey": "pay_csat", "display": shown["display"], "question": "plan",
             "anonymous_id": who, "answer": ["gold", "basic"], "attempt": "att-1"}]}).json()
        dropped = decide(c, "paid", person(), properties='{"amount": 20}')["survey"]
        gone = c.post("/v1/responses", json={"survey": "pay_csat", "display": dropped["display"],
                                             "anonymous_id": "someone", "dismissed": True}).json()
        gone_again = c.post("/v1/responses", json={"survey": "pay_csat", "display": dropped["display"],
                                                   "anonymous_id": "someone", "dismissed": True}).json()
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (1, 0, 1)
    assert (last["accepted"], last["rejected"]) == (2, [])
    assert (gone["accepted"], gone_again["duplicates"]) == (1, 1)
    with mj.open(root) as ws:
        rows = ws.survey_answers("pay_csat", linked=False).order_by("question").to_pyarrow().to_pylist()
        displays = ws.survey_displays("pay_csat").to_pyarrow().to_pylist()
        shown_events = ws.con.execute("SELECT properties->>'attempt', properties->>'control' FROM events "
                                      "WHERE event = 'survey_shown'").fetchall()
        # What a server starting now reads: the displays, the answered and the dismissed.
        history = History().load(ws.con.table("events"))
    assert set(history.displays([who], "pay_csat")) == {shown["display"]}
    assert history.answered("pay_csat", shown["display"]) and history.answered_displays("pay_csat") == 1
    assert history.dismissed("pay_csat", dropped["display"])
    assert history.last_shown([who]) is not None and history.last_shown(["nobody"]) is None
    assert [(r["question"], r["answer"], r["final"]) for r in rows] == [
        ("ease", "2", False), ("plan", "gold; basic", False), ("why", "Call me on [phone]", True)]
    assert {r["given_attempt"] for r in rows} == {"att-1"}
    assert sorted((d["display"] == dropped["display"], d["dismissed"]) for d in displays) == [
        (False, False), (True, True)]
    assert sorted(shown_events, key=str) == [("att-1", "false"), (None, "false")]


CONSENT_SPEC = """\
server: {rate_limit: 1000, burst: 1000}
privacy: {consent: required}
survey_cooldown: 1s
journeys:
  - name: shop
    moments:
      - {name: a, start: {event: a_opened}, complete: {event: a_done}}
      - {name: b, start: {event: b_opened}, complete: {event: b_done}}
surveys:
  - {name: a_csat, moment: a, questions: [{id: ok, type: thumbs, text: Good?}]}
  - {name: b_csat, moment: b, questions: [{id: ok, type: thumbs, text: Good?}]}
"""


def test_consent_cooldown_and_erasure(tmp_path):
    root = tmp_path / "ws"
    k = make(root, CONSENT_SPEC)
    with LiveServer(root) as server, server.client(k["write"]) as c:
        who = person()
        assert decide(c, "a_done", who)["refused"] == {"a_csat": "consent"}  # nothing stored: not shown
        got = decide(c, "a_done", who, consent="true")["survey"]
        assert got["name"] == "a_csat"
        assert decide(c, "b_done", who, consent="true")["refused"] == {"b_csat": "cooldown"}
        withheld = answer(c, got, who, "ok", 1)
        assert withheld["withheld"] == 1
        stored = answer(c, got, who, "ok", 1, consent=True)
        assert stored["accepted"] == 1
        time.sleep(1.05)
        assert decide(c, "b_done", who, consent="true")["survey"]["name"] == "b_csat"
        # The survey history is personal data: an erasure takes it too.
        assert decide(c, "a_done", who, consent="true")["refused"] == {"a_csat": "shown"}
        erased = c.delete(f"/v1/persons/{who}", headers={"Authorization": f"Bearer {k['secret']}"})
        assert erased.status_code == 200, erased.text
        assert decide(c, "a_done", who, consent="true")["survey"]["name"] == "a_csat"


def test_the_matchers_read_properties_as_the_engines_tagging_does():
    spec = parse_workspace("""
journeys:
  - name: j
    moments:
      - name: m
        start: {event: s}
        complete: {event: done, where: {amount: {gt: 10}, ok: true, code: [51, "x"], tag: {exists: true}}}
        fail: {event: failed, channel: [web], where: {code: {not_in: [1, "2"]}, n: {lte: 3.5}}}
        escalate: {event: [help, failed], where: {kind: {ne: chat}}}
""")
    values = [None, True, False, 0, 1, 2, 3.5, 11, 51, 51.0, "51", "x", "2", "true", "chat", "12", " 12"]
    rows = []
    for i, (event, amount, ok, code) in enumerate(itertools.product(
            ["done", "failed", "help"], values[::3], [True, "true", None, "1"], values[::2])):
        props = {k: v for k, v in (("amount", amount), ("ok", ok), ("code", code), ("tag", i % 3 or None),
                                   ("n", amount), ("kind", code)) if v is not None}
        rows.append({"person": "p", "event": event, "channel": ["web", "app"][i % 2],
                     "properties": json.dumps(props), "seq": i, "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
                     "user_id": None})
    table = pa.Table.from_pylist(rows)
    engine = tag(ibis.memtable(table).cast({"properties": "json"}), spec).select("seq", "role")
    found = engine.execute()
    by_engine: dict[int, set[str]] = {}
    for seq, role in zip(found["seq"], found["role"], strict=True):
        if role != "start":
            by_engine.setdefault(int(seq), set()).add(
                {"complete": "completed", "fail": "failed", "escalate": "escalated"}[role])
    outcomes = Outcomes(spec)
    ours = {r["seq"]: {outcomes.of(r["event"], r["channel"], json.loads(r["properties"])).get("m")}
            for r in rows}
    for seq, got in ours.items():
        want = by_engine.get(seq, set())
        assert (got - {None}) <= want and (bool(want) == bool(got - {None})), (rows[seq], want, got)


def test_hostile_requests_are_refused_never_a_server_error(served):
    _, c, _ = served
    deep = "[" * 2000 + "]" * 2000
    queries = [{"event": "paid", "anonymous_id": "a\x00b", "properties": '{"amount": 1e999}'},
               {"event": "paid", "anonymous_id": "x", "properties": '{"amount": "NaN"}'},
               {"event": "paid", "anonymous_id": "x", "properties": '{"amount": ' + "9" * 1500 + "}"},
               {"event": "paid", "anonymous_id": "x", "properties": deep[:1999]},
               {"event": "\ud7ff" * 150, "anonymous_id": "é" * 200, "language": "x" * 36},
               {"event": "paid", "anonymous_id": " ", "consent": "perhaps"}]
    for params in queries:
        r = c.get("/v1/decide", params=params)
        assert r.status_code in (200, 400), (params, r.text)
    shown = decide(c, "paid", "hostile", properties='{"amount": 20}')["survey"]
    base = {"survey": "pay_csat", "display": shown["display"], "anonymous_id": "hostile"}
    bodies = [deep.encode(), b'{"survey": "\\ud800"}', b"\xff\xfe", b"null", b'"text"', b"1e999",
              orjson_bytes({**base, "question": "ease", "answer": 1e308}),
              orjson_bytes({**base, "question": "ease", "answer": "9" * 5000}),
              orjson_bytes({**base, "question": "why", "answer": "x" * 5001}),
              orjson_bytes({**base, "question": "plan", "answer": [1, 2]}),
              orjson_bytes({**base, "question": ["ease"], "answer": 1}),
              orjson_bytes({**base, "question": "ease", "answer": 1, "timestamp": "9999-12-31T23:59:59Z"}),
              orjson_bytes({**base, "question": "ease", "answer": 1,
                            "timestamp": "2026-01-01T00:00:00+23:00"}),
              orjson_bytes({**base, "question": "ease", "answer": 1, "user_id": 7}),
              orjson_bytes({"answers": [base] * 3})]
    for body in bodies:
        r = c.post("/v1/responses", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["ok"] is False, (body[:80], r.text)


def orjson_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


def test_customer_texts_are_taken_checked_and_stored_once(served):
    server, c, k = served
    said = [f"my card was declined at shop {i}" for i in range(6)] + \
           [f"the chat kept me waiting {i} minutes" for i in range(6)]
    texts = [{"text": t, "source": "chat", "id": f"x{i}", "anonymous_id": "w1", "channel": "chat"}
             for i, t in enumerate(said)]
    first = c.post("/v1/texts", json={"texts": texts}).json()
    again = c.post("/v1/texts", json=texts[0]).json()
    assert (first["accepted"], again["accepted"], again["duplicates"]) == (12, 0, 1)
    for body, field in (({"text": "", "anonymous_id": "w"}, "text"),
                        ({"text": "hi", "source": "tweets", "anonymous_id": "w"}, "source"),
                        ({"text": "hi"}, "anonymous_id"),
                        ({"text": "x" * 5001, "anonymous_id": "w"}, "text"),
                        ({"texts": [{"text": "ok", "anonymous_id": "w"}, 7]}, "texts[1]")):
        r = c.post("/v1/texts", json=body)
        assert r.status_code == 400 and r.json()["error"]["message"].startswith(field), body
    with server.client(k["secret"]) as api:
        answer = api.get("/v1/analyses/intents", params={"texts": "true"}).json()
    listed = answer["tables"]["texts"]
    assert len(listed) == 12 and {t["source"] for t in listed} == {"chat"}
    assert answer["meta"]["k"] >= 2
