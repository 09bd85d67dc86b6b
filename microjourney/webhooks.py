"""Alert webhooks: each alert POSTed as JSON to each webhook of the workspace, signed, retried
with back-off, at most once per alert and URL (docs/webhooks.md). The weekly review is sent
the same way (``kind="review"``: keyed by its ``review_id``, once per week and URL), and each
webhook intervention (``kind="intervention"``: keyed by its ``intervention_id``, the decision).

An edge out: it reads the ``alerts.webhooks`` (and ``review.webhooks``) declarations
(:class:`~.spec.alerts.Webhook`) and records each delivery in the store's log
(:mod:`.store.deliveries`) before it sends.

    Microjourney-Signature: t=<Unix seconds of the try>,v1=<64 hex digits>

is the signature header (:func:`sign`): the hex HMAC-SHA256, under the webhook's secret, of
``"<t>."`` followed by the exact body. A receiver
checks it with :func:`verify` (or the few lines of docs/webhooks.md).

Logs name the alert and the URL's scheme and host, never its path, the body or the secret.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import logging
import os
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

import duckdb

from .jsonable import dumps
from .spec.alerts import Webhook
from .store.deliveries import claim, finish

__all__ = [
    "ALERT_HEADER",
    "INTERVENTION_HEADER",
    "REVIEW_HEADER",
    "SIGNATURE_HEADER",
    "Delivery",
    "Kind",
    "Status",
    "deliver",
    "origin",
    "sign",
    "verify",
]

log = logging.getLogger("microjourney.webhooks")

SIGNATURE_HEADER = "Microjourney-Signature"
ALERT_HEADER = "Microjourney-Alert"
REVIEW_HEADER = "Microjourney-Review"
INTERVENTION_HEADER = "Microjourney-Intervention"
#: What is delivered: its id is the body's ``<kind>_id`` and goes in the header of the kind.
Kind = Literal["alert", "review", "intervention"]
_HEADERS: dict[str, str] = {"alert": ALERT_HEADER, "review": REVIEW_HEADER,
                            "intervention": INTERVENTION_HEADER}
#: The most of a receiver's answer read (then dropped: only its status counts).
MAX_ANSWER = 64 * 1024
#: The longest wait a ``Retry-After`` obtains, in seconds.
MAX_RETRY_AFTER = 60.0
#: Each wait of the back-off is lengthened by up to this fraction, at random.
JITTER = 0.1
#: The longest header :func:`verify` reads.
MAX_SIGNATURE = 4_096
#: An alert id: printable ASCII, as it goes in a header.
MAX_ALERT_ID = 256

#: How one delivery ended. ``delivered``/``failed``: sent, logged as such. ``already``: the log
#: had it (sent, being sent, or claimed before a crash): not sent again. ``no-secret``: the
#: webhook's secret variable is unset or empty: not sent, not logged, so sent once it is set.
#: ``deferred``: the URL failed an earlier alert of this call after every try: not sent, not
#: logged, so the next call sends it.
Status = Literal["delivered", "failed", "already", "no-secret", "deferred"]


@dataclass(frozen=True)
class Delivery:
    """What became of one alert for one webhook: the tries made, the last HTTP status
    (None: none came) and, unless delivered, why (short text: no secret, no body).
    ``alert_id`` is the delivery's key: a weekly review's ``review_id`` for a review."""

    alert_id: str
    url: str
    status: Status
    tries: int
    answer: int | None
    error: str | None


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``Microjourney-Signature`` of ``body`` sent at ``timestamp`` (Unix seconds):
    ``t=<timestamp>,v1=<hex HMAC-SHA256 of b"<timestamp>." + body under secret>``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """Whether ``header`` (a ``Microjourney-Signature``) signs ``body`` under ``secret``, at a
    time no more than ``tolerance`` seconds from ``now``. Compared in constant time; several
    ``v1=`` values (a secret being rotated) pass when one does; anything malformed fails."""
    if len(header) > MAX_SIGNATURE:
        return False
    stamp: int | None = None
    given: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            if stamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                return False
            stamp = int(value)
        elif key == "v1":
            given.append(value.encode("utf-8", "replace"))
    if stamp is None or not given or abs(now - stamp) > tolerance:
        return False
    expected = sign(secret, stamp, body).rpartition("v1=")[2].encode()
    matches = [hmac.compare_digest(expected, value) for value in given]  # each one, every time
    return any(matches)


def origin(url: str) -> str:
    """What logs may show of a URL: its scheme and host (a path may hold a token)."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def deliver(con: duckdb.DuckDBPyConnection, alerts: Sequence[Mapping[str, Any]],
            hooks: Sequence[Webhook], *, environ: Mapping[str, str] = os.environ, tries: int = 5,
            first_wait: float = 0.5, timeout: float = 5.0, sleep: Callable[[float], object] = time.sleep,
            clock: Callable[[], float] = time.time, kind: Kind = "alert") -> list[Delivery]:
    """POST each alert to each webhook, at most once per alert and URL: one :class:`Delivery`
    each, in the order alert by alert, then webhook by webhook.

    Each alert is a mapping with an ``alert_id`` (printable ASCII) and JSON values
    (:func:`.jsonable.dumps`): every alert is encoded before anything is sent, and one that
    cannot be raises ``ValueError`` or ``TypeError``. For each alert and webhook: the secret
    is read from ``environ[hook.secret_env]`` (none named: sent unsigned; named but unset or
    empty: ``no-secret``); the delivery is claimed in the store's log (a row already there:
    ``already``, not sent); then it is tried up to ``tries`` times. A try that does not
    connect, takes more than ``timeout`` seconds in all, or is answered 408, 429 or 5xx is
    tried again after ``first_wait * 2**k`` seconds (k = 0, 1, ...; up to :data:`JITTER`
    longer; no shorter than a ``Retry-After`` in seconds, up to :data:`MAX_RETRY_AFTER`);
    a 2xx is ``delivered``; a redirect (not followed) or another 4xx is ``failed`` at once.
    The log row is finished with the outcome. Once a URL has failed after every try, it is
    sent nothing more in this call (``deferred``: not claimed, sent by the next call).

    ``kind="review"`` sends weekly reviews the same way: each keyed by its ``review_id``
    (in the log's ``alert_id`` column and the ``Microjourney-Review`` header) instead;
    ``kind="intervention"`` sends interventions keyed by their ``intervention_id``.
    ``sleep`` and ``clock`` (Unix seconds: signatures and the log's times) are for tests.
    """
    if tries < 1:
        raise ValueError(f"tries must be at least 1, not {tries}")
    if kind not in _HEADERS:
        raise ValueError(f"kind is one of {', '.join(_HEADERS)}, not {kind!r}")
    bodies = [(_alert_id(alert, kind), dumps(alert).encode()) for alert in alerts]
    how = _Tries(tries, first_wait, timeout, sleep, clock, kind)
    down: set[str] = set()  # URLs that failed every try: the rest of this call skips them
    return [_one(con, alert_id, body, hook, environ, how, down)
            for alert_id, body in bodies for hook in hooks]


