"""A person's context for an agent hand-off (docs/handoff.md): ``ws.context(id)``,
``GET /v1/persons/{id}/context`` (secret key only) and the dashboard's agent view.

One customer fails a card payment on the web, tries again (still open at the end of the
data), is shown and accepts a help offer, then opens a chat under a chat handle that an
identify call links to them (with a phone number as a shared key). Scrubbing is off in
this workspace, so the card number and the e-mail address typed into properties are
stored as sent: the context must still never show a value, only names.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

import microjourney as mj
from microjourney.workspace_context import VERIFYING, verifying

from . import dashboard_site as site
from .helpers import PAYMENT_YAML, ev, workspace_of
from .live_server import LiveServer

CARD, EMAIL, PHONE = "4111 1111 1111 1111", "jane.doe@example.com", "+44 7700 900123"
WHY = "the form lost my card twice, write to jane.doe@example.com"
EVIL = "<script>alert('field')</script>"
SPEC = PAYMENT_YAML + """\
  - name: access
    moments:
      - name: login
        start: {event: login_started}
        complete: {event: logged_in}
        fail: {event: login_failed}
        timeout: 10m
  - name: support
    moments:
      - name: chat_help
        start: {event: chat_requested, channel: chat}
        steps:
          - {event: caller_identified, name: identity_verified}
          - {event: agent_joined}
        complete: {event: chat_resolved}
        timeout: 1h
identity:
  keys: [phone]
privacy:
  scrub: false
surveys:
  - name: pay_csat
    moment: card_payment
    questions:
      - {id: ease, type: csat, text: How easy was paying?}
      - {id: why, type: text, text: Why?, required: false}
