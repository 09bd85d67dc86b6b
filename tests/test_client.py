"""The Python client (`microjourney.Client`) against the real collector (`microjourney serve`)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

import microjourney as mj

from .live_server import LiveServer, make_workspace


@pytest.fixture
def collector(tmp_path: Path):
    root = tmp_path / "ws"
    keys = make_workspace(root)
    server = LiveServer(root).start()
    yield server, keys
    server.stop()


def stored(root: Path) -> list[dict]:
    with mj.open(root) as ws:
        rows = ws.con.execute(
            "SELECT event_id, event, user_id, anonymous_id, channel, properties FROM events ORDER BY seq"
        ).fetchall()
    return [{"event_id": r[0], "event": r[1], "user_id": r[2], "anonymous_id": r[3], "channel": r[4],
             "properties": json.loads(r[5]) if r[5] else None} for r in rows]


def counting(client: mj.Client) -> list[int]:
    """Count the requests the client makes (its one HTTP method, wrapped)."""
    sizes: list[int] = []
    post = client._post

    def wrapped(batch):
        sizes.append(len(batch))
        return post(batch)

    client._post = wrapped
    return sizes


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_batches_and_flush(collector):
    server, keys = collector
    with mj.Client(server.url, keys["write_key"], batch_size=10, flush_interval=60) as client:
        sizes = counting(client)
        ids = [client.track("step_done", user_id=f"u{i % 3}", channel="app", properties={"n": i})
               for i in range(10)]
        wait_for(lambda: client.pending == 0)  # a full batch goes without waiting for the interval
        assert sizes == [10]
        ids += [client.track("step_done", anonymous_id="a1", properties={"n": i}) for i in range(10, 25)]
        delivery = client.flush()
        assert sizes == [10, 10, 5]
        assert (delivery.accepted, delivery.duplicates, delivery.rejected) == (25, 0, [])
        assert delivery.ok
    with mj.Client(server.url, keys["write_key"], flush_interval=0.1) as client:
        sizes = counting(client)
        ids.append(client.track("late", user_id="u9"))
        wait_for(lambda: client.pending == 0)  # the interval sends a partial batch on its own
        assert sizes == [1]
    server.stop()
    rows = stored(server.root)
    assert [r["event_id"] for r in rows] == ids  # in order, once each
    assert rows[0]["channel"] == "app" and rows[0]["properties"] == {"n": 0}
    assert rows[-1]["channel"] == "other" and rows[-1]["event"] == "late"


def test_a_bad_event_is_reported_and_the_rest_stored(collector):
    server, keys = collector
    with mj.Client(server.url, keys["write_key"]) as client:
        good = client.track("ok", user_id="u1")
        bad = client.track("ok", user_id="u1", timestamp="yesterday")
        good2 = client.track("ok", user_id="u1", timestamp="2026-01-02T03:04:05+01:00")
        delivery = client.flush()
    assert delivery.accepted == 2
    assert len(delivery.rejected) == 1
    rejection = delivery.rejected[0]
    assert (rejection.id, rejection.type, rejection.field) == (bad, "track", "timestamp")
    assert rejection.reason
    assert not delivery.ok
    server.stop()
    assert [r["event_id"] for r in stored(server.root)] == [good, good2]


def test_retries_after_the_server_restarts(collector):
    server, keys = collector
    client = mj.Client(server.url, keys["write_key"], batch_size=4, flush_interval=0.05, max_retries=10)
    try:
        first = [client.track("before", user_id="u1") for _ in range(3)]
        assert client.flush().accepted == 3
        server.stop()
        later = [client.track("during", user_id="u1", properties={"n": i}) for i in range(6)]
        time.sleep(1.0)  # the client has tried and failed meanwhile
        assert client.pending == 6
        server.start()  # same port
        delivery = client.flush(timeout=90)
        assert (delivery.accepted, delivery.rejected) == (6, [])
        # Sending an event again (the same event_id) stores nothing new.
        client.track("during", user_id="u1", properties={"n": 0}, event_id=later[0])
        again = client.flush()
        assert (again.accepted, again.duplicates) == (0, 1)
    finally:
        client.close()
    server.stop()
    rows = stored(server.root)
    assert [r["event_id"] for r in rows] == first + later
    assert [r["properties"]["n"] for r in rows[3:]] == list(range(6))


def test_429_is_retried_after_retry_after(tmp_path):
    root = tmp_path / "ws"
    keys = make_workspace(root, server="{rate_limit: 1, burst: 1}")
    with LiveServer(root) as server:
        with mj.Client(server.url, keys["write_key"], batch_size=1, flush_interval=60) as client:
            sizes = counting(client)
            for i in range(3):
                client.track("limited", user_id="u1", properties={"n": i})
            delivery = client.flush(timeout=60)
        assert (delivery.accepted, delivery.rejected) == (3, [])
        assert len(sizes) > 3  # some requests were answered 429 and sent again
    assert [r["properties"]["n"] for r in stored(root)] == [0, 1, 2]


def test_identify_and_alias_are_accepted(collector):
    server, keys = collector
    with mj.Client(server.url, keys["write_key"]) as client:
        client.track("browse", anonymous_id="anon-1", channel="web")
        identify = client.identify("user-1", anonymous_id="anon-1", traits={"plan": "gold"})
        alias = client.alias("old-user-1", "user-1")
        client.track("buy", user_id="user-1", channel="web")
        delivery = client.flush()
    assert delivery.rejected == []
    assert delivery.accepted == 4
    assert identify != alias
    server.stop()
    assert [r["event"] for r in stored(server.root)] == ["browse", "buy"]


def test_refusals_are_not_retried(collector):
    server, keys = collector
    with mj.Client(server.url, "not-a-key", max_retries=5) as client:
        sizes = counting(client)
        event_id = client.track("x", user_id="u1")
        started = time.monotonic()
        delivery = client.flush()
    assert time.monotonic() - started < 5
    assert sizes == [1]  # a 401 is final
    assert [(r.id, r.field) for r in delivery.rejected] == [(event_id, None)]
    assert delivery.rejected[0].reason.startswith("401")


def test_gives_up_after_max_retries(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = mj.Client(f"http://127.0.0.1:{port}", "k", max_retries=1)
    sizes = counting(client)
    event_id = client.track("x", user_id="u1")
    delivery = client.close(timeout=30)
    assert sizes == [1, 1]
    assert [r.id for r in delivery.rejected] == [event_id]
    assert "not delivered after 2 tries" in delivery.rejected[0].reason
    with pytest.raises(RuntimeError, match="closed"):
        client.track("y", user_id="u1")


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="http"):
        mj.Client("127.0.0.1:8080", "k")
    with mj.Client("http://127.0.0.1:9", "k", flush_interval=60) as client:
        with pytest.raises(ValueError, match="user_id or anonymous_id"):
            client.track("x")
        with pytest.raises(ValueError, match="channel"):
            client.track("x", user_id="u", channel="fax")
        with pytest.raises(ValueError, match="previous_id"):
            client.alias("", "u")


def test_redirects_are_not_followed():
    """The client talks to the host it was given only: a 3xx is final, never followed."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Redirect(Elsewhere):
        def do_POST(self):  # noqa: N802
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/v1/batch")
            self.end_headers()

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    redirecting = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    for s in (other, redirecting):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        with mj.Client(f"http://127.0.0.1:{redirecting.server_address[1]}", "k") as client:
            event_id = client.track("x", user_id="u1")
            delivery = client.flush()
    finally:
        for s in (other, redirecting):
            s.shutdown()
            s.server_close()
    assert hits == []
    assert [(r.id, r.field) for r in delivery.rejected] == [(event_id, None)]
    assert delivery.rejected[0].reason.startswith("307")
