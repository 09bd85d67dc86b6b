"""The owner's weekly review page (``/review``): the ``review`` analysis's headline and how
many moments are red, amber, green and grey, then one panel per view of the analysis, the
moments grouped by owner with their colour marked (docs/dashboard.md, "Weekly review";
docs/review.md). Its fields are the analysis's own: the ISO week and the owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from .. import registry

Analyse = Callable[..., Awaitable[Any]]
#: What a page builder is given to fill its template (dashboard.py's ``signed_page``).
Page = Callable[..., Callable[[Any], Any]]
#: The review's colours, worst first (``analysis.review.RAGS``; tests/test_review_page.py
#: holds the two equal): a ``rag`` cell holding one gets the class ``rag rag-COLOUR``.
RAGS = ("red", "amber", "green", "grey")
#: The page's fields, the analysis's parameters of the same names (kept in the URL).
FIELDS = ("week", "owner")
#: Rows each panel shows at most.
ROWS = 200


def add(signed_page: Page, analyse: Analyse,
        result: Callable[[Analyse, str, dict[str, Any]], Awaitable[dict[str, Any]]],
        panel: Callable[[dict[str, Any], str, str, int], dict[str, Any]]) -> None:
    """The ``/review`` page."""

    @signed_page("/review", "review.html", "review", panels=[], owners=[], chosen={}, week="",
                 rags=RAGS)
    async def review(request: Request, c: dict[str, Any]) -> None:
        c["filters"], c["query"] = {}, ""  # the review takes no period, channel or where
        chosen = c["chosen"] = {k: request.query_params.get(k, "").strip() for k in FIELDS}
        c["week"] = chosen["week"]  # what was asked, shown again if it is wrong
        c["owners"] = await analyse(owners, own_tables=False)
        r = await result(analyse, "review", {k: v for k, v in chosen.items() if v})
        panels = [panel(r, "review", v.table, ROWS) for v in registry.get("review").views]
        marks = {"rag": {colour: f"rag rag-{colour}" for colour in RAGS}}
        for shown in panels:
            shown["marks"] = marks
        moments = panels[0]
        names = [col["name"] for col in moments["columns"]]
        if "owner" in names:  # the table is sorted by owner: a sub-heading per owner
            at = names.index("owner")
            moments["groups"] = [row[at] for row in moments["rows"]]
        moments["warnings"] = r["warnings"]
        c.update(meta=r["meta"], panels=panels, week=r["meta"].get("week") or chosen["week"])


def owners(ws: Any) -> list[str]:
    """The owners the workspace's moments declare, sorted (the review's order)."""
    return sorted({m.owner for m in ws.moments.values() if m.owner})


__all__ = ["RAGS", "add"]
