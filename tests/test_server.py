"""The collector and HTTP API: a real server process on 127.0.0.1, a real store."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

import microjourney as mj

from .helpers import T0, track
from .live_server import LiveServer


def workspace(root: Path, yaml: str = "") -> Path:
    """A new workspace in ``root`` whose microjourney.yaml is ``yaml``."""
    mj.init(root).close()
    if yaml:
        (root / "microjourney.yaml").write_text(yaml, encoding="utf-8")
    return root


def keys(root: Path) -> dict[str, str]:
    k = mj.workspace.keys(root)
    return {"write_key": k.write_key, "secret_key": k.secret_key, "viewer_key": k.viewer_key}


def Server(root: Path) -> LiveServer:  # noqa: N802 - reads as a constructor
    return LiveServer(root).start()


@pytest.fixture
def served(tmp_path: Path):
    """A server of its own, for tests that look into its store afterwards."""
    root = workspace(tmp_path / "ws", "server: {rate_limit: 1000, burst: 1000}\n")
    k = keys(root)
    with LiveServer(root) as server:
        yield server, k


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only look at answers."""
    root = workspace(tmp_path_factory.mktemp("shared") / "ws", "server: {rate_limit: 1000, burst: 1000}\n")
    k = keys(root)
    with LiveServer(root) as server:
        yield server, k


def stored(root: Path, sql: str) -> list[tuple]:
    with mj.open(root) as ws:
        return ws.con.execute(sql).fetchall()


def test_a_batch_stores_the_good_calls_and_says_which_were_rejected(served):
    server, k = served
    batch = [track(1), track(2, timestamp="2026-11-02 10:00:00"), {"type": "page", "event_id": "p1",
             "timestamp": f"{T0}Z", "anonymous_id": "a1", "properties": {"url": "https://x.test/pay?q=1"}},
             track(3, channel="fax"), {"type": "nope"}, 7, track(4, user_id=None, anonymous_id=None)]
    with server.client(k["write_key"]) as c:
        r = c.post("/v1/batch", json={"batch": batch})
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["accepted"] == 2 and body["duplicates"] == 0
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [
        (1, "timestamp"), (3, "channel"), (4, "type"), (5, None), (6, "user_id")]
    assert body["rejected"][0]["reason"].endswith("has no time zone offset (give one)")
    assert "unknown channel fax" in body["rejected"][1]["reason"]
    server.stop()
    rows = stored(server.root, "SELECT event_id, event, json_extract_string(properties, '$.page'), "
                               "source FROM events ORDER BY seq")
    assert rows == [("e1", "payment_gateway_loaded", None, "http"), ("p1", "page_viewed", "/pay", "http")]
    reasons = stored(server.root, "SELECT field, reason FROM quarantine ORDER BY field NULLS FIRST")
    assert [f for f, _ in reasons] == [None, "channel", "timestamp", "type", "user_id"]


def test_a_retried_batch_is_stored_once(served):
    server, k = served
    batch = [track(i) for i in range(50)]
    with server.client(k["write_key"]) as c:
        first = c.post("/v1/batch", json={"batch": batch}).json()
        again = c.post("/v1/batch", json={"batch": batch + [track(50)]}).json()
        twice = c.post("/v1/batch", json={"batch": [track(60), track(60)]}).json()
    assert (first["accepted"], first["duplicates"]) == (50, 0)
    assert (again["accepted"], again["duplicates"]) == (1, 50)
    assert (twice["accepted"], twice["duplicates"]) == (1, 1)
    server.stop()
    assert stored(server.root, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(52, 52)]


def test_calls_without_ids_are_idempotent_by_content(shared):
    server, k = shared
    call = track(1)
    del call["event_id"]
    with server.client(k["write_key"]) as c:
        assert c.post("/v1/batch", json={"batch": [call]}).json()["accepted"] == 1
        assert c.post("/v1/batch", json={"batch": [call]}).json()["duplicates"] == 1


