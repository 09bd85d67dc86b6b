"""The FastAPI app: collector, HTTP API, SDK, health; one JSON error envelope.

Handlers stay thin: check the key, the size and the rate, parse the calls
(:mod:`.calls`), hand them to the :class:`.collector.Collector` or to the workspace, and
answer. Every error, whatever raised it, is answered as::

    {"ok": false, "status": 401, "error": {"code": "auth/missing-key", "message": "..."}}

The log never holds a request's body or values: an unexpected failure is logged as its
code, the kind of exception and a reference (``ref``) that the answer also gives, without
its message or traceback (both may quote what a client sent).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from .. import __version__
from ..errors import ApiError, MicrojourneyError, http_status
from ..store.db import start_workers_here
from ..store.identities import write_calls
from ..store.keys import FILE as KEY_FILE
from ..store.keys import SECRET, VIEWER, KeyFile, Keys
from ..store.lake import has_events, locate
from .alerting import AlertSender
from .analyses import add_routes as add_analysis_routes
from .change_routes import add_routes as add_change_routes
from .context_routes import add_routes as add_context_routes
from .dashboard import add_pages
from .guards import (
    BODY_IDLE,
    EXPOSED,
    HTTP_CODES,
    JSON,
    Cors,
    RateLimit,
    bearer,
    crashed,
    envelope,
    error_response,
    json_response,
    matches,
    no_keys,
    own_origins,
    read_body,
    received,
    send_json,
)
from .intervention_routes import Interventions
from .live import Watched
from .refresher import Refresher
from .results import Reading, Results
from .reviewing import ReviewSender
from .schema import openapi_components
from .survey_routes import add_routes as add_survey_routes
from .survey_routes import forget as forget_surveyed
from .survey_routes import start as start_surveys
from .text_routes import add_routes as add_text_routes

#: Seconds an analysis waits for the server's first refresh before a 503.
FIRST_REFRESH = 600.0
#: The collector's journal, in the workspace's store folder (store/journal.py).
JOURNAL_DIR = "journal"
log = logging.getLogger("microjourney.server")


def create_app(directory: str | Path = ".", *, lake: str | Path | None = None,
               body_idle: float = BODY_IDLE) -> FastAPI:
    """The app for the workspace in ``directory`` (opened at start-up, closed at shutdown);
    with ``lake``, events are appended to that Parquet lake instead of the store, and the
    API's analyses read the lake. ``body_idle``: seconds a body may stall (408 after)."""
    from .. import workspace as ws_api  # the API is the layer below this edge

    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if lake is not None and locate(lake).local:
            Path(lake).mkdir(mode=0o700, parents=True, exist_ok=True)
        ws = ws_api.open(directory, lake=lake if lake is not None and has_events(lake) else None)
        settings, privacy = ws.spec.server, ws.spec.privacy
        state.update(
            keys_failed=0.0, ws=ws, keys=KeyFile(ws.root / ws_api.STORE_DIR / KEY_FILE),
            lock=threading.Lock(), drain_lock=threading.Lock(), lake_read=0,
            limit=RateLimit(settings.rate_limit, settings.burst), max_body=settings.max_body,
            origins=frozenset(settings.cors_origins),
            collector=Watched(ws.con.cursor(), consent=privacy.consent_required,
                                identities=write_calls,
                                write={"scrub": privacy.scrub, "scrub_except": privacy.scrub_except},
                                lake=lake, journal=ws.root / ws_api.STORE_DIR / JOURNAL_DIR,
                                future_tolerance=ws.spec.ingest.future_tolerance),
        )
        state["surveys"] = start_surveys(ws, lake)  # after the journal's leftovers are stored
        state["interventions"] = Interventions(ws, lake, state["collector"])
        # Over the store, the derived tables are refreshed in the background and analyses
        # read the last refresh through their own connection (refresher.py); over a lake,
        # each analysis reads the lake as it is then.
        if lake is None:
            state["reader"] = ws.reader()
            state["read_lock"] = Reading(state["reader"].con)  # one refresh per answer
            results = state["results"] = Results()
            # Answers of the analyses of the store's own tables, kept by its version (never
            # computed again ahead of time: their tables change with every commit).
            state["own_results"] = Results()
            reader = state["reader"]
            state["refresher"] = Refresher(
                ws.catch_up, state["lock"], settings.refresh_every,
                after=lambda: results.warm(reader, reader.tables_read, state["read_lock"]),
                workers=lambda: start_workers_here(ws.con), prepare=ws.prepare).start()
            alerting = ws.spec.alerts
            if alerting.webhooks:  # regressions to the workspace's webhooks (alerting.py)
                def found() -> list[dict[str, Any]]:
                    with state["read_lock"]:
                        rows: list[dict[str, Any]] = reader.analysis("alerts").to_dict()["tables"]["alerts"]
                        return rows
                state["alerts"] = AlertSender(found, ws.con, alerting.webhooks,
                                              state["refresher"].ready, alerting.every).start()
            if ws.spec.review.webhooks:  # each whole week's review to its webhooks (reviewing.py)
                state["review"] = ReviewSender(reader, state["read_lock"], ws.con, ws.spec.review.webhooks,
                                               state["refresher"].ready, ws.spec.review.every).start()
        try:
            yield
        finally:
            for sender in ("alerts", "review", "interventions"):
                if sender in state:
                    state[sender].stop()
            if "refresher" in state:
                state["refresher"].stop(interrupt=ws.con.interrupt)
                state["reader"].close_reader()
            state["collector"].close()
            ws.close()

    app = _App(title="microjourney", version=__version__, lifespan=lifespan,
                  description="Collector and HTTP API of a microjourney workspace (docs/collector.md).")
    app.add_middleware(Cors, allow_origins=_origins(directory), allow_credentials=False,
                       allow_methods=["GET", "POST", "DELETE"],
                       allow_headers=["Authorization", "Content-Type"], expose_headers=EXPOSED,
                       max_age=600)

    # Every error of the tree (ApiError, QueryError, ...) has the status of its code
    # (errors.STATUS): one handler, whatever raised it.
    @app.exception_handler(MicrojourneyError)
    async def _error(request: Request, exc: MicrojourneyError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own answers (no route, a method not allowed) keep its status;
        # HTTP_CODES names them with codes errors.STATUS gives the same status.
        code = HTTP_CODES.get(exc.status_code, "request/error")
        return envelope(exc.status_code, code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return envelope(http_status("request/invalid"), "request/invalid",
                        f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        route = getattr(request.scope.get("route"), "path", "?")  # the path may name a person
        return json_response(crashed(exc, request.method, route), 500)

    def _check_origin(request: Request) -> None:
        # Only the origins configured and the server's own (where it listens: app.listening),
        # never one derived from the Host header, which a DNS-rebinding page controls.
        origin = request.headers.get("origin")
        if origin is None or origin in state["origins"] or origin in app.own:
            return
        raise ApiError("cors/origin", f"origin {origin} is not allowed; add it to "
                       "server.cors_origins in microjourney.yaml")

    def _keys() -> Keys:
        """The keys as the key file holds them; 503 while it cannot be read (removed, say):
        no key is accepted then, and clients retry."""
        now = time.monotonic()
        if now - state["keys_failed"] < 1.0:  # the file is looked at once a second at most
            raise no_keys()
        try:
            current = state["keys"].current()
        except (OSError, ValueError, KeyError):
            if not state["keys_failed"]:
                log.error("server/keys-unavailable %s", KEY_FILE)
            state["keys_failed"] = now
            raise no_keys() from None
        state["keys_failed"] = 0.0  # readable again: a later failure is logged again
        return current

    def _authorise(request: Request, body_key: Any = None, *, need: str | None = None) -> str:
        key = bearer(request.headers.get("authorization", ""))
        if key is None and isinstance(body_key, str):
            key = body_key
        if not key:
            raise ApiError("auth/missing-key", "no key: send Authorization: Bearer KEY "
                           "(or \"key\" in the body)")
        role = _keys().role(key)
        if role is None:
            raise ApiError("auth/bad-key", "the key is not this workspace's write or secret key")
        if role == VIEWER:
            raise ApiError("auth/forbidden", "the viewer key only signs in to the dashboard; "
                           "the API takes the write or the secret key")
        if need == SECRET and role != SECRET:
            raise ApiError("auth/forbidden", "this endpoint needs the secret key; the write "
                           "key may only send events")
        wait = state["limit"].wait(key)
        if wait:
            raise ApiError("request/rate-limited", f"more than {state['limit'].rate:g} requests "
                           "a second with this key; retry later",
                           {"Retry-After": str(max(1, int(wait + 0.999)))})
        return role

    async def _body(request: Request) -> bytes:
        limit = state["max_body"]
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise ApiError("request/too-large", f"the body has {length} bytes; at most {limit}")
        return await read_body(request.stream(), limit, body_idle)

    async def lean_batch(scope: Scope, receive: Receive, send: Send) -> bool:
        """``POST /v1/batch`` from a back-end (a bearer key, no ``Origin``), answered without
        the framework's layers: the collector's common request, and most of its cost per
        request in the framework. Anything else (no key or a wrong one, a body announced
        too large, the rate limit reached, a browser's request) returns False before the
        body is read, and the app answers it. The answers are the app's (tests/test_server.py)."""
        if "collector" not in state:
            return False
        auth = length = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"content-length":
                length = value
            elif name == b"origin":
                return False
        key = bearer(auth.decode("latin-1")) if auth is not None else None
        limit = state["max_body"]
        try:
            role = _keys().role(key) if key else None
        except ApiError:
            return False
        if (role is None or role == VIEWER
                or (length is not None and (not length.isdigit() or int(length) > limit))
                or state["limit"].wait(key)):
            return False
        try:
            raw = await read_body(received(receive), limit, body_idle)
        except ApiError as exc:
            await send_json(send, exc.status, exc.envelope())
            return True
        except ClientDisconnect:
            return True
        try:
            answer = await state["collector"].collect(raw)
        except Exception as exc:
            await send_json(send, 500, crashed(exc, "POST", "/v1/batch"))
            return True
        await send_json(send, 200 if answer["ok"] else answer["status"], answer)
        return True

    @app.get("/healthz", summary="Liveness: the server is up and its store open")
    async def healthz() -> Response:
        return json_response({"ok": True, "version": __version__})

    @app.post("/v1/batch", summary="Send track, page, identify and alias calls",
              response_model=None, openapi_extra=_BATCH_DOC)
    async def batch(request: Request) -> Response:
        _check_origin(request)
        if request.headers.get("authorization"):
            _authorise(request)
            raw = await _body(request)
        else:  # the key is in the body (navigator.sendBeacon cannot set headers)
            raw = await _body(request)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ApiError("request/bad-json", f"the body is not JSON: {exc}") from None
            _authorise(request, data.get("key") if isinstance(data, dict) else None)
        # The body is taken apart with the others of its group commit, in the store.
        answer = await state["collector"].collect(raw)
        if not answer["ok"]:
            error = answer["error"]
            raise ApiError(error["code"], error["message"])
        return json_response(answer)

    async def _read(fn: Any) -> Any:
        def locked() -> Any:
            with state["lock"]:
                collector = state["collector"]
                with state["drain_lock"]:
                    collector.drain()  # every answered event is read (or erased)
                if lake is not None and collector.totals.accepted != state["lake_read"]:
                    # The collector appended to the lake: read it as it is now.
                    state["lake_read"] = collector.totals.accepted
                    state["ws"].read_lake(lake)
                ws = state["ws"]
                ws.invalidate()  # the collector wrote through its own connection
                return fn(ws)
        return await run_in_threadpool(locked)

    async def _analyse(fn: Any, *, own_tables: bool = True, key: Hashable | None = None) -> Any:
        """Run ``fn`` on the reader (the last refresh's tables), never waiting for a
        refresh but the first; over a lake, as :func:`_read`. Its answer is kept under
        ``key`` (results.py) until the tables it reads change: the derived tables, or with
        ``own_tables`` the store's own (quarantine, batches), which then first take in every
        answered event."""
        if "refresher" not in state:
            return await _read(fn)

        def reading() -> Any:
            if not state["refresher"].ready.wait(FIRST_REFRESH):
                raise ApiError("server/warming-up", "the first refresh of the derived tables is "
                               "still running; try again shortly")
            if key is not None and not own_tables and state["refresher"].renewing.is_set():
                kept = state["results"].latest(key)  # while the tables are renewed
                if kept is not None:
                    return kept
            if own_tables:
                with state["drain_lock"]:
                    state["collector"].drain()
            with state["read_lock"]:
                reader = state["reader"]
                if key is None:
                    return fn(reader)
                tables = reader.tables_read()
                if own_tables:
                    tables = ((tables[0], reader.store_read()), tables[1])
                store = state["own_results" if own_tables else "results"]
                kept = store.get(key, tables)
                if kept is not None:
                    return kept
                answer = fn(reader)
                store.put(key, tables, answer, fn)
                return answer
        return await run_in_threadpool(reading)

    async def _write(fn: Any) -> Any:
        """Run ``fn`` on the workspace that writes the store; kept answers are forgotten (a
        change kept alters the playbook)."""
        answer = await _read(fn)
        for name in ("results", "own_results"):
            if name in state:
                state[name].clear()
        return answer

    @app.get("/v1/summary", summary="What the workspace holds (secret key)")
    async def summary(request: Request) -> Response:
        _authorise(request, need=SECRET)
        data = await _read(lambda ws: ws.summary())
        return json_response({"ok": True, **data}, headers=None)

    @app.get("/v1/collector", summary="What this server stored since it started (secret key)")
    async def collector(request: Request) -> Response:
        _authorise(request, need=SECRET)
        return json_response({"ok": True, **asdict(state["collector"].totals)})

    @app.delete("/v1/persons/{person}", summary="Erase a person from every table (secret key)")
    async def forget(person: str, request: Request) -> Response:
        _authorise(request, need=SECRET)
        result = await _read(lambda ws: forget_surveyed(ws, person, state["surveys"],
                                                             state["interventions"].drop))
        if "results" in state:  # kept answers may name the person
            state["results"].clear()
            state["own_results"].clear()
        return json_response({"ok": True, **asdict(result)})

    @app.delete("/v1/quarantine", summary="Delete quarantined rows, all or one source's "
                "(secret key)")
    async def clear_quarantine(request: Request, source: str | None = None) -> Response:
        _authorise(request, need=SECRET)
        removed = await _read(lambda ws: ws.clear_quarantine(source))
        return json_response({"ok": True, "removed": removed, "source": source})

    add_analysis_routes(app, _authorise, _analyse)
    add_survey_routes(app, state, _authorise, _check_origin, _body)
    add_text_routes(app, state, _authorise, _check_origin, _body)
    add_change_routes(app, _authorise, _read, _write, _body)
    add_context_routes(app, _authorise, _analyse)
    add_pages(app, _keys, _analyse, _write)

    # The SDK is one script for pages: its core, then its surveys and its interventions (which
    # extend it); the surveys part is also served alone (docs/sdk.md).
    sdk_dir = resources.files("microjourney").joinpath("sdk")
    surveys_text = sdk_dir.joinpath("microjourney-surveys.js").read_bytes()
    whole = b"\n".join(sdk_dir.joinpath(f).read_bytes() for f in
                       ("microjourney.js", "microjourney-surveys.js", "microjourney-interventions.js"))
    sdk_files = {name: (text, {"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff",
                               "ETag": f'"{hashlib.sha256(text).hexdigest()[:20]}"'})
                 for name, text in (("microjourney.js", whole), ("microjourney-surveys.js", surveys_text))}

    @app.api_route("/sdk/{name}", methods=["GET", "HEAD"], summary="The browser SDK",
                   include_in_schema=False)
    async def sdk(request: Request, name: str) -> Response:
        if name not in sdk_files:
            raise ApiError("request/not-found", f"no file {name[:40]!r} in the SDK")
        text, headers = sdk_files[name]
        if matches(request.headers.get("if-none-match", ""), headers["ETag"]):
            return Response(status_code=304, headers=headers)
        return Response(text, media_type="text/javascript", headers=headers)

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(openapi_components())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.lean = lean_batch
    return app


class _App(FastAPI):
    """The app, with a lean road for the collector's common request (``lean``, set by
    :func:`create_app`): tried first, it says whether it answered."""

    lean: Callable[[Scope, Receive, Send], Awaitable[bool]] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The server's own origins (:meth:`listening`), allowed beside server.cors_origins.
        self.own: set[str] = set()

    def listening(self, url: str) -> None:
        """The server listens at ``url``: pages it serves may send their origin."""
        self.own |= own_origins(url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if (self.lean is not None and scope["type"] == "http" and scope["path"] == "/v1/batch"
                    and scope["method"] == "POST" and await self.lean(scope, receive, send)):
                return
            await super().__call__(scope, receive, send)
        except Exception:  # answered and logged (_crash); uvicorn would log the traceback
            if scope["type"] != "http":
                raise


def _origins(directory: str | Path) -> list[str]:
    """The CORS allow-list, read from the workspace file before the app starts."""
    from ..spec.load import load_workspace
    from ..workspace import spec_file

    return list(load_workspace(spec_file(directory)).server.cors_origins)


_BATCH_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/BatchRequest"}}},
    },
    "responses": {
        "200": {"description": "Stored (committed) calls and the rejected ones, with reasons",
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/BatchAnswer"}}}},
        "400": {"description": "Not JSON, or not a batch",
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
        "401": {"description": "No key or a wrong key",
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
        "413": {"description": "Body or batch too large",
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
        "429": {"description": "Rate limit; see Retry-After",
                "content": {JSON: {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}},
    },
}