@dataclass(frozen=True)
class _Tries:
    """How a delivery is tried: :func:`deliver`'s arguments."""

    tries: int
    first_wait: float
    timeout: float
    sleep: Callable[[float], object]
    clock: Callable[[], float]
    kind: Kind = "alert"

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


@dataclass(frozen=True)
class _Answer:
    """One try: the HTTP status (None: none came), why it failed, whether to try again and
    the ``Retry-After`` seconds asked for."""

    status: int | None
    error: str | None = None
    again: bool = False
    after: float | None = None


def _alert_id(alert: Mapping[str, Any], kind: Kind = "alert") -> str:
    alert_id = alert.get(f"{kind}_id")
    if (not isinstance(alert_id, str) or not 0 < len(alert_id) <= MAX_ALERT_ID
            or not all(" " <= ch <= "~" for ch in alert_id)):
        raise ValueError(f"each {kind} needs its {kind}_id: 1 to {MAX_ALERT_ID} printable ASCII "
                         "characters")
    return alert_id


def _one(con: duckdb.DuckDBPyConnection, alert_id: str, body: bytes, hook: Webhook,
         environ: Mapping[str, str], how: _Tries, down: set[str]) -> Delivery:
    """Claim, send and log one alert to one webhook."""
    url, where = hook.url, origin(hook.url)
    if url in down:
        return Delivery(alert_id, url, "deferred", 0, None, f"not sent: the URL failed an earlier {how.kind}")
    secret: bytes | None = None
    if hook.secret_env is not None:
        value = environ.get(hook.secret_env, "")
        if not value:
            log.warning("webhook/no-secret %s %s to %s: %s is unset", how.kind, alert_id, where,
                        hook.secret_env)
            return Delivery(alert_id, url, "no-secret", 0, None, f"{hook.secret_env} is unset or empty")
        secret = value.encode()
    if not claim(con, alert_id, url, how.now()):
        log.info("webhook/already %s %s to %s", how.kind, alert_id, where)
        return Delivery(alert_id, url, "already", 0, None, None)
    made, last = _send(alert_id, url, body, secret, how)
    ok = last.status is not None and 200 <= last.status < 300
    finish(con, alert_id, url, status="delivered" if ok else "failed", tries=made, answer=last.status,
           at=how.now())
    if ok:
        log.info("webhook/delivered %s %s to %s (try %d)", how.kind, alert_id, where, made)
        return Delivery(alert_id, url, "delivered", made, last.status, None)
    if last.again:
        down.add(url)
    log.warning("webhook/failed %s %s to %s after %d tr%s: %s", how.kind, alert_id, where, made,
                "y" if made == 1 else "ies", last.error)
    return Delivery(alert_id, url, "failed", made, last.status, last.error)