def test_keys_and_roles(shared):
    server, k = shared
    with server.client() as c:
        none = c.post("/v1/batch", json={"batch": []})
        wrong = c.post("/v1/batch", json={"batch": []}, headers={"Authorization": "Bearer mjw_nope"})
        write_reads = c.get("/v1/summary", headers={"Authorization": f"Bearer {k['write_key']}"})
        secret_reads = c.get("/v1/summary", headers={"Authorization": f"Bearer {k['secret_key']}"})
        in_body = c.post("/v1/batch", content=httpx.Request("POST", "/", json={
            "key": k["write_key"], "batch": [track(1)]}).content, headers={"Content-Type": "text/plain"})
        viewer = {"Authorization": f"Bearer {k['viewer_key']}"}
        viewer_sends = c.post("/v1/batch", json={"batch": [track(2)]}, headers=viewer)
        viewer_reads = c.get("/v1/analyses/scorecard", headers=viewer)
    assert (none.status_code, none.json()["error"]["code"]) == (401, "auth/missing-key")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "auth/bad-key")
    assert (write_reads.status_code, write_reads.json()["error"]["code"]) == (403, "auth/forbidden")
    assert secret_reads.status_code == 200 and secret_reads.json()["ok"] is True
    assert in_body.status_code == 200 and in_body.json()["accepted"] == 1  # as navigator.sendBeacon
    # The viewer key signs in to the dashboard only: the API refuses it, for events too.
    for refused in (viewer_sends, viewer_reads):
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "auth/forbidden")
        assert "dashboard" in refused.json()["error"]["message"]


def test_a_key_file_without_a_viewer_key_gains_one_and_keeps_the_others(tmp_path):
    import json

    root = workspace(tmp_path / "ws")
    before = keys(root)
    path = root / ".microjourney" / "keys.json"
    path.write_text(json.dumps({"write_key": before["write_key"], "secret_key": before["secret_key"]}))
    after = keys(root)
    assert after["viewer_key"].startswith("mjv_")
    assert (after["write_key"], after["secret_key"]) == (before["write_key"], before["secret_key"])
    assert keys(root) == after  # made once
    rotated = mj.workspace.keys(root, rotate=True)
    assert rotated.viewer_key != after["viewer_key"] and rotated.secret_key != after["secret_key"]


def test_every_error_has_the_same_envelope(shared):
    server, k = shared
    with server.client(k["write_key"]) as c:
        answers = [c.post("/v1/batch", content=b"{not json"), c.post("/v1/batch", json={"calls": []}),
                   c.post("/v1/batch"), c.get("/v1/nowhere"), c.put("/v1/batch", json={}),
                   c.get("/v1/summary")]
    assert [a.status_code for a in answers] == [400, 400, 400, 404, 405, 403]
    for a in answers:
        body = a.json()
        assert set(body) == {"ok", "status", "error"} and body["ok"] is False
        assert body["status"] == a.status_code
        assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    assert [a.json()["error"]["code"] for a in answers[:2]] == ["request/bad-json", "request/bad-batch"]
    with server.client(k["write_key"]) as c:
        many = c.post("/v1/batch", json={"batch": [{}] * 5001})
    assert (many.status_code, many.json()["error"]["code"]) == (413, "request/too-many-calls")