"""


def events() -> list[dict]:
    """cus-1 on the web (anonymous anon-1 before logging in), in chat as chat-77; other-9
    beside them; gone-5 to be erased."""
    web = {"anonymous_id": "anon-1"}
    rows = [
        # An old failed attempt, 10 days before: outside the default 7 days.
        {**ev("09:00:00", "checkout_payment_opened", "cus-1"), "timestamp": "2023-12-22T09:00:00+00:00"},
        {**ev("09:00:30", "payment_failed", "cus-1"), "timestamp": "2023-12-22T09:00:30+00:00"},
        ev("10:00:00", "login_started", None, **web),
        ev("10:00:05", "logged_in", "cus-1", **web),
        # Attempt 1: fails, after a hard time with the card number field.
        ev("10:01:00", "checkout_payment_opened", "cus-1", properties={"amount": 42.5}),
        ev("10:01:03", "payment_gateway_loaded", "cus-1"),
        ev("10:01:10", "field_edited", "cus-1", properties={"field": "card_number", "edits": 7,
                                                            "dwell_ms": 45000}),
        ev("10:01:20", "field_edited", "cus-1", properties={"field": "cardholder_email", "edits": 1}),
        ev("10:01:25", "card_details_entered", "cus-1",
           properties={"valid": True, "card_number": CARD, "email": EMAIL}),
        ev("10:01:30", "payment_failed", "cus-1", properties={"reason": "declined"}),
        # Attempt 2: open at the end of the data (10:15, within its 30 minutes).
        ev("10:05:00", "checkout_payment_opened", "cus-1", properties={"amount": 42.5}),
        ev("10:05:02", "payment_gateway_loaded", "cus-1"),
        ev("10:05:05", "field_edited", "cus-1", properties={"field": "card_number", "edits": 2}),
        ev("10:05:06", "field_edited", "cus-1", properties={"field": EVIL}),
        ev("10:06:00", "intervention_shown", "cus-1",
           properties={"intervention": "card_help", "decision": "shown", "offer": "chat"}),
        ev("10:06:30", "intervention_accepted", "cus-1",
           properties={"intervention": "card_help", "decision": "accepted", "offer": "chat"}),
        # The chat, under the chat handle only.
        ev("10:10:00", "chat_requested", None, anonymous_id="chat-77", channel="chat"),
        ev("10:10:30", "caller_identified", None, anonymous_id="chat-77", channel="chat",
           properties={"method": "security_questions", "answer": EMAIL}),
        ev("10:11:00", "agent_joined", None, anonymous_id="chat-77", channel="chat"),
        ev("10:12:00", "chat_resolved", None, anonymous_id="chat-77", channel="chat"),
        # Asked about the failed payment: a score, and a text that must not be shown.
        ev("10:14:00", "survey_response", "cus-1", properties={
            "survey": "pay_csat", "display": "d1", "question": "ease", "answer": 2,
            "attempt": "card_payment:e4"}),
        ev("10:14:05", "survey_response", "cus-1", properties={
            "survey": "pay_csat", "display": "d1", "question": "why", "answer": WHY, "final": True}),
        # Someone else, and someone to forget.
        ev("10:02:00", "checkout_payment_opened", "other-9"),
        ev("10:02:30", "payment_succeeded", "other-9"),
        ev("10:03:00", "checkout_payment_opened", "gone-5"),
        ev("10:15:00", "payment_failed", "gone-5"),
    ]
    return [{"event_id": f"e{i}", **r} for i, r in enumerate(rows)]


CALLS = [{"call_id": "c1", "kind": "identify", "anonymous_id": "chat-77", "user_id": "cus-1",
          "previous_id": None, "traits": {"phone": PHONE},
          "timestamp": datetime(2024, 1, 1, 10, 10, 40, tzinfo=UTC)}]


def make(root):
    ws = workspace_of(root, SPEC, events())
    ws.write_identities(CALLS)
    return ws


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = make(tmp_path_factory.mktemp("context") / "ws")
    yield w
    w.close()


def no_values(answer: dict) -> None:
    """No value typed in a property (nor the phone of the identify call) anywhere."""
    text = json.dumps(answer)
    for value in (CARD, EMAIL, "4111", "jane.doe", "7700", "900123", "declined", "42.5",
                  "security_questions", WHY):
        assert value not in text, value


def test_the_context_by_any_identifier_is_the_persons(ws):
    by_user = ws.context("cus-1")
    assert by_user["person"] == "cus-1"
    for other in ("anon-1", "chat-77", " chat-77 ", PHONE, "+44-7700-900-123"):
        got = ws.context(other)
        assert {**got, "meta": None} == {**by_user, "meta": None}, other
    with pytest.raises(mj.QueryError) as e:
        ws.context("nobody")
    assert e.value.code == "query/person" and e.value.status == 404


def test_open_and_recent_attempts_in_every_channel(ws):
    c = ws.context("chat-77")
    assert [(a["moment"], a["outcome"]) for a in c["open"]] == [("card_payment", "in_progress")]
    assert [(a["moment"], a["outcome"]) for a in c["recent"]] == [
        ("chat_help", "completed"), ("card_payment", "failed"), ("login", "completed")]
    chat, failed = c["recent"][0], c["recent"][1]
    assert chat["channels"] == ["chat"] and chat["furthest_step"] == "chat_resolved"
    assert chat["steps"] == ["identity_verified", "agent_joined"]
    assert failed["channel"] == "web" and failed["start"] == "2024-01-01T10:01:00.000+00:00"
    assert failed["end"] == "2024-01-01T10:01:30.000+00:00" and failed["duration_s"] == 30.0
    assert failed["furthest_step"] == "card_details_entered" and failed["furthest_step_index"] == 2
    assert failed["escalated"] is False and failed["title"] is None and failed["journey"] == "payment"
    opened = c["open"][0]
    assert opened["furthest_step"] == "payment_gateway_loaded"
    assert opened["end"] == "2024-01-01T10:05:02.000+00:00"
    # The failed attempt of ten days before the end of the data comes with ?days=30.
    assert len(ws.context("cus-1", days=30)["recent"]) == 4
    assert c["meta"]["days"] == 7 and c["meta"]["as_of"] == "2024-01-01T10:15:00.000+00:00"
    assert c["meta"]["since"] == "2023-12-25T10:15:00.000+00:00" and c["meta"]["stale_s"] == 0
    for bad in (0, 367, True, 2.5, "7"):
        with pytest.raises(mj.QueryError) as e:
            ws.context("cus-1", days=bad)
        assert e.value.code == "query/option"


def test_frictions_fields_and_steps_entered_never_values(ws):
    c = ws.context("cus-1")
    failed = c["recent"][1]["attempt_id"]
    kinds = {(f["attempt_id"], f["kind"]) for f in c["frictions"]}
    assert (failed, "cognitive_load") in kinds
    load = next(f for f in c["frictions"] if f["kind"] == "cognitive_load")
    assert load["seconds_lost"] > 0 and load["at"].startswith("2024-01-01T10:01")
    fields = {f["field"]: f for f in c["entered"]["fields"]}
    assert set(fields) == {"card_number", "cardholder_email", EVIL}
    assert fields["card_number"]["times"] == 2 and fields["card_number"]["channels"] == ["web"]
    entered = next(i for i in c["entered"]["inputs"] if i["event"] == "card_details_entered")
    assert entered["keys"] == ["card_number", "email", "valid"] and entered["attempt_id"] == failed
    assert entered["step"] == "card_details_entered" and entered["moment"] == "card_payment"
    no_values(c)


def test_verification_scores_and_the_last_intervention(ws):
    c = ws.context("cus-1")
    verified = {(v["how"], v["what"]) for v in c["verified"]}
    assert verified == {("event", "logged_in"), ("event", "caller_identified"), ("moment", "login"),
                        ("step", "identity_verified")}
    chat = next(v for v in c["verified"] if v["what"] == "caller_identified")
    assert chat["channel"] == "chat" and chat["at"] == "2024-01-01T10:10:30.000+00:00"
    assert c["scores"] == [{"survey": "pay_csat", "question": "ease", "type": "csat", "score": 2,
                            "moment": "card_payment", "attempt_id": "card_payment:e4", "channel": "web",
                            "at": "2024-01-01T10:14:00.000+00:00"}]
    assert c["last_intervention"] == {"event": "intervention_accepted", "intervention": "card_help",
                                      "decision": "accepted", "offer": "chat", "channel": "web",
                                      "at": "2024-01-01T10:06:30.000+00:00"}
    assert [i["event"] for i in c["interventions"]] == ["intervention_accepted", "intervention_shown"]
    other = ws.context("other-9")
    assert other["open"] == [] and other["last_intervention"] is None and other["scores"] == []
    assert [a["outcome"] for a in other["recent"]] == ["completed"] and other["verified"] == []


def test_what_names_a_verification():
    assert all(verifying(w) for w in VERIFYING)
    assert verifying("id_verification") and verifying("Three_DS_Verification") and verifying("2fa_code")
    assert not any(verifying(n) for n in ("card_payment", "chat_help", "delivery_tracking"))


def test_an_erased_person_has_no_context(tmp_path):
    ws = make(tmp_path / "ws")
    try:
        assert ws.context("gone-5")["person"] == "gone-5"
        ws.forget("gone-5")
        with pytest.raises(mj.QueryError) as e:
            ws.context("gone-5")
        assert e.value.code == "query/person"
    finally:
        ws.close()


HOSTILE = ["x" * 5000, "ü🙂\u202e", "'\"; DROP TABLE persons; --", "../../etc/passwd", "a/b",
           "%00", "%ED%A0%80", "%2e%2e%2f", "%27%20OR%201%3D1--", " ", "%F0%9F", "\\", "*", "%"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The workspace served: (server, keys)."""
    root = tmp_path_factory.mktemp("served") / "ws"
    make(root).close()
    keys = mj.workspace.keys(root)
    with LiveServer(root) as server:
        yield server, keys


