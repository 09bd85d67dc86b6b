"""Experiments served on a real server on 127.0.0.1: ``GET /v1/decide`` assigns the variants of
the running experiments (as ``Experiment.variant_of`` does) and records nothing;
``POST /v1/exposures`` checks and stores each exposure once; the ``experiment`` analysis
counts the persons exposed; the Python client's ``variant`` and ``exposure`` (docs/collector.md,
"Experiments"; docs/experiments.md)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import microjourney as mj
from microjourney.spec.load import parse_workspace

from .live_server import LiveServer

NOW = datetime.now(UTC)
TODAY = NOW.date()

SPEC = f"""\
server: {{rate_limit: 1000, burst: 1000, refresh_every: 0.3s}}
journeys:
  - name: shop
    moments:
      - {{name: pay, start: {{event: pay_opened}}, complete: {{event: paid}}, fail: {{event: pay_failed}}}}
      - {{name: signup, start: {{event: signup_opened}}, complete: {{event: signed_up}}}}
experiments:
  - name: pay_copy
    moment: pay
    variants: [{{name: control, weight: 1}}, {{name: short, weight: 2}}]
    salt: pay-copy-1
  - name: pay_now
    moment: pay
    variants: [{{name: a}}, {{name: b}}]
    start: {TODAY}
    end: {TODAY}
  - name: pay_old
    moment: pay
    variants: [{{name: a}}, {{name: b}}]
    end: {TODAY - timedelta(days=1)}
  - name: pay_later
    moment: pay
    variants: [{{name: a}}, {{name: b}}]
    start: {TODAY + timedelta(days=1)}
  - name: signup_form
    moment: signup
    variants: [{{name: old}}, {{name: new}}]
