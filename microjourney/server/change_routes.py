"""The change playbook's routes (secret key): keep a change shipped to a moment, list the
changes, remove one (docs/playbook.md). The dashboard's playbook page posts its form to the
same workspace method."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..store.keys import SECRET
from .guards import json_response
from .survey_calls import bad, json_body

#: The fields of a change as the API takes them (``date``: the day it shipped).
FIELDS = ("moment", "date", "kind", "title", "experiment", "note")


def change_of(data: Any) -> dict[str, Any]:
    """The change in a request's JSON object, its fields checked for type (the workspace
    checks their values)."""
    if not isinstance(data, dict):
        raise bad("body", "a JSON object with moment, date, kind and title")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise bad(str(unknown[0])[:40], f"not a field of a change; fields: {', '.join(FIELDS)}")
    for name in FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise bad(name, "a string")
        if name in ("moment", "date", "kind", "title") and not value:
            raise bad(name, "required")
    return {k: data.get(k) for k in FIELDS}


def add_routes(app: FastAPI, authorise: Callable[..., str], read: Callable[[Any], Awaitable[Any]],
               write: Callable[[Any], Awaitable[Any]],
               body: Callable[[Request], Awaitable[bytes]]) -> None:
    """``POST``/``GET /v1/changes``, ``DELETE /v1/changes/{id}``; ``read`` runs a function on
    the workspace that writes the store, ``write`` too and then forgets kept answers (the
    playbook's no longer hold)."""

    @app.post("/v1/changes", summary="Keep a change shipped to a moment (secret key)",
              tags=["playbook"])
    async def add(request: Request) -> Response:
        authorise(request, need=SECRET)
        c = change_of(json_body(await body(request)))
        kept = await write(lambda ws: ws.add_change(c["moment"], c["date"], c["kind"], c["title"],
                                                   experiment=c["experiment"], note=c["note"],
                                                   source="api"))
        return json_response({"ok": True, **kept}, status=201 if kept["new"] else 200)

    @app.get("/v1/changes", summary="The changes kept, by day (secret key)", tags=["playbook"])
    async def listed(request: Request, moment: str | None = None) -> Response:
        authorise(request, need=SECRET)
        rows = await read(lambda ws: ws.changes(moment))
        return json_response({"ok": True, "changes": rows})

    @app.delete("/v1/changes/{change_id}", summary="Forget a change (secret key)", tags=["playbook"])
    async def remove(change_id: str, request: Request) -> Response:
        authorise(request, need=SECRET)
        gone = await write(lambda ws: ws.remove_change(change_id))
        if not gone:
            raise ApiError("query/no-change", f"no change {change_id[:40]!r}")
        return json_response({"ok": True, "removed": True, "change_id": change_id})
