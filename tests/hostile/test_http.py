"""Hostile HTTP: what a client holding the public write key can send the collector.

Every test talks to a real server on 127.0.0.1 (``microjourney serve`` in a subprocess, or
uvicorn in a thread where a test needs a setting the command does not take) with a real
store. Bounds: every request has a timeout, the fuzz test a count and a wall-clock budget,
and the server's peak memory (VmHWM of its process) is checked after the hostile bodies.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import microjourney as mj
from microjourney.server.app import create_app

from ..helpers import track
from ..live_server import LiveServer

EMAIL = "ann.smith@example.com"
CARD = "4111 1111 1111 1111"
#: Where a body may carry a value: what the fast road (track calls with ids) holds raw.
TRACK = (b'{"batch":[{"event_id":"%s","event":"x","timestamp":"2026-01-02T03:04:05Z",'
         b'"anonymous_id":"a","properties":%s}]}')
#: Fragments a careful attacker puts where JSON goes.
FRAGMENTS = [
    b'{"a":"\xff\xfe"}', b'{"a":"\xc3"}', b'{"a":"\\ud800"}', b'{"a":"\\udc00x"}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 1100 + b"1" + b"}" * 1100, b'{"a":1e999}', b'{"a":-1e400}',
    b'{"a":123456789012345678901234567890123456789}', b'{"a":NaN}', b'{"a":Infinity}',
    b'{"a":1,"a":2}', b'"{\\"a\\":1}"', b"7", b"true", b'{"a":"\\u0000"}', b'{"a":"' + b"\x00" + b'"}',
    b"{", b'{"a":}', b'{"a":"' + b"x" * 200_000 + b'"}', b"[]", b'{"":{"":{"":[]}}}',
]
MB = 1024


def envelope_ok(response: httpx.Response) -> None:
    """A 4xx answer is the API's JSON error envelope."""
    assert response.headers["content-type"] == "application/json", response.text[:200]
    body = response.json()
    assert set(body) == {"ok", "status", "error"} and body["ok"] is False
    assert body["status"] == response.status_code
    assert set(body["error"]) == {"code", "message"} and body["error"]["code"] and body["error"]["message"]


def workspace(root: Path, yaml: str = "server: {rate_limit: 100000, burst: 100000}\n") -> dict[str, str]:
    mj.init(root).close()
    spec = root / "microjourney.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + yaml, encoding="utf-8")
    k = mj.workspace.keys(root)
    return {"write": k.write_key, "secret": k.secret_key}


def peak_rss_kb(server: LiveServer) -> int:
    """The server's peak resident memory so far (Linux: VmHWM)."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def stored(root: Path, sql: str) -> list[tuple]:
    with mj.open(root) as ws:
        return ws.con.execute(sql).fetchall()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "ws"
    k = workspace(root, "server: {rate_limit: 100000, burst: 100000, cors_origins: ['http://app.test']}\n")
    with LiveServer(root) as server:
        yield server, k


class InThread:
    """The real app served by uvicorn in a thread on 127.0.0.1 (for settings ``serve`` does
    not take, and to read the app's log records)."""

    def __init__(self, app) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on",
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)


# -- 1. every request is judged alone; no 5xx for any body ------------------------------

bodies = st.one_of(
    st.binary(max_size=400),
    st.tuples(st.uuids(), st.sampled_from(range(len(FRAGMENTS))))  # indices: a short repr
    .map(lambda t: TRACK % (str(t[0]).encode(), FRAGMENTS[t[1]])),
    st.lists(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                          | st.text(max_size=20),
                          lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.sampled_from(["type", "event", "event_id", "timestamp",
                                                              "user_id", "previous_id", "traits",
                                                              "properties", "context", "x"]),
                                            inner, max_size=6), max_leaves=30),
             max_size=6).map(lambda calls: json.dumps({"batch": calls}).encode()),  # any integer
    st.sampled_from(["identify", "alias", "page", "track"]).flatmap(lambda kind: st.fixed_dictionaries({
        "type": st.just(kind), "user_id": st.sampled_from(["u1", "", "   ", None, 5]),
        "previous_id": st.sampled_from(["p1", "", None]), "anonymous_id": st.sampled_from(["a1", None, 3]),
        "timestamp": st.sampled_from(["2026-01-02T03:04:05Z", "2026-01-02", "275760-09-13T00:00:00Z",
                                      "0001-01-01T00:00:00+00:00", None, 7]),
        "traits": st.sampled_from([{"email": EMAIL}, "x", None, [1]]),
        "context": st.sampled_from([{"consent": {"analytics": True}}, '{"consent":{}}', None, 1]),
    })).map(lambda call: orjson.dumps({"batch": [call]})),
)