"""
EXPERIMENTS = {e.name: e for e in parse_workspace(SPEC).experiments}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root: Path = tmp_path_factory.mktemp("exposures") / "ws"
    mj.init(root).close()
    (root / "microjourney.yaml").write_text(SPEC, encoding="utf-8")
    k = mj.workspace.keys(root)
    with LiveServer(root) as server, server.client(k.write_key) as c:
        yield server, c, {"write": k.write_key, "secret": k.secret_key}


def decide(c, **params) -> dict:
    r = c.get("/v1/decide", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def refused(r, field: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["code"] == "request/bad" and body["error"]["message"].startswith(f"{field}:"), body


def test_decide_assigns_the_running_experiments_of_the_events_moment(served):
    _, c, _ = served
    copy, now, form = EXPERIMENTS["pay_copy"], EXPERIMENTS["pay_now"], EXPERIMENTS["signup_form"]
    seen = set()
    for i in range(150):
        who = f"anon-{i}"
        got = decide(c, event="pay_opened", anonymous_id=who)
        # pay_old has ended, pay_later not begun: neither is assigned.
        assert got["experiments"] == {"pay_copy": copy.variant_of(who), "pay_now": now.variant_of(who)}
        assert got["survey"] is None
        seen.add(got["experiments"]["pay_copy"])
    assert seen == {"control", "short"}
    # Any event of the moment (here its completion, its failure); the user id over the anonymous id.
    got = decide(c, event="pay_failed", anonymous_id="anon-x", user_id="cus-7")
    assert got["experiments"] == {"pay_copy": copy.variant_of("cus-7"), "pay_now": now.variant_of("cus-7")}
    got = decide(c, event="signed_up", anonymous_id="a")
    assert got["experiments"] == {"signup_form": form.variant_of("a")}
    assert decide(c, event="page_viewed", anonymous_id="a")["experiments"] == {}
    # Named, whatever the event (none needed): repeated or comma-separated; not running: absent.
    got = decide(c, experiment="signup_form,pay_old", anonymous_id="b")
    assert got == {"ok": True, "survey": None, "experiments": {"signup_form": form.variant_of("b")},
                   "refused": {}}
    r = c.get("/v1/decide", params=[("experiment", "signup_form"), ("experiment", "pay_copy"),
                                    ("user_id", "cus-8"), ("event", "page_viewed")])
    assert r.json()["experiments"] == {"signup_form": form.variant_of("cus-8"),
                                       "pay_copy": copy.variant_of("cus-8")}
    refused(c.get("/v1/decide", params={"experiment": "nope", "anonymous_id": "b"}), "experiment")
    many = ",".join(["pay_copy"] * 2 + [f"x{i}" for i in range(30)])  # too many names
    refused(c.get("/v1/decide", params={"experiment": many, "anonymous_id": "b"}), "experiment")
    refused(c.get("/v1/decide", params={"experiment": "pay_copy"}), "anonymous_id")
    refused(c.get("/v1/decide", params={"anonymous_id": "b"}), "event")


def test_exposures_are_checked(served):
    _, c, _ = served
    ok = {"experiment": "pay_copy", "variant": "short", "anonymous_id": "chk"}
    refused(c.post("/v1/exposures", json={**ok, "experiment": "nope"}), "experiment")
    refused(c.post("/v1/exposures", json={**ok, "experiment": None}), "experiment")
    refused(c.post("/v1/exposures", json={**ok, "variant": "long"}), "variant")
    refused(c.post("/v1/exposures", json={**ok, "variant": 3}), "variant")
    refused(c.post("/v1/exposures", json={**ok, "anonymous_id": None}), "anonymous_id")
    refused(c.post("/v1/exposures", json={**ok, "channel": "moon"}), "channel")
    refused(c.post("/v1/exposures", json={**ok, "timestamp": "yesterday"}), "timestamp")
    refused(c.post("/v1/exposures", json={**ok, "consent": "perhaps"}), "consent")
    refused(c.post("/v1/exposures", json=[ok, {**ok, "variant": "x"}]), "[1].variant")
    refused(c.post("/v1/exposures", json={"exposures": [ok, "x"]}), "exposures[1].")
    refused(c.post("/v1/exposures", json={"exposures": []}), "exposures")
    refused(c.post("/v1/exposures", json=[ok] * 101), "body")
    refused(c.post("/v1/exposures", json=7), "body")
    r = c.post("/v1/exposures", content=b"{", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "request/bad-json"
    assert c.post("/v1/exposures", json=ok, headers={"Authorization": ""}).status_code == 401


def test_exposures_are_stored_once_and_counted_by_the_analysis(served):
    server, c, keys = served
    copy = EXPERIMENTS["pay_copy"]
    people = [f"cus-{i}" for i in range(12)]
    at = (NOW - timedelta(minutes=10)).isoformat()
    sent = [{"experiment": "pay_copy", "variant": copy.variant_of(p), "user_id": p, "timestamp": at,
             "channel": "web"} for p in people]
    first = c.post("/v1/exposures", json={"exposures": sent}).json()
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (12, 0, [])
    # Logged again (a reload, a retry), later: the same events; the first exposure counts.
    again = c.post("/v1/exposures", json=[{**s, "timestamp": NOW.isoformat()} for s in sent]).json()
    assert (again["accepted"], again["duplicates"]) == (0, 12)
    one = c.post("/v1/exposures", json=sent[0]).json()
    assert one["duplicates"] == 1
    # Their attempts after exposure: everyone pays.
    calls = []
    for i, p in enumerate(people):
        for event, minutes in (("pay_opened", 5), ("paid", 4)):
            calls.append({"type": "track", "event": event, "user_id": p, "channel": "web",
                          "event_id": f"{p}-{event}",
                          "timestamp": (NOW - timedelta(minutes=minutes, seconds=i)).isoformat()})
    assert c.post("/v1/batch", json={"batch": calls}).json()["accepted"] == len(calls)
    want = {v: sum(copy.variant_of(p) == v for p in people) for v in ("control", "short")}
    with server.client(keys["secret"]) as api:
        deadline = time.monotonic() + 10
        while True:
            r = api.get("/v1/analyses/experiment", params={"experiment": "pay_copy"})
            assert r.status_code == 200, r.text
            rows = r.json()["tables"]["exposure"]
            counted = {row["variant"]: row["exposed"] for row in rows}
            if counted == want or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    # Decide's 150-odd assignments recorded nothing: only the 12 persons logged count.
    assert counted == want


def test_the_python_client_asks_for_a_variant_and_logs_its_exposure(served):
    server, _, keys = served
    form = EXPERIMENTS["signup_form"]
    with mj.Client(server.url, keys["write"]) as client:
        assert client.variant("signup_form", user_id="cus-99") == form.variant_of("cus-99")
        assert client.variant("signup_form", anonymous_id="an-5") == form.variant_of("an-5")
        assert client.variant("pay_later", user_id="cus-99") is None  # not running
        with pytest.raises(ValueError, match="experiment"):
            client.variant("nope", user_id="cus-99")
        variant = form.variant_of("cus-99")
        d = client.exposure("signup_form", variant, user_id="cus-99", channel="web")
        assert (d.accepted, d.duplicates, d.ok) == (1, 0, True)
        assert client.exposure("signup_form", variant, user_id="cus-99").duplicates == 1
        with pytest.raises(ValueError, match="variant"):
            client.exposure("signup_form", "other", user_id="cus-99")