def test_the_lean_road_answers_as_the_app_does(shared):
    """A back-end's request (key in the header, no Origin) is answered by the app's lean road;
    the key in the body, or an Origin, takes the framework's: the answers are the same."""
    server, k = shared
    key = k["write_key"]

    def both(batch_of):  # ids of their own for each road
        lean = c.post("/v1/batch", json=batch_of(9000), headers={"Authorization": f"Bearer {key}"})
        app = c.post("/v1/batch", json={**batch_of(9100), "key": key})
        return lean, app

    with server.client() as c:
        answers = [
            both(lambda base: {"batch": [track(base + 1), track(base + 2, channel="fax"), 7]}),
            both(lambda base: {"batch": [track(base + 3)] * 2}),
            both(lambda base: {"calls": []}),
            both(lambda base: {"batch": [{}] * 5001}),
        ]
        # A body without a length, larger than the limit, is refused while it is read.
        chunked = c.post("/v1/batch", content=iter([b'{"batch": [' + b" " * 600_000] * 2),
                         headers={"Authorization": f"Bearer {key}"})
    for lean, app in answers:
        assert lean.status_code == app.status_code
        assert lean.headers["content-type"] == app.headers["content-type"] == "application/json"
        assert int(lean.headers["content-length"]) == len(lean.content)
        assert lean.json() == app.json()
    assert [a.status_code for a, _ in answers] == [200, 200, 400, 413]
    assert (answers[0][0].json()["accepted"], len(answers[0][0].json()["rejected"])) == (1, 2)
    assert (answers[1][0].json()["accepted"], answers[1][0].json()["duplicates"]) == (1, 1)
    assert "content-length" not in chunked.request.headers
    assert (chunked.status_code, chunked.json()["error"]["code"]) == (413, "request/too-large")


def test_answered_events_are_read_at_once_though_journaled(served):
    """Plain events are answered once journaled; the API still reads every one answered."""
    server, k = served
    with server.client(k["write_key"]) as c:
        for first in range(0, 1000, 100):
            assert c.post("/v1/batch", json={"batch": [track(i) for i in range(first, first + 100)]}
                          ).json()["accepted"] == 100
        summary = c.get("/v1/summary", headers={"Authorization": f"Bearer {k['secret_key']}"}).json()
    assert summary["events"] == 1000
    server.stop()
    journal = server.root / ".microjourney" / "journal"
    assert journal.is_dir() and not list(journal.glob("*"))  # all stored, then emptied


def test_rotated_keys_replace_the_old_ones_while_serving(served):
    server, k = served
    new = mj.workspace.keys(server.root, rotate=True)
    assert new.write_key != k["write_key"]
    time.sleep(1.2)  # the server looks at the key file at most once a second
    with server.client() as c:
        old = c.post("/v1/batch", json={"batch": []}, headers={"Authorization": f"Bearer {k['write_key']}"})
        ok = c.post("/v1/batch", json={"batch": []}, headers={"Authorization": f"Bearer {new.write_key}"})
    assert old.status_code == 401 and ok.status_code == 200


