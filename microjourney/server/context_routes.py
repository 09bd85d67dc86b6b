"""``GET /v1/persons/{id}/context`` (secret key): a person's context for an agent desktop or
a chatbot taking over, so that nobody asks the customer twice (docs/handoff.md). ``{id}`` is
any identifier of the person; the answer is :meth:`Workspace.context`, read from the derived
tables of the last background refresh (``meta``: ``as_of``, ``refreshed_at``, ``stale_s``)
and never kept (it names a person; an erasure must take it away at once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from ..errors import QueryError
from ..store.keys import SECRET
from .guards import json_response

#: The default window of recent attempts, in days, and the longest (workspace_context.py's).
DAYS, MAX_DAYS = 7, 366


def days_of(value: str | None) -> int:
    """``?days=`` as a whole number of days (the default when absent); ``query/option``
    otherwise (the range is the workspace's to check)."""
    if value is None or value == "":
        return DAYS
    text = value.strip()
    if not text.isdigit() or len(text) > 4:  # no sign, no fraction, nothing huge
        raise QueryError(f"days: a whole number of days from 1 to {MAX_DAYS}", code="query/option")
    return int(text)


def add_routes(app: FastAPI, authorise: Callable[..., str],
               analyse: Callable[..., Awaitable[Any]]) -> None:
    """The context route; ``analyse`` runs a function on the last refresh's tables (app.py)."""

    @app.get("/v1/persons/{person:path}/context", tags=["hand-off"],
             summary="A person's open and recent attempts, frictions, what they entered and "
                     "verified, scores and last intervention (secret key)")
    async def context(person: str, request: Request, days: str | None = None) -> Response:
        """``days``: recent attempts are those that ended in the last ``days`` days of the
        data (1 to 366; default 7)."""
        authorise(request, need=SECRET)
        window = days_of(days)
        found = await analyse(lambda ws: ws.context(person, days=window), own_tables=False)
        return json_response({"ok": True, **found})
