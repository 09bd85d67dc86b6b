"""``microjourney send-alerts``: send the regressions the ``alerts`` analysis finds to the
workspace's webhooks, each at most once (docs/webhooks.md). ``microjourney serve`` does the
same by itself; this command is for a workspace no server holds (a nightly job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

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
