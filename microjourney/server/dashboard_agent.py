"""The agent view (``/agent?person=ID``): a person's context (``Workspace.context``, the same
answer as ``GET /v1/persons/{id}/context``) as panels an agent reads before talking to
them: open attempts first, then recent ones, the frictions in them, what they entered and
verified, their scores and the last intervention (docs/handoff.md, docs/dashboard.md).
Every value is text in the template (autoescaped): a field named ``<script>`` shows as such."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import Request

from .. import fmt
from .context_routes import days_of

Analyse = Callable[..., Awaitable[Any]]
#: What a page builder is given to fill its template (dashboard.py's ``signed_page``).
Page = Callable[..., Callable[[Any], Any]]
#: The attempt panels' columns.
ATTEMPT = ("attempt", "moment", "channels", "start", "end", "outcome", "furthest step", "escalated",
           "duration")


def add(signed_page: Page, analyse: Analyse) -> None:
    """The ``/agent`` page."""

    @signed_page("/agent", "agent.html", "agent", person="", days=7, context=None, panels=[])
    async def agent(request: Request, c: dict[str, Any]) -> None:
        c["filters"], c["query"] = {}, ""  # the page takes a person and days, no filters
        person = c["person"] = request.query_params.get("person", "")
        c["days"] = request.query_params.get("days", "") or 7
        if not person:
            return  # the form alone
        days = days_of(request.query_params.get("days"))
        found = await analyse(lambda ws: ws.context(person, days=days), own_tables=False)
        c.update(context=found, meta=found["meta"], panels=panels(found))


def panels(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """The context as panels: ``id``, ``title``, ``columns`` and ``rows`` of cells (text,
    and ``href`` for an attempt's link), ``empty`` when it has no row."""
    entered = ctx["entered"]
    last = ctx["last_intervention"]
    return [
        _panel("open", "Open attempts", ATTEMPT, [_attempt(a) for a in ctx["open"]],
               "No attempt in progress."),
        _panel("recent", f"Recent attempts (last {ctx['meta']['days']} days)", ATTEMPT,
               [_attempt(a) for a in ctx["recent"]], "No attempt ended in this period."),
        _panel("frictions", "Frictions in these attempts",
               ("attempt", "moment", "kind", "step", "seconds lost", "when"),
               [[_link(f["attempt_id"]), _text(f["moment"]), _text(f["kind"]), _text(f["step"]),
                 _text(fmt.seconds(f["seconds_lost"])), _text(_when(f["at"]))] for f in ctx["frictions"]],
               "No friction found in these attempts."),
        _panel("entered", "Already entered (names only, never the values)",
               ("field or step", "event", "moment", "keys given", "times", "channels", "last"),
               [[_text(x["field"]), _text("field"), _text(None), _text(None), _text(str(x["times"])),
                 _text(", ".join(x["channels"])), _text(_when(x["last"]))] for x in entered["fields"]]
               + [[_text(x["step"] or x["event"]), _text(x["event"]), _text(x["moment"]),
                   _text(", ".join(x["keys"]) or None), _text("1"), _text(x["channel"]),
                   _text(_when(x["at"]))] for x in entered["inputs"]],
               "Nothing entered in this period."),
        _panel("verified", "Verified", ("how", "what", "moment", "attempt", "channel", "when"),
               [[_text(v["how"]), _text(v["what"]), _text(v["moment"]), _link(v["attempt_id"]),
                 _text(v["channel"]), _text(_when(v["at"]))] for v in ctx["verified"]],
               "Nothing verified in this period."),
        _panel("scores", "Latest survey scores", ("survey", "question", "type", "score", "moment",
                                                  "attempt", "when"),
               [[_text(s["survey"]), _text(s["question"]), _text(s["type"]), _text(str(s["score"])),
                 _text(s["moment"]), _link(s["attempt_id"]), _text(_when(s["at"]))] for s in ctx["scores"]],
               "No survey score."),
        _panel("intervention", "Last intervention", ("event", "intervention", "decision", "offer",
                                                     "channel", "when"),
               [[_text(x["event"]), _text(x["intervention"]), _text(x["decision"]), _text(x["offer"]),
                 _text(x["channel"]), _text(_when(x["at"]))] for x in ([last] if last else [])],
               "No intervention shown to this person."),
    ]


def _panel(ident: str, title: str, columns: tuple[str, ...], rows: list[list[dict[str, Any]]],
           empty: str) -> dict[str, Any]:
    return {"id": ident, "title": title, "columns": columns, "rows": rows, "empty": empty}


def _attempt(a: dict[str, Any]) -> list[dict[str, Any]]:
    moment = a["moment"] + (f" ({a['title']})" if a.get("title") else "")
    return [_link(a["attempt_id"]), _text(moment), _text(", ".join(a["channels"]) or a["channel"]),
            _text(_when(a["start"])), _text(_when(a["end"])), _text(a["outcome"]),
            _text(a["furthest_step"]), _text("yes" if a["escalated"] else "no"),
            _text(fmt.seconds(a["duration_s"]))]


def _text(value: Any) -> dict[str, Any]:
    return {"text": fmt.DASH if value is None or value == "" else str(value)}


def _link(attempt: str | None) -> dict[str, Any]:
    return _text(attempt) if attempt is None else {"text": attempt, "href": attempt}


def _when(iso: str | None) -> str | None:
    """``2024-01-01 10:01:25 UTC`` (the answer's times are UTC)."""
    if iso is None:
        return None
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S UTC")


__all__ = ["add", "panels"]
