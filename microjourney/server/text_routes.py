"""``POST /v1/texts``: customer texts (searches, help-centre searches, chat messages, agent
notes) sent live, stored as ``customer_text`` events through the collector (docs/intents.md,
"Customer texts"; docs/collector.md, "Texts").

Like ``POST /v1/responses`` it takes the write key (or the secret key); each text is checked
here (a text of 1 to 5,000 characters, a known source, an identifier), then stored as a
track call: acknowledged after its commit, withheld without consent where the workspace
requires it, scrubbed like any event. A text with an ``id`` keeps its event id, so a
retried request stores it once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..ingest.texts import MAX_TEXT, SOURCES, TEXT
from .guards import JSON, json_response
from .survey_calls import (
    bad,
    channel_field,
    consent_context,
    digest,
    flag_field,
    json_body,
    text_field,
    timestamp_field,
)

#: Texts in one request.
MAX_TEXTS = 100


def call(item: Any, where: str, now: datetime, tolerance: float) -> dict[str, Any]:
    """One text of a request as a track call, checked (``where``: its place)."""
    if not isinstance(item, dict):
        raise bad(where or "body", "a text is a JSON object")
    said = text_field(item.get("text"), f"{where}text", required=True, limit=MAX_TEXT) or ""
    if not said.strip():
        raise bad(f"{where}text", "empty")
    source = text_field(item.get("source"), f"{where}source") or "other"
    if source not in SOURCES:
        raise bad(f"{where}source", f"unknown source {source[:40]!r}; sources: {', '.join(SOURCES)}")
    anonymous = text_field(item.get("anonymous_id"), f"{where}anonymous_id")
    user = text_field(item.get("user_id"), f"{where}user_id")
    if not anonymous and not user:
        raise bad(f"{where}anonymous_id", "an anonymous_id or a user_id is required")
    ident = text_field(item.get("id"), f"{where}id")
    consent = flag_field(item.get("consent"), f"{where}consent")
    props = {"text": said, "source": source, **({"text_id": ident} if ident else {})}
    return {"type": "track", "event": TEXT,
            "event_id": "mj-text-" + (digest(source, ident) if ident else digest(said, str(now.timestamp()),
                                                                             anonymous or user or "")),
            "timestamp": timestamp_field(item.get("timestamp"), f"{where}timestamp", now, tolerance),
            "anonymous_id": anonymous, "user_id": user,
            "channel": channel_field(item.get("channel"), f"{where}channel"),
            "properties": props, "context": consent_context(consent)}


def calls(body: Any, now: datetime, tolerance: float) -> list[dict[str, Any]]:
    """The texts of a request: one text, a list of them, or ``{"texts": [...]}``."""
    prefix = ""
    if isinstance(body, dict) and "texts" in body:
        body, prefix = body["texts"], "texts"
    if isinstance(body, dict):
        return [call(body, "", now, tolerance)]
    if not isinstance(body, list) or not body:
        raise bad(prefix or "body", "a text (a JSON object) or a non-empty list of them")
    if len(body) > MAX_TEXTS:
        raise bad(prefix or "body", f"{len(body):,} texts; at most {MAX_TEXTS}")
    return [call(item, f"{prefix}[{i}].", now, tolerance) for i, item in enumerate(body)]


def add_routes(app: FastAPI, state: dict[str, Any], authorise: Callable[..., str],
               check_origin: Callable[[Request], None],
               body: Callable[[Request], Awaitable[bytes]]) -> None:
    """The texts route; ``state`` holds the collector and the workspace's spec."""

    @app.post("/v1/texts", summary="Customer texts: searches, chat messages, agent notes "
              "(write key)", tags=["texts"], response_model=None,
              openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
                  "type": "object", "properties": {"texts": {"type": "array", "items": {
                      "$ref": "#/components/schemas/CustomerText"}}}}}}},
                  "responses": {"200": {"description": "Stored; acknowledged after the commit",
                                        "content": {JSON: {"schema": {
                                            "$ref": "#/components/schemas/BatchAnswer"}}}}}})
    async def texts(request: Request) -> Response:
        check_origin(request)
        authorise(request)
        data = json_body(await body(request))
        spec = state["surveys"].spec
        batch = calls(data, datetime.now(UTC), spec.ingest.future_tolerance)
        answer: dict[str, Any] = await state["collector"].collect(orjson.dumps({"batch": batch}))
        if not answer["ok"]:
            raise ApiError(answer["error"]["code"], answer["error"]["message"])
        return json_response(answer)
