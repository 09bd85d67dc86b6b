"""Alert webhooks (docs/webhooks.md): signed, retried with back-off, at most once per alert and
URL, against a real HTTP receiver on 127.0.0.1 and a real store.

No test sleeps through a back-off: ``sleep`` records the waits; the timeouts are tenths of
a second.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from microjourney.jsonable import dumps
from microjourney.spec.alerts import Webhook
from microjourney.store import deliveries
from microjourney.store.db import connect
from microjourney.webhooks import (
    ALERT_HEADER,
    MAX_RETRY_AFTER,
    SIGNATURE_HEADER,
    deliver,
    origin,
    sign,
    verify,
)

SECRET = "s3cret-of-the-hook"
ENV = {"MJ_HOOK_SECRET": SECRET}
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ALERTS = [
    {"alert_id": "checkout-2026-09-01", "moment": "checkout", "day": date(2026, 9, 1),
     "rate": Decimal("0.25"), "baseline": 0.31, "segments": [{"platform": "ios", "drop": 0.12}]},
    {"alert_id": "login-2026-09-02", "moment": "login", "day": date(2026, 9, 2), "rate": 0.5,
     "baseline": 0.6, "segments": []},
]


@dataclass
class Got:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver: ``answers[path]`` is the script of answers, each a status and its
    headers, or ``"hang"`` (say nothing) or ``"trickle"`` (a head that never ends); the last
    answer repeats. ``got`` holds every request, as it came."""

    url: str = ""
    answers: dict[str, list[object]] = field(default_factory=dict)
    got: list[Got] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, path: str, secret_env: str | None = "MJ_HOOK_SECRET") -> Webhook:
        return Webhook(url=self.url + path, secret_env=secret_env)

    def to(self, path: str) -> list[Got]:
        return [g for g in self.got if g.path == path]

    def next_answer(self, path: str) -> object:
        with self.lock:
            script = self.answers.get(path, [(200, {})])
            return script.pop(0) if len(script) > 1 else script[0]