def _send(alert_id: str, url: str, body: bytes, secret: bytes | None, how: _Tries) -> tuple[int, _Answer]:
    """Try up to ``how.tries`` times: the tries made and the last answer."""
    headers = {"Content-Type": "application/json", "User-Agent": "microjourney",
               _HEADERS[how.kind]: alert_id}
    last = _Answer(None)
    for k in range(how.tries):
        if k:
            wait = _wait(how.first_wait, k - 1, last.after)
            log.info("webhook/retry %s %s to %s in %.2f s: %s", how.kind, alert_id, origin(url), wait,
                     last.error)
            how.sleep(wait)
        if secret is not None:  # signed anew each try: a late retry is not too old
            headers[SIGNATURE_HEADER] = sign(secret, int(how.clock()), body)
        last = _post(url, body, headers, how.timeout)
        if not last.again:
            return k + 1, last
    return how.tries, last


def _wait(first: float, k: int, after: float | None) -> float:
    """The wait after the ``k``-th failed try (from 0): ``first * 2**k``, a little jitter, at
    least the ``Retry-After`` asked for (up to :data:`MAX_RETRY_AFTER`)."""
    wait = first * 2.0**k * (1 + JITTER * random.random())
    return max(wait, min(after, MAX_RETRY_AFTER)) if after is not None else wait


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> _Answer:
    """One POST of ``body`` to ``url``, redirects not followed, within ``timeout`` seconds in
    all (connecting, sending and reading the answer's head and first :data:`MAX_ANSWER` bytes;
    name resolution is the system's)."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        host, port = parts.hostname, parts.port
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(host or "", port, timeout=timeout, context=_tls())
        elif parts.scheme == "http":
            conn = http.client.HTTPConnection(host or "", port, timeout=timeout)
        else:
            raise ValueError(parts.scheme)
    except (ValueError, http.client.InvalidURL):
        return _Answer(None, "not an http(s) URL with a host and a valid port")
    late = threading.Event()

    def cut() -> None:  # the whole try's deadline: no trickling answer outlasts it
        late.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except (OSError, ValueError):
                pass

    timer = threading.Timer(timeout, cut)
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", target, body=body, headers=dict(headers))
        answer = conn.getresponse()
        if late.is_set():  # cut: the head read may be a truncated one
            raise TimeoutError
        status, after = answer.status, answer.getheader("Retry-After")
        # The body is only drained (so the connection ends cleanly); the status decides,
        # whether or not the body can be read.
        with contextlib.suppress(OSError, http.client.HTTPException):
            answer.read(MAX_ANSWER)
    except ssl.SSLCertVerificationError as exc:
        return _Answer(None, f"TLS certificate not accepted: {exc.verify_message}")
    except (OSError, http.client.HTTPException) as exc:
        if late.is_set() or isinstance(exc, TimeoutError):
            return _Answer(None, f"no answer within {timeout:g} s", again=True)
        return _Answer(None, f"connection failed: {type(exc).__name__}", again=True)
    finally:
        timer.cancel()
        conn.close()
    return _judge(status, after)


def _judge(status: int, after: str | None) -> _Answer:
    """What an HTTP status means for the delivery."""
    if 200 <= status < 300:
        return _Answer(status)
    if 300 <= status < 400:
        return _Answer(status, f"HTTP {status}: a redirect, not followed")
    if status in (408, 429) or 500 <= status < 600:
        seconds = after.strip() if after else ""
        wait = float(seconds) if seconds.isascii() and seconds.isdigit() and len(seconds) < 10 else None
        return _Answer(status, f"HTTP {status}", again=True, after=wait)
    return _Answer(status, f"HTTP {status}")
