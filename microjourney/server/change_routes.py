"""The team's records over HTTP (secret key): keep a change shipped to a moment, list the
changes, remove one (docs/playbook.md); freeze a moment's baseline, list them
(docs/review.md). The dashboard's playbook page posts its form to the same workspace method."""

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

    @app.post("/v1/baselines/{moment}", summary="Freeze a moment's baseline (secret key)",
              tags=["playbook"])
    async def freeze(moment: str, request: Request) -> Response:
        authorise(request, need=SECRET)
        raw = await body(request)
        data = json_body(raw) if raw.strip() else {}
        if not isinstance(data, dict):
            raise bad("body", "a JSON object with since, until and days (each optional)")
        since, until, days = data.get("since"), data.get("until"), data.get("days", 28)
        if not all(x is None or isinstance(x, str) for x in (since, until)):
            raise bad("since", "a day as YYYY-MM-DD")
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3660:
            raise bad("days", "a whole number of days from 1 to 3660")
        kept = await write(lambda ws: ws.freeze_baseline(moment, since=since, until=until, days=days))
        return json_response({"ok": True, **kept}, status=201)

    @app.get("/v1/baselines", summary="The baselines frozen, newest first (secret key)",
             tags=["playbook"])
    async def baselines(request: Request, moment: str | None = None) -> Response:
        authorise(request, need=SECRET)
        rows = await read(lambda ws: ws.baselines(moment))
        return json_response({"ok": True, "baselines": rows})

    @app.delete("/v1/changes/{change_id}", summary="Forget a change (secret key)", tags=["playbook"])
    async def remove(change_id: str, request: Request) -> Response:
        authorise(request, need=SECRET)
        gone = await write(lambda ws: ws.remove_change(change_id))
        if not gone:
            raise ApiError("query/no-change", f"no change {change_id[:40]!r}")
        return json_response({"ok": True, "removed": True, "change_id": change_id})