@pytest.fixture
def receiver():
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with rec.lock:
                rec.got.append(Got(self.path, dict(self.headers.items()), body))
            answer = rec.next_answer(self.path)
            if answer == "hang":
                rec.release.wait(10)
                return
            if answer == "trickle":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not rec.release.wait(0.05):
                    self.wfile.write(b"a")
                    self.wfile.flush()
                return
            status, headers = answer
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address) -> None:
            pass  # a client that gave up: a broken pipe, expected here

    server = Server(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield rec
    rec.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def con(tmp_path: Path):
    c = connect(tmp_path / "store.duckdb")
    yield c
    c.close()


class Waits(list[float]):
    """A ``sleep`` that records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_retried_after_503s_then_delivered_once_signed_over_the_exact_body(receiver, con):
    receiver.answers["/hook"] = [(503, {}), (503, {}), (200, {})]
    waits = Waits()
    [d] = deliver(con, ALERTS[:1], [receiver.hook("/hook")], environ=ENV, sleep=waits,
                  clock=lambda: NOW)
    assert (d.status, d.tries, d.answer, d.error) == ("delivered", 3, 200, None)
    got = receiver.to("/hook")
    assert len(got) == 3 and len({g.body for g in got}) == 1
    body = got[-1].body
    assert body == dumps(ALERTS[0]).encode()
    assert json.loads(body) == {**ALERTS[0], "day": "2026-09-01", "rate": 0.25}
    headers = got[-1].headers
    assert headers[SIGNATURE_HEADER].startswith(f"t={int(NOW)},v1=")
    assert verify(SECRET.encode(), headers[SIGNATURE_HEADER], body, now=NOW)
    assert headers[SIGNATURE_HEADER] == sign(SECRET.encode(), int(NOW), body)
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "microjourney"
    assert headers[ALERT_HEADER] == "checkout-2026-09-01"
    # The waits grow: 0.5 then 1 second, each up to 10% longer.
    assert len(waits) == 2 and 0.5 <= waits[0] <= 0.55 and 1.0 <= waits[1] <= 1.1
    [row] = deliveries.rows(con)
    assert (row.alert_id, row.url, row.status, row.tries, row.answer) == (
        "checkout-2026-09-01", receiver.url + "/hook", "delivered", 3, 200)
    assert row.claimed_at == row.finished_at == datetime.fromtimestamp(NOW, UTC)


def test_a_second_run_sends_nothing(receiver, con):
    hooks = [receiver.hook("/hook")]
    first = deliver(con, ALERTS, hooks, environ=ENV)
    again = deliver(con, ALERTS, hooks, environ=ENV)
    assert [d.status for d in first] == ["delivered", "delivered"]
    assert [(d.status, d.tries) for d in again] == [("already", 0), ("already", 0)]
    assert len(receiver.got) == 2


def test_a_client_error_is_not_retried(receiver, con):
    receiver.answers["/hook"] = [(400, {})]
    waits = Waits()
    [d] = deliver(con, ALERTS[:1], [receiver.hook("/hook")], environ=ENV, sleep=waits)
    assert (d.status, d.tries, d.answer, d.error) == ("failed", 1, 400, "HTTP 400")
    assert waits == [] and len(receiver.got) == 1
    assert [(r.status, r.tries, r.answer) for r in deliveries.rows(con)] == [("failed", 1, 400)]
    # Failed is final: at most once, not at least once.
    assert deliver(con, ALERTS[:1], [receiver.hook("/hook")], environ=ENV)[0].status == "already"


@pytest.mark.parametrize(("after", "wait"), [("3", 3.0), ("3600", MAX_RETRY_AFTER), ("soon", None)])
def test_retry_after_is_honoured_up_to_a_cap(receiver, con, after, wait):
    receiver.answers["/hook"] = [(429, {"Retry-After": after}), (200, {})]
    waits = Waits()
    [d] = deliver(con, ALERTS[:1], [receiver.hook("/hook")], environ=ENV, sleep=waits, first_wait=0.01)
    assert (d.status, d.tries) == ("delivered", 2)
    assert len(waits) == 1
    if wait is None:  # not a number of seconds: the back-off alone
        assert 0.01 <= waits[0] <= 0.011
    else:
        assert waits[0] == wait


def test_a_silent_receiver_fails_after_every_try_in_bounded_time(receiver, con):
    receiver.answers["/hook"] = ["hang"]
    waits = Waits()
    start = time.monotonic()
    [d] = deliver(con, ALERTS[:1], [receiver.hook("/hook")], environ=ENV, sleep=waits, tries=3,
                  timeout=0.2)
    took = time.monotonic() - start
    assert (d.status, d.tries, d.answer, d.error) == ("failed", 3, None, "no answer within 0.2 s")
    assert len(receiver.got) == 3 and len(waits) == 2
    assert 0.5 < took < 3


def test_a_trickling_answer_is_cut_at_the_timeout(receiver, con):
    """A receiver that keeps sending a byte at a time never trips a socket's timeout; the
    try's deadline cuts it."""
    receiver.answers["/hook"] = ["trickle"]
    start = time.monotonic()
    [d] = deliver(con, ALERTS[:1], [receiver.hook("/hook")], environ=ENV, tries=1, timeout=0.3)
    assert time.monotonic() - start < 2
    assert (d.status, d.tries, d.error) == ("failed", 1, "no answer within 0.3 s")


def test_a_redirect_is_not_followed(receiver, con):
    receiver.answers["/hook"] = [(302, {"Location": receiver.url + "/elsewhere"})]
    waits = Waits()
    [d] = deliver(con, ALERTS[:1], [receiver.hook("/hook")], environ=ENV, sleep=waits)
    assert (d.status, d.tries, d.answer) == ("failed", 1, 302)
    assert "redirect" in d.error
    assert receiver.to("/elsewhere") == [] and waits == []


def test_an_unset_secret_sends_nothing_until_it_is_set(receiver, con):
    hooks = [receiver.hook("/hook")]
    for environ in ({}, {"MJ_HOOK_SECRET": ""}):
        [d] = deliver(con, ALERTS[:1], hooks, environ=environ)
        assert (d.status, d.tries, d.error) == ("no-secret", 0, "MJ_HOOK_SECRET is unset or empty")
    assert receiver.got == [] and deliveries.rows(con) == []
    [d] = deliver(con, ALERTS[:1], hooks, environ=ENV)
    assert d.status == "delivered"
    assert verify(SECRET.encode(), receiver.got[0].headers[SIGNATURE_HEADER], receiver.got[0].body,
                  now=time.time())


def test_no_secret_named_sends_unsigned(receiver, con):
    [d] = deliver(con, ALERTS[:1], [receiver.hook("/open", secret_env=None)], environ={})
    assert d.status == "delivered"
    assert SIGNATURE_HEADER not in receiver.got[0].headers


def test_a_claim_left_by_a_crash_is_never_resent(receiver, con):
    hook = receiver.hook("/hook")
    assert deliveries.claim(con, "checkout-2026-09-01", hook.url)  # then the sender died
    [d] = deliver(con, ALERTS[:1], [hook], environ=ENV)
    assert (d.status, d.tries) == ("already", 0)
    assert receiver.got == []
    assert [r.status for r in deliveries.rows(con)] == ["sending"]


def test_two_alerts_to_two_hooks_are_four_deliveries(receiver, con):
    hooks = [receiver.hook("/a"), receiver.hook("/b", secret_env=None)]
    done = deliver(con, ALERTS, hooks, environ=ENV)
    assert [(d.alert_id, d.url, d.status) for d in done] == [
        (a["alert_id"], h.url, "delivered") for a in ALERTS for h in hooks]
    for path in ("/a", "/b"):
        assert sorted(g.headers[ALERT_HEADER] for g in receiver.to(path)) == sorted(
            a["alert_id"] for a in ALERTS)
    assert len(deliveries.rows(con)) == 4
    assert sorted(r.url for r in deliveries.rows(con, alert_id="login-2026-09-02")) == sorted(
        h.url for h in hooks)


def test_a_url_that_failed_every_try_is_sent_nothing_more_in_that_run(receiver, con):
    receiver.answers["/hook"] = [(503, {}), (503, {}), (200, {})]
    hook, waits = receiver.hook("/hook"), Waits()
    first = deliver(con, ALERTS, [hook], environ=ENV, tries=2, sleep=waits)
    assert [(d.status, d.tries, d.answer) for d in first] == [("failed", 2, 503), ("deferred", 0, None)]
    assert len(receiver.got) == 2 and len(deliveries.rows(con)) == 1
    later = deliver(con, ALERTS, [hook], environ=ENV, tries=2, sleep=waits)
    assert [d.status for d in later] == ["already", "delivered"]


def test_concurrent_senders_deliver_once(receiver, con):
    hook, done = receiver.hook("/hook"), []
    cursors = [con.cursor() for _ in range(4)]

    def send(cur) -> None:
        done.extend(deliver(cur, ALERTS[:1], [hook], environ=ENV))

    threads = [threading.Thread(target=send, args=(c,)) for c in cursors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    for c in cursors:
        c.close()
    assert sorted(d.status for d in done) == ["already"] * 3 + ["delivered"]
    assert len(receiver.got) == 1


def test_a_claim_commits_inside_a_callers_transaction(tmp_path):
    con = connect(tmp_path / "store.duckdb")
    con.execute("BEGIN")
    assert deliveries.claim(con, "a1", "http://127.0.0.1/x")
    con.execute("ROLLBACK")
    assert not deliveries.claim(con, "a1", "http://127.0.0.1/x")
    con.close()


def test_logs_hold_neither_secret_nor_body_nor_path(receiver, con, caplog):
    receiver.answers["/hooks/T0KEN-IN-PATH"] = [(500, {}), (200, {})]
    with caplog.at_level(logging.DEBUG, logger="microjourney"):
        deliver(con, ALERTS, [receiver.hook("/hooks/T0KEN-IN-PATH")], environ=ENV, sleep=Waits())
        deliver(con, ALERTS, [receiver.hook("/other")], environ={})
    text = caplog.text
    assert "checkout-2026-09-01" in text and receiver.url in text
    for hidden in (SECRET, "T0KEN", "segments", "0.31"):
        assert hidden not in text
    assert origin(receiver.url + "/hooks/T0KEN?x=1") == receiver.url


def test_bad_alerts_are_refused_before_anything_is_sent(receiver, con):
    hooks = [receiver.hook("/hook")]
    for bad in ({"moment": "checkout"}, {"alert_id": "a\r\nX-Evil: 1"}, {"alert_id": ""}):
        with pytest.raises(ValueError, match="alert_id"):
            deliver(con, [ALERTS[0], bad], hooks, environ=ENV)
    with pytest.raises(TypeError):
        deliver(con, [ALERTS[0], {"alert_id": "x", "what": object()}], hooks, environ=ENV)
    assert receiver.got == [] and deliveries.rows(con) == []


def test_an_unreachable_url_is_retried_then_fails(con):
    import socket

    with socket.socket() as s:  # a port nobody listens on (closed again at once)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waits = Waits()
    [d] = deliver(con, ALERTS[:1], [Webhook(url=f"http://127.0.0.1:{port}/hook")], tries=3,
                  sleep=waits)
    assert (d.status, d.tries, d.answer) == ("failed", 3, None)
    assert d.error == "connection failed: ConnectionRefusedError"


def test_verify_rejects_a_changed_body_a_wrong_secret_and_an_old_time():
    secret, body = b"k", b'{"alert_id":"a"}'
    header = sign(secret, int(NOW), body)
    assert verify(secret, header, body, now=NOW + 299)
    assert not verify(secret, header, body + b" ", now=NOW)
    assert not verify(b"other", header, body, now=NOW)
    assert not verify(secret, header, body, now=NOW + 301)
    assert not verify(secret, header, body, now=NOW - 301)  # from the future
    rotated = f"{header},v1={sign(b'old', int(NOW), body).partition('v1=')[2]}"
    assert verify(secret, rotated, body, now=NOW) and verify(b"old", rotated, body, now=NOW)
    for broken in ("", "v1=abc", f"t=x,{header.partition(',')[2]}", header.replace("t=", "t=1,t="),
                   header + "ü", "t=" + "9" * 5000):
        assert not verify(secret, broken, body, now=NOW)
