"""What the app checks and answers before a request reaches the workspace.

The error envelope as a response (:func:`error_response`, :func:`envelope`; the errors,
their codes and the status of each are :mod:`microjourney.errors`), keys in headers, the
body read with a size and an idle limit, the rate limit per key, the allowed origins and
CORS (with the envelope for a refused preflight), the SDK file's validators. Nothing here
logs a value a client sent: :func:`crashed` logs a reference and the exception's kind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi.responses import Response
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Send

from ..errors import ApiError, MicrojourneyError, error_body, http_status
from ..store.keys import FILE as KEY_FILE

JSON = "application/json"
#: Seconds a request's body may stall between two chunks (a client that sends its headers
#: and then nothing, or a byte now and then, holds no more than this): answered 408.
BODY_IDLE = 15.0
#: Headers a browser may read on the API's answers (the SDK honours Retry-After after a 429).
EXPOSED = ["Retry-After"]
log = logging.getLogger("microjourney.server")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


def envelope(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(error_body(status, code, message), status, headers)


def error_response(exc: MicrojourneyError) -> Response:
    """The response to ``exc``: its envelope, with the status its code has (``errors.STATUS``)."""
    return json_response(exc.envelope(), exc.status, exc.headers)


def bearer(header: str) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header's value (None: not a bearer key)."""
    return header[7:].strip() if header[:7].lower() == "bearer " else None


async def read_body(chunks: AsyncIterator[bytes], limit: int, idle: float = BODY_IDLE) -> bytes:
    """The whole body from its ``chunks``; 413 once it grows beyond ``limit`` bytes, 408 when
    no chunk comes for ``idle`` seconds."""
    parts, size = [], 0
    stream = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(idle):
                chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ApiError("request/timeout", f"no part of the body came for {idle:g} seconds",
                           {"Connection": "close"}) from None
        size += len(chunk)
        if size > limit:
            raise ApiError("request/too-large", f"the body has more than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


async def received(receive: Receive) -> AsyncIterator[bytes]:
    """The body chunks of an ASGI request (as ``Request.stream`` gives them)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def crashed(exc: BaseException, method: str, route: str) -> dict[str, Any]:
    """The answer to an unexpected failure, logged as a reference and the exception's kind
    only (its message, like a traceback, may quote the request)."""
    ref = secrets.token_hex(6)
    log.error("server/error ref=%s %s %s %s", ref, method, route, type(exc).__name__)
    return error_body(http_status("server/error"), "server/error",
                      f"internal error (ref {ref}); nothing in this request was acknowledged, retry it")


def own_origins(url: str) -> set[str]:
    """The origins of a server listening at ``url`` (``http://host:port``): a page it serves
    (the API's docs) sends one of these; ``localhost`` too when the host is a loopback one."""
    origins = {url}
    host, _, port = url.removeprefix("http://").rpartition(":")
    if host in ("127.0.0.1", "[::1]", "::1", "localhost"):
        origins |= {f"http://localhost:{port}", f"http://127.0.0.1:{port}"}
    return origins


class Cors(CORSMiddleware):
    """Starlette's CORS, with the envelope for a refused preflight (not its plain text)."""

    def preflight_response(self, request_headers: Any) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        failures = bytes(response.body).decode().removeprefix("Disallowed CORS ").split(", ")
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        if "origin" in failures:
            return error_response(ApiError(
                "cors/origin", f"origin {request_headers['origin']} is not allowed; add it to "
                "server.cors_origins in microjourney.yaml", headers))
        return error_response(ApiError(
            "cors/preflight", f"the preflight asks for a {' and '.join(failures)} that is not "
            "allowed (methods GET, POST, DELETE; headers Authorization, Content-Type)", headers))


#: The code of an answer the framework gives (no route, a method not allowed): its status
#: is the framework's, and errors.STATUS gives each of these codes the same one.
HTTP_CODES = {400: "request/bad", 401: "auth/missing-key", 403: "auth/forbidden",
              404: "request/not-found", 405: "request/method-not-allowed",
              413: "request/too-large", 422: "request/invalid", 429: "request/rate-limited"}


class RateLimit:
    """A token bucket per key: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """0 when a request may pass now (and takes a token), else seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def no_keys() -> ApiError:
    """The answer while the key file cannot be read: 503, retried by clients."""
    return ApiError("server/keys-unavailable", f"the key file ({KEY_FILE}) cannot be read; no "
                    "key is accepted until it can (`microjourney keys` makes one)", {"Retry-After": "5"})


def matches(if_none_match: str, etag: str) -> bool:
    """``If-None-Match`` names ``etag`` (weakly: W/ ignored) or is ``*``."""
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return etag in tags or "*" in tags


async def send_json(send: Send, status: int, data: dict[str, Any]) -> None:
    """Answer ``data`` as JSON, with the headers the app's responses have."""
    body = orjson.dumps(data)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", JSON.encode())]})
    await send({"type": "http.response.body", "body": body})