def test_no_hostile_body_gets_a_server_error(shared):
    """Hypothesis sends hostile bodies (bad UTF-8, lone surrogates, deep nesting, huge numbers,
    NaN, repeated keys, wrong types, random bytes); none is answered 5xx, every 4xx is the
    envelope, every 200 accounts for each call; reads still work afterwards and the server's
    memory stays bounded."""
    server, k = shared
    started = time.monotonic()
    with server.client(k["write"]) as c:

        @settings(max_examples=120, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(body=bodies)
        def check(body: bytes) -> None:
            r = c.post("/v1/batch", content=body, headers={"Content-Type": "application/json"})
            assert r.status_code < 500, (body[:200], r.text[:300])
            if r.status_code >= 400:
                envelope_ok(r)
                return
            answer = r.json()
            calls = json.loads(body)["batch"]  # answered 200: a batch (1e999 parses here)
            assert answer["accepted"] + answer["duplicates"] + answer["withheld"] \
                + len(answer["rejected"]) == len(calls)

        check()
        for fragment in FRAGMENTS:  # each fragment at least once, whatever Hypothesis drew
            r = c.post("/v1/batch", content=TRACK % (b"f-%d" % FRAGMENTS.index(fragment), fragment))
            assert r.status_code < 500, (fragment[:60], r.text[:300])
        assert c.get("/healthz").status_code == 200
        summary = c.get("/v1/summary", headers={"Authorization": f"Bearer {k['secret']}"})
        assert summary.status_code == 200, summary.text
    assert time.monotonic() - started < 300
    assert peak_rss_kb(server) < 1500 * MB


def test_good_requests_are_stored_beside_bad_ones_in_the_same_groups(tmp_path):
    """150 good requests with the write key and 50 bad ones (invalid UTF-8 inside properties)
    with the secret key, all at once: every good one is answered 200 and stored once, every
    bad one 400."""
    root = tmp_path / "ws"
    k = workspace(root)

    async def send(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as c:
            good = [c.post("/v1/batch", json={"batch": [track(r * 10 + i) for i in range(10)]},
                           headers={"Authorization": f"Bearer {k['write']}"}) for r in range(150)]
            note = b'{"note":"\xff ' + EMAIL.encode() + b'"}'
            bad = [c.post("/v1/batch", content=TRACK % (b"bad-%d" % r, note),
                          headers={"Authorization": f"Bearer {k['secret']}"}) for r in range(50)]
            mixed = [x for pair in zip(good[:50], bad, strict=True) for x in pair] + good[50:]
            return await asyncio.gather(*mixed)

    with LiveServer(root) as server:
        answers = asyncio.run(send(server.url))
    good = [a for a in answers if a.request.headers["authorization"].endswith(k["write"])]
    bad = [a for a in answers if a.request.headers["authorization"].endswith(k["secret"])]
    assert [a.status_code for a in good] == [200] * 150
    assert all(a.json()["accepted"] == 10 for a in good)
    assert {a.status_code for a in bad} == {400}
    for a in bad:
        envelope_ok(a)
        assert a.json()["error"]["code"] == "request/bad-json"
    assert stored(root, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(1500, 1500)]


# -- 2. logs hold no body and no personal data -------------------------------------------

def test_the_log_holds_no_body_nor_personal_data(tmp_path):
    """Bodies carrying an e-mail address and a card number, each failing somewhere (bad
    UTF-8, nesting, a blank id, a bad timestamp, not JSON, too large): the server's log
    (its stderr) holds neither, nor a traceback."""
    root = tmp_path / "ws"
    k = workspace(root, "server: {rate_limit: 100000, burst: 100000, max_body: 100000}\n")
    pii = f'"{EMAIL} {CARD}"'.encode()
    failing = [
        TRACK % (b"l1", b'{"note":' + pii + b',"x":"\xff"}'),
        TRACK % (b"l2", b'{"note":' + pii + b',"deep":' + b"[" * 3000 + b"]" * 3000 + b"}"),
        b'{"batch":[{"type":"identify","user_id":"  ","traits":{"email":' + pii + b"}}]}",
        b'{"batch":[{"type":"page","timestamp":"275760-09-13T00:00:00Z","anonymous_id":' + pii + b"}]}",
        b'{"batch":[{"event":' + pii + b",}]}",
        b'{"batch":[{"event":' + pii + b',"pad":"' + b"x" * 200_000 + b'"}]}',
    ]
    with LiveServer(root) as server, server.client(k["write"]) as c:
        statuses = [c.post("/v1/batch", content=body).status_code for body in failing]
    assert all(s < 500 for s in statuses), statuses
    log = server.log.read_text(errors="replace")
    assert EMAIL not in log and CARD not in log and "Traceback" not in log


def test_an_unexpected_failure_is_logged_as_a_reference_only(tmp_path, caplog):
    """A handler that fails with personal data in its message: the answer is the 500
    envelope with a reference; the log holds the reference and the failure's kind, not the
    message nor a traceback (uvicorn logs none either)."""
    root = tmp_path / "ws"
    workspace(root)
    app = create_app(root)

    @app.get("/fails")
    async def fails() -> None:
        raise RuntimeError(f"could not store {EMAIL} {CARD}")

    with caplog.at_level("INFO"), InThread(app) as url, httpx.Client(base_url=url, timeout=30) as c:
        r = c.get("/fails")
    assert r.status_code == 500
    envelope_ok(r)
    ref = r.json()["error"]["message"].split("ref ")[1].split(")")[0]
    text = "\n".join(f"{rec.name} {rec.getMessage()} {rec.exc_info}" for rec in caplog.records)
    assert f"ref={ref}" in text and "RuntimeError" in text
    assert EMAIL not in text and CARD not in text
    assert not any(rec.exc_info for rec in caplog.records)


# -- 3. timestamps ------------------------------------------------------------------------

OUTSIDE = ["275760-09-13T00:00:00Z", "-0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
           "2026-01-02T03:04:05+99:00", "2026-01-02T03:04:05+14:30", "2126-01-02T03:04:05Z"]


def test_identify_and_alias_timestamps_outside_the_range_are_rejected(shared):
    server, k = shared
    calls = [{"type": "identify", "user_id": "u-ts", "timestamp": ts} for ts in OUTSIDE]
    calls += [{"type": "alias", "previous_id": "p", "user_id": "u-ts", "timestamp": OUTSIDE[0]},
              {"type": "identify", "user_id": "u-ts", "timestamp": "2026-01-02T03:04:05+14:00"}]
    with server.client(k["write"]) as c:
        answer = c.post("/v1/batch", json={"batch": calls}).json()
    assert answer["accepted"] == 1
    assert [(r["index"], r["field"]) for r in answer["rejected"]] == [(i, "timestamp") for i in range(7)]
    reasons = [r["reason"] for r in answer["rejected"]]
    assert "beyond ±14:00" in reasons[4] and "before 1970" in reasons[2] and "after its arrival" in reasons[5]


def test_event_timestamps_outside_the_range_are_rejected_and_reads_work(shared):
    """Track calls (the fast road's shape) and page calls (DuckDB's road) with instants
    outside the range are rejected with a reason (by the writer: the plain road never takes
    them); the summary still reads."""
    server, k = shared
    calls = [track(7000 + i, timestamp=ts) for i, ts in enumerate(OUTSIDE)]
    calls += [{"type": "page", "timestamp": ts, "anonymous_id": "a"} for ts in OUTSIDE[:2]]
    calls += [track(7100, timestamp="2026-01-02T03:04:05+14:00")]
    with server.client(k["write"]) as c:
        r = c.post("/v1/batch", json={"batch": calls})
        summary = c.get("/v1/summary", headers={"Authorization": f"Bearer {k['secret']}"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    assert [(x["index"], x["field"]) for x in r.json()["rejected"]] == [(i, "timestamp") for i in range(8)]
    assert summary.status_code == 200, summary.text


# -- 4. consent for every call type ------------------------------------------------------

def test_identify_and_alias_without_consent_are_withheld(tmp_path):
    """With consent required, identify and alias calls are withheld (counted, not stored)
    unless their context grants consent, as events are; the verdict for a repeated key and
    a context sent as a JSON string is the one file ingest gives."""
    root = tmp_path / "ws"
    k = workspace(root, "server: {rate_limit: 1000, burst: 1000}\nprivacy: {consent: required}\n")
    yes = {"consent": {"analytics": True}}
    traits = {"email": EMAIL, "phone": "+44 20 7946 0958"}
    before = [{"type": "identify", "user_id": "u1", "traits": traits, "timestamp": "2026-01-02T03:04:05Z"},
              {"type": "alias", "previous_id": "a1", "user_id": "u1", "timestamp": "2026-01-02T03:04:05Z"}]
    after = [{**call, "context": yes, "user_id": "u2"} for call in before]
    # Contexts whose verdict depends on how JSON is read: the same on both paths.
    tricky = ['{"consent": {"analytics": false, "analytics": true}}',
              '{"consent": {"analytics": true, "analytics": false}}',
              '{"context": "{\\"consent\\": {\\"analytics\\": true}}"}']
    lines = [f'{{"event_id": "c{i}", "event": "x", "timestamp": "2026-01-02T03:04:05Z", '
             f'"anonymous_id": "a", "context": {ctx}}}' if not ctx.startswith('{"context"') else
             f'{{"event_id": "c{i}", "event": "x", "timestamp": "2026-01-02T03:04:05Z", '
             f'"anonymous_id": "a", {ctx[1:-1]}}}' for i, ctx in enumerate(tricky)]
    with LiveServer(root) as server, server.client(k["write"]) as c:
        first = c.post("/v1/batch", json={"batch": before}).json()
        second = c.post("/v1/batch", json={"batch": after}).json()
        over_http = [c.post("/v1/batch", content=f'{{"batch": [{line}]}}'.encode()).json()["withheld"]
                     for line in lines]
    assert (first["accepted"], first["withheld"]) == (0, 2)
    assert (second["accepted"], second["withheld"]) == (2, 0)
    assert stored(root, "SELECT user_id FROM identities ORDER BY user_id") == [("u2",), ("u2",)]
    other = tmp_path / "files"
    workspace(other, "privacy: {consent: required}\n")
    in_files = []
    with mj.open(other) as ws:
        for i, line in enumerate(lines):
            path = tmp_path / f"c{i}.jsonl"
            path.write_text(line + "\n", encoding="utf-8")
            in_files.append(ws.ingest(path).withheld)
    assert over_http == in_files == [0, 1, 0]


# -- 5. origins, CORS, keys, the SDK's headers -------------------------------------------

def test_origins_are_the_configured_ones_and_the_servers_own(shared):
    server, k = shared
    port = server.port
    with server.client(k["write"]) as c:
        refused = c.options("/v1/batch", headers={"Origin": "http://evil.test",
                                                  "Access-Control-Request-Method": "POST"})
        bad_method = c.options("/v1/batch", headers={"Origin": "http://app.test",
                                                     "Access-Control-Request-Method": "PUT"})
        allowed = c.options("/v1/batch", headers={"Origin": "http://app.test",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "content-type"})
        # DNS rebinding: a page of evil.test, resolved to 127.0.0.1, sends Host and Origin alike.
        rebound = c.post("/v1/batch", json={"batch": []}, headers={
            "Host": f"evil.test:{port}", "Origin": f"http://evil.test:{port}"})
        own = c.post("/v1/batch", json={"batch": []}, headers={"Origin": f"http://127.0.0.1:{port}"})
        configured = c.post("/v1/batch", json={"batch": []}, headers={"Origin": "http://app.test"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "cors/origin")
    assert (bad_method.status_code, bad_method.json()["error"]["code"]) == (400, "cors/preflight")
    for r in (refused, bad_method, rebound):
        envelope_ok(r)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://app.test"
    assert (rebound.status_code, rebound.json()["error"]["code"]) == (403, "cors/origin")
    assert own.status_code == 200 and configured.status_code == 200
    assert "retry-after" in configured.headers["access-control-expose-headers"].lower()


def test_retry_after_reaches_the_browser_after_a_429(tmp_path):
    root = tmp_path / "ws"
    k = workspace(root, "server: {rate_limit: 0.5, burst: 1, cors_origins: ['http://app.test']}\n")
    with LiveServer(root) as server, server.client(k["write"]) as c:
        answers = [c.post("/v1/batch", json={"batch": []}, headers={"Origin": "http://app.test"})
                   for _ in range(3)]
    limited = next(a for a in answers if a.status_code == 429)
    envelope_ok(limited)
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["access-control-allow-origin"] == "http://app.test"
    assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
    sdk = (Path(mj.__file__).parent / "sdk" / "microjourney.js").read_text(encoding="utf-8")
    assert "res.headers.get('Retry-After')" in sdk  # read by the SDK once exposed


def test_a_removed_key_file_answers_503_until_keys_exist_again(tmp_path):
    root = tmp_path / "ws"
    k = workspace(root)
    key_file = root / ".microjourney" / "keys.json"
    with LiveServer(root) as server, server.client() as c:
        assert c.post("/v1/batch", json={"batch": []}, headers={"Authorization": f"Bearer {k['write']}"}
                      ).status_code == 200
        key_file.unlink()
        time.sleep(1.1)  # the key file is looked at once a second
        answers = [c.post("/v1/batch", json={"batch": [track(1)]}, headers={"Authorization": f"Bearer {key}"})
                   for key in (k["write"], k["write"], k["secret"])]
        assert c.get("/healthz").status_code == 200
        new = mj.workspace.keys(root)  # `microjourney keys` makes new ones
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            again = c.post("/v1/batch", json={"batch": []},
                           headers={"Authorization": f"Bearer {new.write_key}"})
            if again.status_code == 200:
                break
            time.sleep(0.2)
    for a in answers:
        assert a.status_code == 503 and a.headers["retry-after"]
        envelope_ok(a)
        assert a.json()["error"]["code"] == "server/keys-unavailable"
    assert again.status_code == 200
    assert "Traceback" not in server.log.read_text(errors="replace")


def test_the_sdk_is_served_with_nosniff_an_etag_and_head(shared):
    server, _ = shared
    with server.client() as c:
        first = c.get("/sdk/microjourney.js")
        head = c.head("/sdk/microjourney.js")
        cached = c.get("/sdk/microjourney.js", headers={"If-None-Match": first.headers["etag"]})
        other = c.get("/sdk/microjourney.js", headers={"If-None-Match": '"elsewhere"'})
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/javascript")
    assert first.headers["x-content-type-options"] == "nosniff"
    assert first.headers["etag"].startswith('"') and len(first.content) > 1000
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == first.headers["etag"]
    assert cached.status_code == 304 and cached.content == b""
    assert other.status_code == 200 and other.content == first.content


# -- 6. a slow body ------------------------------------------------------------------------

def _stall(url: str, body: bytes = b'{"batch": [') -> socket.socket:
    """A connection that sends headers announcing 1000 bytes, ``body``, then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=60)
    sock.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n" + body)
    return sock


def test_stalled_bodies_and_headers_do_not_hold_other_clients(shared):
    server, k = shared
    stalled = [_stall(server.url) for _ in range(20)]
    host, port = server.url.removeprefix("http://").split(":")
    half = socket.create_connection((host, int(port)), timeout=10)
    half.sendall(b"POST /v1/batch HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    try:
        with server.client(k["write"]) as c:
            for i in range(20):
                started = time.monotonic()
                r = c.post("/v1/batch", json={"batch": [track(8000 + i)]})
                assert r.status_code == 200 and time.monotonic() - started < 5
    finally:
        for sock in [*stalled, half]:
            sock.close()


def test_a_stalled_body_is_answered_408_and_closed(tmp_path):
    root = tmp_path / "ws"
    k = workspace(root)
    with InThread(create_app(root, body_idle=1.0)) as url:
        sock = _stall(url)
        started = time.monotonic()
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        waited = time.monotonic() - started
        sock.close()
        with httpx.Client(base_url=url, timeout=10) as c:  # the server goes on
            ok = c.post("/v1/batch", json={"batch": [track(1)]},
                        headers={"Authorization": f"Bearer {k['write']}"})
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["error"]["code"] == "request/timeout"
    assert 0.9 <= waited < 8
    assert ok.status_code == 200
