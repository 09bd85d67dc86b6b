"""A Python client for the collector (``microjourney serve``): events from servers, jobs, bots.

>>> import microjourney as mj                                            # doctest: +SKIP
>>> with mj.Client("http://127.0.0.1:8080", "wk_...") as client:          # doctest: +SKIP
...     client.track("payment_failed", user_id="u1", channel="app", properties={"code": 51})

Calls are queued and sent in batches by a background thread, in order, one batch at a time.
A batch that meets a network error, a 429 (``Retry-After`` is honoured) or a 5xx is sent
again, unchanged, after an exponential backoff: every call carries its ``event_id`` /
``message_id`` from the moment it is queued, so the collector stores it once however often
it arrives. Only the host given is ever contacted (no proxies from the environment, no
redirects followed). Only the standard library and orjson are used to send.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from .vocabulary import CHANNELS

log = logging.getLogger("microjourney.client")

__all__ = ["Client", "Delivery", "Rejection"]


@dataclass(frozen=True)
class Rejection:
    """A call the collector refused (``field``/``reason`` from its answer) or that was never delivered
    (``field`` is None: a 4xx refusal of its whole batch, or retries exhausted)."""

    id: str  # the call's event_id (track) or message_id (identify, alias)
    type: str
    field: str | None
    reason: str


@dataclass
class Delivery:
    """What the collector answered for the batches sent since the previous :meth:`Client.flush`."""

    accepted: int = 0
    duplicates: int = 0
    withheld: int = 0  # counted, not stored (no analytics consent where it is required)
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None  # the 3xx is returned as an error: never follow it to another host


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    with contextlib.suppress(ValueError):  # seconds, else an HTTP date
        return max(0.0, float(value))
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _timestamp(value: datetime | str | None) -> str:
    if value is None:
        return datetime.now(UTC).isoformat(timespec="milliseconds")
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


class Client:
    """Send events to a microjourney collector.

    ``host`` is the collector's base URL (``http://127.0.0.1:8080``), ``key`` a write key
    (``microjourney keys``). Calls are sent when ``batch_size`` are queued, every
    ``flush_interval`` seconds, on :meth:`flush` and on :meth:`close`. A batch is tried
    ``1 + max_retries`` times (backoff 0.5 s, 1 s, 2 s ... up to 30 s, or as ``Retry-After``
    says) before its calls are given up and reported as rejected.
    """

    def __init__(self, host: str, key: str, *, batch_size: int = 100, flush_interval: float = 1.0,
                 timeout: float = 5.0, max_retries: int = 5) -> None:
        parts = urlsplit(host)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"host must be an http(s) URL such as http://127.0.0.1:8080, not {host!r}")
        if not key:
            raise ValueError("key is required (a write key from `microjourney keys`)")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.host = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.url = self.host + "/v1/batch"
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.timeout, self.max_retries = timeout, max_retries
        self._key = key
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self._queue: deque[dict[str, Any]] = deque()
        self._cv = threading.Condition()
        self._sending = False
        self._wanted = False  # a flush or close asked to send now
        self._closed = False
        self._delivery = Delivery()
        self._thread = threading.Thread(target=self._run, name="microjourney-client", daemon=True)
        self._thread.start()

    # --- calls -----------------------------------------------------------------------------

    def track(self, event: str, *, user_id: str | None = None, anonymous_id: str | None = None,
              channel: str = "other", properties: dict[str, Any] | None = None,
              context: dict[str, Any] | None = None, timestamp: datetime | str | None = None,
              session_id: str | None = None, event_id: str | None = None) -> str:
        """Queue an event; returns its ``event_id`` (given or generated)."""
        if not event:
            raise ValueError("event name is required")
        if user_id is None and anonymous_id is None:
            raise ValueError("track needs user_id or anonymous_id")
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
        call: dict[str, Any] = {"type": "track", "event": event, "timestamp": _timestamp(timestamp),
                                "event_id": event_id or str(uuid.uuid4()), "channel": channel}
        for name, value in (("user_id", user_id), ("anonymous_id", anonymous_id), ("session_id", session_id),
                            ("properties", properties), ("context", context)):
            if value is not None:
                call[name] = value
        self._enqueue(call)
        return call["event_id"]

    def identify(self, user_id: str, *, anonymous_id: str | None = None, traits: dict[str, Any] | None = None,
                 timestamp: datetime | str | None = None, message_id: str | None = None,
                 context: dict[str, Any] | None = None) -> str:
        """Say that ``anonymous_id`` is ``user_id`` (and/or record traits); returns the message id."""
        if not user_id:
            raise ValueError("identify needs a user_id")
        call: dict[str, Any] = {"type": "identify", "user_id": user_id, "timestamp": _timestamp(timestamp),
                                "message_id": message_id or str(uuid.uuid4())}
        for name, value in (("anonymous_id", anonymous_id), ("traits", traits), ("context", context)):
            if value is not None:
                call[name] = value
        self._enqueue(call)
        return call["message_id"]

    def alias(self, previous_id: str, user_id: str, *, timestamp: datetime | str | None = None,
              message_id: str | None = None, context: dict[str, Any] | None = None) -> str:
        """Join ``previous_id`` (an earlier user or anonymous id) to ``user_id``; returns the message id."""
        if not previous_id or not user_id:
            raise ValueError("alias needs previous_id and user_id")
        call: dict[str, Any] = {"type": "alias", "previous_id": previous_id, "user_id": user_id,
                                "timestamp": _timestamp(timestamp),
                                "message_id": message_id or str(uuid.uuid4())}
        if context is not None:
            call["context"] = context
        self._enqueue(call)
        return call["message_id"]

    # --- experiments (answered at once, not queued) -----------------------------------------

    def variant(self, experiment: str, *, user_id: str | None = None,
                anonymous_id: str | None = None) -> str | None:
        """The person's variant of ``experiment`` as the collector assigns it
        (``GET /v1/decide?experiment=...``; by ``user_id``, else ``anonymous_id``), or None
        when the experiment is not running. Assigning logs nothing: call :meth:`exposure` when
        the variant is shown. Raises ``ValueError`` when the collector refuses the request (an
        unknown experiment, a bad key) and ``OSError`` when it cannot be reached."""
        if not experiment:
            raise ValueError("variant needs an experiment name")
        if user_id is None and anonymous_id is None:
            raise ValueError("variant needs user_id or anonymous_id")
        query = {"experiment": experiment, "user_id": user_id, "anonymous_id": anonymous_id}
        body = self._ask("GET", "/v1/decide?" + urlencode({k: v for k, v in query.items() if v}))
        found = (body.get("experiments") or {}).get(experiment)
        return str(found) if found is not None else None

    def intervention(self, event: str, *, channel: str, user_id: str | None = None,
                     anonymous_id: str | None = None, event_id: str | None = None,
                     consent: bool = False) -> dict[str, Any] | None:
        """The intervention due now after ``event`` (just tracked for the person), or None
        (``GET /v1/decide``; docs/interventions.md): what a chat bot, a voice system or an
        agent desktop asks after each step of a conversation. The calls tracked so far are
        sent first, so the collector has the person's latest events. Report what became of it
        by tracking ``intervention_shown`` / ``intervention_accepted`` /
        ``intervention_dismissed`` with its ``intervention``, ``decision`` and ``offer``.
        Raises like :meth:`variant`."""
        if user_id is None and anonymous_id is None:
            raise ValueError("intervention needs user_id or anonymous_id")
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
        self.flush()
        query = {"event": event, "channel": channel, "user_id": user_id,
                 "anonymous_id": anonymous_id, "event_id": event_id,
                 "consent": "true" if consent else None}
        body = self._ask("GET", "/v1/decide?" + urlencode({k: v for k, v in query.items() if v}))
        found = body.get("intervention")
        return found if isinstance(found, dict) else None

    def exposure(self, experiment: str, variant: str, *, user_id: str | None = None,
                 anonymous_id: str | None = None, channel: str = "other",
                 timestamp: datetime | str | None = None, consent: bool = False) -> Delivery:
        """Log that ``variant`` of ``experiment`` was shown to the person (``POST /v1/exposures``),
        at once; the same exposure logged again is a duplicate. Raises like :meth:`variant`."""
        if user_id is None and anonymous_id is None:
            raise ValueError("exposure needs user_id or anonymous_id")
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}")
        call = {"experiment": experiment, "variant": variant, "user_id": user_id,
                "anonymous_id": anonymous_id, "channel": channel, "timestamp": _timestamp(timestamp),
                "consent": consent}
        body = self._ask("POST", "/v1/exposures", {k: v for k, v in call.items() if v is not None})
        return Delivery(int(body.get("accepted", 0)), int(body.get("duplicates", 0)),
                        int(body.get("withheld", 0)),
                        [Rejection("", "exposure", r.get("field"), r.get("reason", ""))
                         for r in body.get("rejected") or ()])

    def _ask(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        """One request answered now (no queue, no retry); its JSON answer."""
        request = urllib.request.Request(
            self.host + path, method=method,
            data=None if payload is None else orjson.dumps(payload),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._key}",
                     "User-Agent": "microjourney-python"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                body = orjson.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                error = orjson.loads(exc.read()).get("error") or {}
            except (orjson.JSONDecodeError, AttributeError):
                error = {}
            raise ValueError(f"HTTP {exc.code} {error.get('code', '')}: {error.get('message', '')}"
                             .strip()) from None
        return body if isinstance(body, dict) else {}

    def flush(self, timeout: float | None = None) -> Delivery:
        """Send everything queued and wait for it (retries included, up to ``timeout`` seconds);
        returns what the collector answered for the batches sent since the previous flush."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            self._wanted = True
            self._cv.notify_all()
            while (self._queue or self._sending) and self._thread.is_alive():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"{len(self._queue)} calls still queued after {timeout} s")
                self._cv.wait(left)
            delivery, self._delivery = self._delivery, Delivery()
        return delivery

    def close(self, timeout: float | None = None) -> Delivery:
        """Flush, then stop the background thread; later calls raise."""
        try:
            delivery = self.flush(timeout)
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()
            self._thread.join(timeout)
        return delivery

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Calls queued and not yet answered."""
        with self._cv:
            return len(self._queue)

    # --- the background thread ----------------------------------------------------------------

    def _enqueue(self, call: dict[str, Any]) -> None:
        with self._cv:
            if self._closed:
                raise RuntimeError("the client is closed")
            self._queue.append(call)
            if len(self._queue) >= self.batch_size:
                self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                end = time.monotonic() + self.flush_interval
                while not (self._closed or self._wanted or len(self._queue) >= self.batch_size):
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                    self._cv.wait(left)
                if not self._queue:
                    self._wanted = False
                    self._cv.notify_all()
                    if self._closed:
                        return
                    continue
                batch = [self._queue[i] for i in range(min(self.batch_size, len(self._queue)))]
                self._sending = True
            try:
                self._deliver(batch)
            except Exception:  # never let the thread die: give the batch up, keep going
                log.exception("microjourney: batch of %d calls given up", len(batch))
                self._give_up(batch, "internal error in the client")
            with self._cv:
                for _ in batch:
                    self._queue.popleft()
                self._sending = False
                self._cv.notify_all()

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """Send one batch, retrying; splits it when the collector says it is too large (413)."""
        for attempt in range(self.max_retries + 1):
            try:
                status, body = self._post(batch)
            except _Retry as why:
                if attempt == self.max_retries:
                    log.warning("microjourney: giving up a batch of %d calls after %d tries (%s)",
                                len(batch), attempt + 1, why)
                    self._give_up(batch, f"not delivered after {attempt + 1} tries: {why}")
                    return
                backoff = min(30.0, 0.5 * 2 ** attempt) * random.uniform(0.75, 1.25)
                time.sleep(max(backoff, why.after or 0.0))
                continue
            if status == 200:
                self._record(batch, body)
            elif status == 413 and len(batch) > 1:
                half = len(batch) // 2
                self._deliver(batch[:half])
                self._deliver(batch[half:])
            else:
                error = (body.get("error") or {}) if isinstance(body, dict) else {}
                reason = f"{status} {error.get('code', '')}: {error.get('message', '')}".strip()
                log.warning("microjourney: batch of %d calls refused (%s)", len(batch), reason)
                self._give_up(batch, reason)
            return

    def _post(self, batch: list[dict[str, Any]]) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url, data=orjson.dumps({"batch": batch}), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._key}",
                     "User-Agent": "microjourney-python"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.status, orjson.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            if exc.code == 429 or exc.code >= 500:
                raise _Retry(f"HTTP {exc.code}", _retry_after(exc.headers.get("Retry-After"))) from None
            try:
                return exc.code, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return exc.code, {"error": {"code": "http", "message": raw[:200].decode("utf-8", "replace")}}
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out, DNS
            raise _Retry(str(getattr(exc, "reason", exc))) from None
        except orjson.JSONDecodeError:
            raise _Retry("the answer was not JSON") from None

    def _record(self, batch: list[dict[str, Any]], body: dict[str, Any]) -> None:
        rejected = []
        for r in body.get("rejected") or ():
            i = r.get("index")
            call = batch[i] if isinstance(i, int) and 0 <= i < len(batch) else {}
            rejected.append(Rejection(_id(call), call.get("type", ""), r.get("field"), r.get("reason", "")))
        for r in rejected:
            log.warning("microjourney: %s %s rejected: %s (%s)", r.type, r.id, r.reason, r.field)
        with self._cv:
            d = self._delivery
            d.accepted += int(body.get("accepted", 0))
            d.duplicates += int(body.get("duplicates", 0))
            d.withheld += int(body.get("withheld", 0))
            d.rejected.extend(rejected)

    def _give_up(self, batch: list[dict[str, Any]], reason: str) -> None:
        with self._cv:
            self._delivery.rejected.extend(Rejection(_id(c), c["type"], None, reason) for c in batch)


def _id(call: dict[str, Any]) -> str:
    return str(call.get("event_id") or call.get("message_id") or "")
