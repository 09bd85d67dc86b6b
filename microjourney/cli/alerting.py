"""``microjourney send-alerts``: send the regressions the ``alerts`` analysis finds to the
workspace's webhooks, each at most once (docs/webhooks.md); ``microjourney send-review``:
send a whole week's review to ``review.webhooks``, once per week and URL. ``microjourney
serve`` does both by itself; these commands are for a workspace no server holds (a job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import QueryError
from ..webhooks import deliver, origin
from .common import JsonOpt, WorkspaceOpt, _open, _print_json, app, out
from .served import refuse_while_served


@app.command("send-alerts")
def send_alerts(
    since: Annotated[str | None, typer.Option(help="Only alerts starting on or after this UTC day "
                                              "(YYYY-MM-DD).")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Send each regression alert to the workspace's webhooks (alerts.webhooks), signed and
    retried; an alert already sent to a URL is not sent again."""
    refuse_while_served(workspace, "send-alerts", "the server sends alerts itself")
    with _open(workspace) as ws:
        hooks = ws.spec.alerts.webhooks
        found = ws.analysis("alerts", since=since).to_dict()["tables"]["alerts"]
        done = deliver(ws.con, found, hooks) if hooks else []
    rows = [{"alert_id": d.alert_id, "to": origin(d.url), "status": d.status, "tries": d.tries,
             "answer": d.answer, "error": d.error} for d in done]
    if as_json:
        _print_json({"alerts": len(found), "deliveries": rows})
        return
    if not hooks:
        out.print(f"{len(found)} alerts; no webhooks in the workspace (alerts.webhooks, "
                  "docs/webhooks.md): nothing sent")
        return
    t = Table(title=f"{len(found)} alerts to {len(hooks)} webhooks")
    for label in ("alert", "to", "status", "tries", "answer"):
        t.add_column(label)
    for r in rows:
        t.add_row(r["alert_id"], escape(r["to"]), r["status"], str(r["tries"]),
                  "" if r["answer"] is None else str(r["answer"]))
    out.print(t)


@app.command("send-review")
def send_review(
    week: Annotated[str | None, typer.Option(help="The ISO week, e.g. 2026-W43 (default: the last "
                                             "whole week: over, and covered by the data to its "
                                             "Sunday).")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Send the weekly review of a whole week to the workspace's webhooks (review.webhooks),
    signed and retried; a week already sent to a URL is not sent again."""
    from ..server import reviewing  # the server's sender: one body, one delivery key

    refuse_while_served(workspace, "send-review", "the server sends each week's review itself")
    with _open(workspace) as ws:
        hooks = ws.spec.review.webhooks
        as_of, today = ws.as_of_ms(), reviewing.today()
        if week is not None:
            week = reviewing.whole_week(week, as_of, today)
        if not hooks:
            if as_json:
                _print_json({"week": week, "deliveries": []})
            else:
                out.print("no webhooks in the workspace (review.webhooks, docs/webhooks.md): nothing sent")
            return
        week = week or reviewing.last_whole_week(as_of, today)
        if week is None:
            raise QueryError("send-review: the workspace holds no events yet: no whole week to "
                             "review", code="query/option")
        body, done = reviewing.send(ws, ws.con, hooks, week)
    rows = [{"to": origin(d.url), "status": d.status, "tries": d.tries, "answer": d.answer,
             "error": d.error} for d in done]
    if as_json:
        _print_json({"week": week, "review_id": body["review_id"], "headline": body["headline"],
                     "deliveries": rows})
        return
    t = Table(title=f"review {week} to {len(hooks)} webhooks: {escape(body['headline'])}")
    for label in ("to", "status", "tries", "answer", "why"):
        t.add_column(label)
    for r in rows:
        t.add_row(escape(r["to"]), r["status"], str(r["tries"]),
                  "" if r["answer"] is None else str(r["answer"]), escape(r["error"] or ""))
    out.print(t)