def test_limits_on_size_rate_and_origin(tmp_path):
    root = workspace(tmp_path / "ws", "server:\n  max_body: 2000\n  rate_limit: 1\n  burst: 3\n"
                     "  cors_origins: ['http://127.0.0.1:9999']\n")
    k = keys(root)
    with LiveServer(root) as server, server.client(k["write_key"]) as c:
        big = c.post("/v1/batch", json={"batch": [track(i) for i in range(40)]})
        assert (big.status_code, big.json()["error"]["code"]) == (413, "request/too-large")
        foreign = c.post("/v1/batch", json={"batch": []}, headers={"Origin": "http://evil.test"})
        assert (foreign.status_code, foreign.json()["error"]["code"]) == (403, "cors/origin")
        pre = c.options("/v1/batch", headers={"Origin": "http://127.0.0.1:9999",
                                              "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "authorization"})
        assert pre.headers["access-control-allow-origin"] == "http://127.0.0.1:9999"
        allowed = c.post("/v1/batch", json={"batch": []}, headers={"Origin": "http://127.0.0.1:9999"})
        assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:9999"
        statuses = [c.post("/v1/batch", json={"batch": []}) for _ in range(4)]
        limited = [s for s in statuses if s.status_code == 429]
        assert limited and int(limited[0].headers["retry-after"]) >= 1
        assert limited[0].json()["error"]["code"] == "request/rate-limited"


def test_openapi_documents_the_batch_shapes(shared):
    server, _ = shared
    with server.client() as c:
        spec = c.get("/openapi.json").json()
    body = spec["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/BatchRequest"}
    schemas = spec["components"]["schemas"]
    assert {"Track", "Page", "Identify", "Alias", "BatchAnswer", "ErrorEnvelope"} <= set(schemas)
    assert set(schemas["ErrorEnvelope"]["properties"]) == {"ok", "status", "error"}
    assert set(schemas["BatchAnswer"]["properties"]) == {"ok", "accepted", "duplicates", "withheld",
                                                          "rejected"}


def test_acknowledged_events_survive_a_kill_and_are_stored_once_after_retries(tmp_path):
    """SIGKILL in the middle of a bounded load; clients retry what was not acknowledged
    (and, to prove idempotence, what was); every event ends up stored exactly once."""
    root = workspace(tmp_path / "ws", "server: {rate_limit: 100000, burst: 100000}\n")
    k = keys(root)
    batches = {(t, b): [track(t * 100_000 + b * 50 + i) for i in range(50)]
               for t in range(4) for b in range(60)}
    acked: set[tuple[int, int]] = set()
    lock = threading.Lock()

    def send(url: str, todo: list[tuple[int, int]]) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {k['write_key']}"},
                          timeout=10) as c:
            for key in todo:
                try:
                    r = c.post("/v1/batch", json={"batch": batches[key]})
                except httpx.HTTPError:
                    continue  # not acknowledged: retried later
                if r.status_code == 200 and not r.json()["rejected"]:
                    with lock:
                        acked.add(key)

    server = Server(root)
    threads = [threading.Thread(target=send, args=(server.url, [(t, b) for b in range(60)]))
               for t in range(4)]
    for th in threads:
        th.start()
    deadline = time.monotonic() + 20
    while len(acked) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    for th in threads:
        th.join()
    before_restart = set(acked)
    assert 40 <= len(before_restart) < len(batches), "the kill must land in the middle of the load"

    server = Server(root)
    send(server.url, sorted(batches))  # every batch again: the unacknowledged and the acknowledged
    assert acked == set(batches)
    server.stop()
    total, distinct = stored(root, "SELECT count(*), count(DISTINCT event_id) FROM events")[0]
    assert total == distinct == 4 * 60 * 50
    ids = {r[0] for r in stored(root, "SELECT event_id FROM events")}
    assert all(c["event_id"] in ids for key in before_restart for c in batches[key])


def test_graceful_stop_commits_what_is_queued(served):
    server, k = served
    with server.client(k["write_key"]) as c:
        for b in range(5):
            batch = [track(b * 10 + i) for i in range(10)]
            assert c.post("/v1/batch", json={"batch": batch}).status_code == 200
    assert server.stop() in (0, -15)  # uvicorn ends by the signal it handled, after the shutdown
    assert stored(server.root, "SELECT count(*) FROM events") == [(50,)]


def test_no_documented_request_gets_a_server_error(shared):
    """schemathesis generates requests from the OpenAPI document (sent with the secret key,
    so that every endpoint is reached); none may be answered 5xx."""
    server, k = shared
    api = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/batch", "/v1/summary", "/v1/persons/{person}"}
    headers = {"Authorization": f"Bearer {k['secret_key']}"}
    answered: dict[str, set[int]] = {}

    def check(case) -> None:
        response = case.call(base_url=server.url, headers=headers)
        where = f"{case.operation.method.upper()} {case.operation.path}"
        answered.setdefault(where, set()).add(response.status_code)
        assert response.status_code < 500, f"{where}: {response.text}"

    budget = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
    for op in operations:
        budget(given(case=op.as_strategy())(check))()
    assert len(answered) == len(operations)
    assert 200 in answered["POST /v1/batch"]
    assert answered["DELETE /v1/persons/{person}"] == {404}  # reached: no such person


def test_a_person_is_erased_over_http_with_the_secret_key_only(served):
    server, k = served
    with server.client(k["write_key"]) as c:
        c.post("/v1/batch", json={"batch": [track(1, user_id="ana"), track(2, user_id="ben")]})
        refused = c.delete("/v1/persons/ana")
        erased = c.delete("/v1/persons/ana", headers={"Authorization": f"Bearer {k['secret_key']}"})
        again = c.delete("/v1/persons/ana", headers={"Authorization": f"Bearer {k['secret_key']}"})
    assert refused.status_code == 403
    assert erased.status_code == 200 and erased.json()["ok"] is True
    assert "ana" not in erased.text  # the answer, like the erasure log, names no one
    assert (again.status_code, again.json()["error"]["code"]) == (404, "query/person")
    server.stop()
    assert stored(server.root, "SELECT user_id FROM events") == [("ben",)]


def test_serving_a_folder_without_a_workspace_is_a_clear_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "microjourney", "serve", "-w", str(tmp_path), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "[workspace/missing]" in done.stderr and "Traceback" not in done.stderr


def test_without_consent_events_are_counted_not_stored_when_consent_is_required(tmp_path):
    root = workspace(tmp_path / "ws", "privacy: {consent: required}\n")
    k = keys(root)
    yes = {"consent": {"analytics": True}}
    batch = [track(1, context=yes), track(2), track(3, context={"consent": {"analytics": "true"}}),
             track(4), track(4, context=yes)]  # a withheld call holds no id: its consented retry counts
    with LiveServer(root) as server, server.client(k["write_key"]) as c:
        body = c.post("/v1/batch", json={"batch": batch}).json()
    assert (body["accepted"], body["withheld"], body["duplicates"]) == (2, 3, 0)
    assert stored(root, "SELECT event_id FROM events ORDER BY event_id") == [("e1",), ("e4",)]
    assert stored(root, "SELECT value FROM meta WHERE key = 'consent_withheld'") == [("3",)]


def test_serve_lake_appends_acknowledged_events_to_the_lake(tmp_path):
    """``serve --lake``: events go to Parquet files (fsynced before the answer), judged as in
    the store; retries are found in the lake; rejected calls go to the store's quarantine;
    after a SIGKILL and a restart the lake holds every acknowledged event once."""
    root = workspace(tmp_path / "ws")
    lake = tmp_path / "lake"
    k = keys(root)
    first = [track(i) for i in range(30)] + [track(99, channel="fax")]
    cmd_server = subprocess.Popen([sys.executable, "-m", "microjourney", "serve", "-w", str(root),
                                   "--port", "0", "--lake", str(lake)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = cmd_server.stdout.readline().split()[-1]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {k['write_key']}"}) as c:
        a = c.post("/v1/batch", json={"batch": first}).json()
        # The lake was empty when the server started: a retry is still found in it.
        retry = c.post("/v1/batch", json={"batch": first[:5]}).json()
        # ... and the API reads the lake, not the (empty) store.
        summary = c.get("/v1/summary", headers={"Authorization": f"Bearer {k['secret_key']}"}).json()
    cmd_server.kill()  # no graceful stop: what was acknowledged must already be in the lake
    cmd_server.wait()
    cmd_server.stdout.close()
    assert (a["accepted"], [r["field"] for r in a["rejected"]]) == (30, ["channel"])
    assert (retry["accepted"], retry["duplicates"]) == (0, 5)
    assert summary["events"] == 30, summary
    again = subprocess.Popen([sys.executable, "-m", "microjourney", "serve", "-w", str(root),
                              "--port", "0", "--lake", str(lake)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = again.stdout.readline().split()[-1]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {k['write_key']}"}) as c:
        b = c.post("/v1/batch", json={"batch": first[:10] + [track(40)]}).json()
    again.terminate()
    again.wait(60)
    again.stdout.close()
    assert (b["accepted"], b["duplicates"]) == (1, 10)
    with mj.open(root, engine="duckdb", lake=lake) as ws:
        events = ws.events().to_pyarrow()
        assert sorted(events.column("event_id").to_pylist()) == sorted(
            [f"e{i}" for i in range(30)] + ["e40"])
        assert sorted(events.column("seq").to_pylist()) == list(range(1, 32))
    assert stored(root, "SELECT count(*) FROM events") == [(0,)]
    assert stored(root, "SELECT field FROM quarantine") == [("channel",)]