def test_the_endpoint_needs_the_secret_key(served):
    server, keys = served
    with server.client(keys.secret_key) as api:
        answer = api.get("/v1/persons/chat-77/context")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["ok"] is True and body["person"] == "cus-1"
        assert [a["outcome"] for a in body["open"]] == ["in_progress"]
        assert body["meta"]["as_of"] == "2024-01-01T10:15:00.000+00:00"
        assert body["meta"]["refreshed_at"] and body["meta"]["stale_s"] >= 0
        assert body["last_intervention"]["event"] == "intervention_accepted"
        no_values(body)
        assert len(api.get("/v1/persons/cus-1/context", params={"days": 30}).json()["recent"]) == 4
        bad = api.get("/v1/persons/cus-1/context", params={"days": "a week"})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "query/option"
        missing = api.get("/v1/persons/nobody/context")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "query/person"
        assert "nobody" not in missing.text  # the identifier is not said back
    for key in (keys.write_key, keys.viewer_key):
        with server.client(key) as other:
            refused = other.get("/v1/persons/cus-1/context")
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "auth/forbidden"
    with server.client() as nobody:
        assert nobody.get("/v1/persons/cus-1/context").status_code == 401


def test_hostile_ids_get_an_answer_never_a_crash(served):
    server, keys = served
    with server.client(keys.secret_key) as api:
        for ident in HOSTILE:
            got = api.get("/v1/persons/" + ident + "/context")
            assert got.status_code in (400, 404), (ident, got.status_code, got.text)
            assert got.json()["ok"] is False
        assert "server/error" not in (server.log.read_text() if server.log.exists() else "")


def test_an_erased_person_has_no_context_over_http(served):
    server, keys = served
    with server.client(keys.secret_key) as api:
        assert api.get("/v1/persons/gone-5/context").status_code == 200
        assert api.delete("/v1/persons/gone-5").status_code == 200
        gone = api.get("/v1/persons/gone-5/context")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "query/person"


def test_the_agent_view_shows_the_context_escaped(served):
    server, keys = served
    with site.browser(server) as c:
        away = c.get("/agent?person=chat-77")
        assert away.status_code == 303 and away.headers["location"].startswith("/sign-in?next=")
        site.sign_in(c, keys.viewer_key)
        page = c.get("/agent", params={"person": "chat-77"})
        assert page.status_code == 200, page.text
        text = page.text
        assert '<a href="/agent" aria-current="page">Agent view</a>' in text
        assert EVIL not in text and str(escape(EVIL)) in text  # shown as text, never markup
        for shown in ("cus-1", "in_progress", "card_payment", "chat_help", "cognitive_load",
                      "card_number", "cardholder_email", "caller_identified", "identity_verified",
                      "intervention_accepted", "card_help", "pay_csat"):
            assert shown in text, shown
        # Open attempts first, then recent ones, frictions, entered, verified, scores, intervention.
        order = [text.index(f'id="{part}"') for part in
                 ("open", "recent", "frictions", "entered", "verified", "scores", "intervention")]
        assert order == sorted(order)
        no_values({"page": re.sub(r"\s+", " ", html.unescape(text))})
        assert '<a href="/agent">Agent view</a>' in c.get("/alerts").text  # in the navigation
        empty = c.get("/agent")
        assert empty.status_code == 200 and 'name="person"' in empty.text
        unknown = c.get("/agent", params={"person": "<b>nobody</b>"})
        assert unknown.status_code == 404 and "<b>nobody</b>" not in unknown.text
        for ident in HOSTILE:
            got = c.get("/agent", params={"person": ident})
            assert got.status_code in (200, 404), (ident, got.status_code)
