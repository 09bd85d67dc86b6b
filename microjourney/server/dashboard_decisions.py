"""The dashboard's pages for deciding what to change and whether it worked: experiments
(verdict first), the change playbook (its form adds a change; secret key only) and the
regression alerts (docs/dashboard.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from .. import registry
from ..errors import MicrojourneyError
from ..spec.changes import KINDS
from ..store.keys import SECRET

Analyse = Callable[..., Awaitable[Any]]
#: What a page builder is given to fill its template (dashboard.py's ``signed_page``).
Page = Callable[..., Callable[[Any], Any]]


def add(app: FastAPI, signed_page: Page, analyse: Analyse, write: Analyse,
        result: Callable[[Analyse, str, dict[str, Any]], Awaitable[dict[str, Any]]],
        panel: Callable[[dict[str, Any], str, str, int], dict[str, Any]],
        headline: Callable[[dict[str, Any]], str],
        form_of: Callable[[Request], Awaitable[dict[str, str] | None]],
        session_of: Callable[[Request], tuple[str, str] | None],
        same_form: Callable[[str | None, str], bool],
        render: Callable[..., Response]) -> None:
    """The experiments, playbook and alerts pages; ``write`` runs a function on the
    workspace that writes the store (and forgets kept answers)."""

    @signed_page("/experiments", "plain.html", "experiments", title="Experiments", panels=[])
    async def experiments(request: Request, c: dict[str, Any]) -> None:
        """Each experiment declared: its verdict first (the panel's title), then every metric
        against the control, then its other tables (the effect by week, the exposure split)."""
        names = await analyse(lambda ws: [e.name for e in ws.spec.experiments], own_tables=False)
        panels, meta = [], {}
        views = [v.table for v in registry.get("experiment").views]
        for name in names:
            r = await result(analyse, "experiment", {**c["filters"], "experiment": name})
            meta = r["meta"]
            panels.append({**panel(r, "experiment", "metrics", 60), "title": f"{name}: {headline(r)}",
                           "warnings": r["warnings"]})
            for view in views[1:]:
                shown = panel(r, "experiment", view, 60)
                panels.append({**shown, "title": f"{name}: {shown['title']}"})
        if not names:
            c["message"] = "No experiment is declared in this workspace (docs/experiments.md)."
        c.update(meta=meta, panels=panels)

    async def playbook_context(c: dict[str, Any]) -> None:
        r = await result(analyse, "playbook", c["filters"])
        names = await analyse(lambda ws: (list(ws.moments), [e.name for e in ws.spec.experiments]),
                              own_tables=False)
        # The intervention rules beside the changes, each measured against its holdout.
        rules = await result(analyse, "interventions", {})
        c.update(meta=r["meta"], moments=names[0], experiments=names[1],
                 panels=[panel(r, "playbook", v.table, 100) for v in registry.get("playbook").views]
                 + [{**panel(rules, "interventions", "rules", 100), "warnings": rules["warnings"]}])

    @signed_page("/playbook", "playbook.html", "playbook", panels=[], kinds=KINDS, moments=[],
                 experiments=[], form={}, kept=None)
    async def playbook(request: Request, c: dict[str, Any]) -> None:
        if request.query_params.get("kept"):
            c["kept"] = f"Change {request.query_params['kept'][:40]} kept; its effect is below."
        await playbook_context(c)

    @app.post("/playbook", include_in_schema=False)
    async def add_change(request: Request) -> Response:
        who = session_of(request)
        if who is None:
            return RedirectResponse("/sign-in?" + urlencode({"next": "/playbook"}), status_code=303)
        form = await form_of(request)
        if form is None or not same_form(form.get("csrf"), who[1]):
            return render("message.html", 403, title="Not kept", role=who[0],
                          message="This form was not sent from a page of this dashboard.")
        if who[0] != SECRET:
            return render("message.html", 403, title="Not kept", role=who[0],
                          message="Only the secret key's session may add a change.")
        try:
            kept = await write(lambda ws: ws.add_change(
                form.get("moment", ""), form.get("date", ""), form.get("kind", ""),
                form.get("title", ""), experiment=form.get("experiment") or None, source="dashboard"))
        except MicrojourneyError as exc:
            c: dict[str, Any] = {"role": who[0], "csrf": form.get("csrf"), "here": "playbook",
                                 "filters": {}, "query": "", "error": exc.message, "meta": {},
                                 "kinds": KINDS, "form": form, "kept": None}
            await playbook_context(c)
            return render("playbook.html", 400, **c)
        return RedirectResponse("/playbook?" + urlencode({"kept": kept["change_id"]}), status_code=303)

    @signed_page("/alerts", "plain.html", "alerts", title="Regression alerts", panels=[])
    async def alerts(request: Request, c: dict[str, Any]) -> None:
        r = await result(analyse, "alerts", c["filters"])
        shown = [panel(r, "alerts", v.table, 100) for v in registry.get("alerts").views]
        shown[0]["warnings"] = r["warnings"]
        c.update(meta=r["meta"], panels=shown)
        if not r["tables"].get("alerts"):
            c["message"] = "No regression in the period: every moment's metrics are within their baseline."
