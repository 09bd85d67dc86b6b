"""The dashboard's pages: sign-in, sign-out and the portfolio (``/``), rendered on the
server from Jinja2 templates (``pages/``, every value escaped) with the numbers of the
registered analyses: the same results, kept per refresh, as ``/v1/analyses/{name}`` gives
for the same parameters (docs/dashboard.md).

A page needs a session (:mod:`.session`): without one it sends the browser to
``/sign-in``, which takes the secret or the viewer key, never the write key. The filters
(period, channel, ``where``) are the analyses' own, kept in the page's URL; a bad one is
shown on the page with the registry's message.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from .. import fmt, registry
from ..errors import MicrojourneyError
from ..ingest.schema import CHANNELS
from ..jsonable import script_safe
from ..registry import experiment as experiment_analysis
from ..registry import process_map
from ..registry.base import Column
from ..registry.scorecard import COLUMNS as SCORECARD_COLUMNS
from ..registry.scorecard import rank_key
from ..spec import KINDS
from ..store.keys import WRITE, Keys
from . import charts as charts_
from . import dashboard_agent as agent_page
from . import dashboard_decisions as decisions
from . import dashboard_review as review_page
from . import session
from .analyses import analysis_answer
from .guards import read_body

Analyse = Callable[..., Awaitable[Any]]
#: The filters every page takes from its URL (the analyses' common filters).
FILTERS = ("since", "until", "channel", "where")
#: The vendored chart libraries the pages load, in order (report/vendor/README.md).
VENDORED = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js", "vega-interpreter.min.js",
            "dagre.min.js")
#: Bytes a sign-in or sign-out form may have.
FORM_LIMIT = 4096
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store",
}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("microjourney.server", "pages"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_templates.globals["CHANNELS"] = CHANNELS


def add_pages(app: FastAPI, keys: Callable[[], Keys], analyse: Analyse, write: Analyse) -> None:
    """The dashboard's routes; ``keys()``: the workspace's keys as the server holds them,
    ``analyse``: runs a function of the workspace on the last refresh, ``write``: on the
    workspace that writes the store (app.py)."""
    pages = resources.files("microjourney.server").joinpath("pages")
    assets = {"dashboard.css": (pages.joinpath("dashboard.css").read_bytes(), "text/css"),
              "dashboard.js": (pages.joinpath("dashboard.js").read_bytes(), "text/javascript")}
    report = resources.files("microjourney.report")
    assets["processmap.js"] = (report.joinpath("processmap.js").read_bytes(), "text/javascript")
    vendor = report.joinpath("vendor")
    for name in VENDORED:
        assets[f"vendor/{name}"] = (vendor.joinpath(name).read_bytes(), "text/javascript")

    def page(template: str, status: int = 200, /, **values: Any) -> HTMLResponse:
        html = _templates.get_template(template).render(**values)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def signed_in(request: Request) -> tuple[str, str] | None:
        token = request.cookies.get(session.COOKIE)
        role = session.role_of(keys(), token)
        return None if role is None or token is None else (role, token)

    def to_sign_in(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/sign-in?" + urlencode({"next": target}), status_code=303,
                                headers=HEADERS)

    @app.get("/static/{path:path}", include_in_schema=False)
    async def static(path: str) -> Response:
        if path not in assets:
            return Response("not found", status_code=404, media_type="text/plain")
        body, media = assets[path]
        return Response(body, media_type=media, headers={"Cache-Control": "public, max-age=300",
                                                         "X-Content-Type-Options": "nosniff"})

    @app.get("/sign-in", include_in_schema=False)
    async def sign_in_form(request: Request, next: str = "/") -> Response:  # noqa: A002
        token = request.cookies.get(session.CSRF_COOKIE) or session.new_token()
        response = page("sign_in.html", csrf=token, next=_local(next), error=None)
        _cookie(response, session.CSRF_COOKIE, token, max_age=3600)
        return response

    @app.post("/sign-in", include_in_schema=False)
    async def sign_in(request: Request) -> Response:
        form = await _form(request)
        target = _local((form or {}).get("next", "/"))
        token = request.cookies.get(session.CSRF_COOKIE) or session.new_token()

        def refuse(status: int, error: str) -> Response:
            response = page("sign_in.html", status, csrf=token, next=target, error=error)
            _cookie(response, session.CSRF_COOKIE, token, max_age=3600)
            return response

        if form is None:
            return refuse(400, "The form could not be read; sign in again.")
        if not session.same(form.get("csrf"), request.cookies.get(session.CSRF_COOKIE)):
            return refuse(403, "This form has expired or was not sent from this page; sign in again.")
        role = keys().role(form.get("key", "").strip())
        if role == WRITE:
            return refuse(403, "The write key cannot sign in: it ships in web pages. Use the "
                               "viewer key (or the secret key) from `microjourney keys`.")
        if role not in session.ROLES:
            return refuse(401, "That is not this workspace's viewer or secret key.")
        response = RedirectResponse(target, status_code=303, headers=HEADERS)
        _cookie(response, session.COOKIE, session.issue(keys(), role), max_age=session.LIFETIME)
        response.delete_cookie(session.CSRF_COOKIE, path="/")
        return response

    @app.post("/sign-out", include_in_schema=False)
    async def sign_out(request: Request) -> Response:
        who = signed_in(request)
        form = await _form(request)
        if who is not None and form is not None and session.same(
                form.get("csrf"), session.form_token(keys(), who[1])):
            response = RedirectResponse("/sign-in", status_code=303, headers=HEADERS)
            response.delete_cookie(session.COOKIE, path="/")
            return response
        if who is None:
            return to_sign_in(request)
        return page("message.html", 403, title="Not signed out",
                    message="This form was not sent from a page of this dashboard.")

    Build = Callable[[Request, dict[str, Any]], Awaitable[Response | None]]

    def signed_page(path: str, template: str, here: str, **defaults: Any) -> Callable[[Build], Build]:
        """A page that needs a session: ``build(request, context)`` fills the template's
        context (or returns a response of its own); an analysis's error is shown on the
        page with its status (503 for the server's own)."""
        def register(build: Build) -> Build:
            async def handler(request: Request) -> Response:
                who = signed_in(request)
                if who is None:
                    return to_sign_in(request)
                filters = _filters(request)
                context = {"role": who[0], "csrf": session.form_token(keys(), who[1]), "here": here,
                           "filters": filters, "query": _query(filters), "error": None, "meta": {},
                           **defaults}
                try:
                    own = await build(request, context)
                except MicrojourneyError as exc:
                    context["error"] = exc.message
                    return page(template, exc.status if exc.status < 500 else 503, **context)
                if own is not None:
                    return own
                if "as_of" in context["meta"]:
                    context["meta"] = {**context["meta"], "as_of_text": fmt.when(context["meta"]["as_of"])}
                return page(template, **context)

            app.add_api_route(path, handler, methods=["GET"], include_in_schema=False)
            return build
        return register

    @signed_page("/", "portfolio.html", "portfolio", columns=_columns(), rows=[], headline=None,
                 by_value=False)
    async def portfolio(request: Request, c: dict[str, Any]) -> None:
        card = await _result(analyse, "scorecard", c["filters"])
        frictions = await _result(analyse, "frictions", c["filters"])
        moves = await _result(analyse, "week-on-week", c["filters"])
        weekly = await _result(analyse, "series", {**c["filters"], "every": "week"})
        value = await _result(analyse, "portfolio", c["filters"])
        rows = portfolio_rows(card, frictions, moves, weekly, value)
        c.update(meta=card["meta"], rows=rows, headline=moves["meta"].get("headline"),
                 by_value=any(r["value"] for r in rows))

    @signed_page("/journeys", "journeys.html", "journeys", groups=[])
    async def journeys(request: Request, c: dict[str, Any]) -> None:
        card = await _result(analyse, "scorecard", c["filters"])
        rows = portfolio_rows(card, await _result(analyse, "frictions", c["filters"]))
        by_moment = {r["moment"]: r for r in rows}
        groups: dict[str, list[dict[str, Any]]] = {}
        for r in card["tables"]["moments"]:  # the workspace's order: each journey's moments in turn
            groups.setdefault(r.get("journey") or "", []).append(by_moment[r["moment"]])
        c.update(meta=card["meta"], groups=list(groups.items()))

    def plain_page(path: str, title: str, analysis: str, limit: int) -> None:
        @signed_page(f"/{path}", "plain.html", path, title=title, panels=[])
        async def show(request: Request, c: dict[str, Any]) -> None:
            c["filters"], c["query"] = {}, ""  # the analysis takes none
            result = await _result(analyse, analysis, {})
            c.update(meta=result["meta"], panels=[panel(result, analysis, v.table, limit)
                                                  for v in registry.get(analysis).views])

    for path, title, analysis, limit in PLAIN_PAGES:
        plain_page(path, title, analysis, limit)

    decisions.add(app, signed_page, analyse, write, _result, panel, headline, _form, signed_in,
                  lambda form, token: session.same(form, session.form_token(keys(), token)), page)
    review_page.add(signed_page, analyse, _result, panel)
    agent_page.add(signed_page, analyse)

    @signed_page("/moments/{name}/attempts", "attempts.html", "moment", kinds=KINDS, outcomes=OUTCOMES,
                 panels=[])
    async def attempts(request: Request, c: dict[str, Any]) -> None:
        name = c["name"] = request.path_params["name"]
        chosen = c["chosen"] = {k: v for k, v in request.query_params.items() if k in EXPLORE and v}
        result = await _result(analyse, "attempts", {**c["filters"], **chosen, "moment": name,
                                                     "limit": EXPLORE_ROWS})
        # Each attempt id links to its timeline (_panel.html).
        c.update(panels=[{**panel(result, "attempts", "attempts", EXPLORE_ROWS),
                          "title": f"Attempts of {name}, newest first"}])

    @signed_page("/attempts/{attempt_id}", "plain.html", "attempt", panels=[])
    async def attempt(request: Request, c: dict[str, Any]) -> None:
        ident = request.path_params["attempt_id"]
        c.update(title=f"Attempt {ident}", filters={}, query="")
        result = await _result(analyse, "attempt", {"id": ident})
        c.update(meta=result["meta"], panels=[panel(result, "attempt", v.table, 500)
                                              for v in registry.get("attempt").views])

    async def trend_marks(name: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """The marks on a moment's trends: its changes and its regressions' starts."""
        changes = await analyse(lambda ws: ws.changes(name), own_tables=False)
        found = await _result(analyse, "alerts", {**filters, "moment": name})
        return ([{"day": str(c["day"]), "label": f"{c['kind']}: {c['title']}", "kind": "change"}
                 for c in changes] +
                [{"day": a["start"], "label": f"{a['metric']} regressed", "kind": "alert"}
                 for a in found["tables"].get("alerts", [])])

    @signed_page("/moments/{name}", "moment.html", "moment", row=None, panels=[], charts=[], graphs=[],
                 vendored=VENDORED, by="channel")
    async def moment(request: Request, c: dict[str, Any]) -> Response | None:
        name = c["name"] = request.path_params["name"]
        filters = c["filters"]
        card = await _result(analyse, "scorecard", filters)
        rows = {r["moment"]: r for r in portfolio_rows(card, await _result(analyse, "frictions", filters))}
        if name not in rows:
            return page("message.html", 404, title="No such moment",
                        message=f"There is no moment {name!r} in this workspace.")
        panels, charts, graphs = [], [], []
        marks = await trend_marks(name, filters)
        for analysis, extra, views, limit in MOMENT_PANELS:
            result = await _result(analyse, analysis, {**filters, **extra, "moment": name})
            if any(w["code"] == "no-surveys" for w in result["warnings"]):
                continue  # a moment no survey asks in: no panel to show
            panels += [panel(result, analysis, view, limit) for view in views]
            if analysis == "durations":
                spec = charts_.durations_spec(result["tables"].get("bands", []), result["meta"].get("sla_s"))
                charts.append({"id": "chart-durations", "json": _script_json(spec),
                               "label": "Completed attempts by time to complete, against the SLA"})
            if analysis == "series":
                row = rows[name]["raw"]
                target = row["target_value"] if row.get("target_metric") == "completion_rate" else None
                every = extra["every"]
                spec = charts_.series_spec(result["tables"].get("periods", []), target=target,
                                           title=f"Completion by {every}",
                                           period="week of" if every == "week" else "day",
                                           marks=marks)
                charts.append({"id": "chart-series" if every == "week" else "chart-daily",
                               "json": _script_json(spec),
                               "label": f"Completion by {every}, with its 95% interval and the target"})
            if analysis == "process-map":
                tables = result["tables"]
                drawn = process_map.graph(tables.get("edges", []), tables.get("nodes", []),
                                          result["meta"].get("path") or [])
                graphs.append({"id": "graph-process-map", "json": _script_json(drawn),
                               "shown": len(drawn["edges"]), "total": drawn["total_edges"],
                               "legend": drawn["legend"],
                               "label": f"Process map of {name}: its steps in layers, the "
                                        "designed path outlined"})
        # The breakdown: the scorecard by channel (or the property in the URL's `by`), this
        # moment's rows.
        by = c["by"] = request.query_params.get("by") or "channel"
        split = await _result(analyse, "scorecard", {**filters, "by": by})
        mine = [r for r in split["tables"].get("moments", []) if r.get("moment") == name]
        split = {**split, "tables": {"moments": mine}}
        panels.insert(1, {**panel(split, "scorecard", "moments", 50), "title": f"{name} by {by}",
                          "view": "breakdown"})
        c.update(meta=card["meta"], row=rows[name], panels=panels, charts=charts, graphs=graphs,
                 scorecard=_scorecard_cells(rows[name]))
        return None


#: The attempt explorer's own filters (the attempts analysis's), and the rows it lists.
EXPLORE, EXPLORE_ROWS = ("outcome", "kind", "reached"), 200
OUTCOMES = ("completed", "failed", "abandoned", "escalated", "in_progress")
#: The pages made of one analysis's views: path, title, analysis, rows shown at most.
PLAIN_PAGES = (("data-quality", "Data quality", "data-quality", 30),
               ("intents", "Intents: what customers ask", "intents", 60),
               ("peak-end", "Peak-End: what customers remember", "peak-end", 60))
#: The moment page's panels: (analysis, its parameters beyond the moment and the filters,
#: the views shown, rows shown at most).
MOMENT_PANELS: tuple[tuple[str, dict[str, Any], tuple[str, ...], int], ...] = (
    ("funnel", {}, ("steps",), 50),
    ("durations", {}, ("bands",), 20),
    ("frictions", {"examples": 10}, ("kinds", "examples"), 20),
    ("survey-scores", {"by": "outcome"}, ("scores", "rates"), 20),
    ("intents", {}, ("intents",), 10),
    ("verbatims", {"quotes": 10}, ("themes", "quotes"), 10),
    ("series", {"every": "week"}, ("periods",), 60),
    ("series", {"every": "day"}, (), 0),  # its chart only: the daily rows are the API's
    ("process-map", {}, ("edges",), 15),
    ("variants", {"top": 10}, ("variants",), 10),
)


def headline(result: dict[str, Any]) -> str:
    """An experiment's verdict in words: the primary metric's verdict for each variant, with
    its lift, and any guardrail harmed or sample-ratio mismatch."""
    rows = result["tables"].get("metrics", [])
    lift = next(c for c in experiment_analysis.COLUMNS if c.name == "lift")
    said = [f"{r['variant']} {r['verdict']} on {r['metric']} ({fmt.cell(lift, r)})"
            for r in rows if r.get("role") == "primary" and r.get("verdict") not in ("control",)]
    said += [f"{r['variant']} harms {r['metric']}" for r in rows
             if r.get("role") == "guardrail" and r.get("verdict") == "harmful"]
    if any(w["code"] == "srm" for w in result["warnings"]):
        said.insert(0, "sample-ratio mismatch: do not trust these results")
    return "; ".join(said) or "no data yet"


def panel(result: dict[str, Any], analysis: str, view: str, limit: int) -> dict[str, Any]:
    """One view of a result as a page shows it: its title, its columns (label, what it
    counts, kind) and its first ``limit`` rows formatted as every surface formats them."""
    declared = next(v for v in registry.get(analysis).views if v.table == view)
    records = result["tables"].get(view, [])
    present = set(result["columns"].get(view, [])) or {k for r in records[:1] for k in r}
    columns = [c for c in declared.columns if c.name in present]
    by = (result["meta"].get("params") or {}).get("by")  # a breakdown key, as the CLI shows it
    if isinstance(by, str) and by in present and all(c.name != by for c in columns):
        columns.insert(1, Column(by, by, keep=0))
    try:
        title = declared.title.format(**result["meta"])
    except (KeyError, ValueError):
        title = declared.title
    return {"analysis": analysis, "view": view, "title": title, "total": len(records),
            "columns": [{"name": c.name, "label": c.label, "doc": c.doc, "kind": c.kind}
                        for c in columns],
            "rows": [[fmt.cell(c, r) for c in columns] for r in records[:limit]]}


def portfolio_rows(card: dict[str, Any], frictions: dict[str, Any], moves: dict[str, Any] | None = None,
                   weekly: dict[str, Any] | None = None,
                   value: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The scorecard's moments ranked by attempts short of target (most first; moments
    without a target last, by volume), each with its status against the target and its
    top friction by seconds lost; with ``moves`` (week-on-week) its change since last week,
    with ``weekly`` (every moment's weekly series) its sparkline; with ``value`` (the
    ``portfolio`` analysis) its value at stake, and, when any moment has one, ranked by it
    (the portfolio's order) instead. Cells formatted as every surface formats them."""
    change = {r["moment"]: r for r in (moves or {}).get("tables", {}).get("moments", [])}
    change_column = next(c for c in registry.get("week-on-week").views[0].columns if c.name == "change")
    series: dict[str, list[dict[str, Any]]] = {}
    for r in (weekly or {}).get("tables", {}).get("periods", []):
        series.setdefault(r["moment"], []).append(r)
    top: dict[str, dict[str, Any]] = {}
    for k in frictions["tables"].get("kinds", []):
        if k.get("rank") == 1:
            top[k["moment"]] = k
    kinds_view = {c.name: c for c in registry.get("frictions").views[1].columns}
    worth = {r["moment"]: r for r in (value or {}).get("tables", {}).get("moments", [])}
    worth_column = next(c for c in registry.get("portfolio").views[0].columns if c.name == "total_value")
    rows = []
    for r in card["tables"]["moments"]:
        rows.append({
            "moment": r["moment"], "journey": r.get("journey"), "raw": r,
            "status": r.get("status") or "no data", "target": _target(r),
            "cells": {c.name: fmt.cell(c, r) for c in SCORECARD_COLUMNS},
            "friction": None if r["moment"] not in top else {
                "kind": top[r["moment"]]["kind"],
                "seconds": fmt.cell(kinds_view["seconds_lost"], top[r["moment"]])},
            "change": None if r["moment"] not in change else {
                "cell": fmt.cell(change_column, change[r["moment"]]),
                "moved": change[r["moment"]].get("moved"),
                "p": fmt.p_value(change[r["moment"]].get("p_adjusted"))},
            "spark": charts_.sparkline(series.get(r["moment"], [])),
            "value": None if fmt.num(worth.get(r["moment"], {}).get("total_value")) is None else {
                "cell": fmt.cell(worth_column, worth[r["moment"]]),
                "rank": worth[r["moment"]].get("rank")},
        })
    rows.sort(key=lambda row: rank_key(row["raw"]))
    if any(r["value"] for r in rows):  # the value at stake ranks, where costs are set
        rows.sort(key=lambda row: (row["value"] is None, (row["value"] or {}).get("rank") or 0))
    return rows


def _scorecard_cells(row: dict[str, Any]) -> list[dict[str, str]]:
    """Every scorecard column of a portfolio row: label, what it counts, the cell."""
    return [{"label": c.label, "doc": c.doc, "cell": row["cells"][c.name]} for c in SCORECARD_COLUMNS
            if c.name not in ("moment", "journey", "owner", "status")]


def _target(row: dict[str, Any]) -> str:
    """The target as a bound on its metric: ``completion ≥ 92.0%``."""
    metric, value = row.get("target_metric"), row.get("target_value")
    if metric is None or value is None:
        return fmt.DASH
    shown = fmt.seconds(value) if metric.endswith("_s") else fmt.pct(value)
    bound = "≤" if fmt.lower_is_better(metric) else "≥"
    return f"{metric.removesuffix('_rate').removesuffix('_s').replace('_', ' ')} {bound} {shown}"


#: The scorecard columns the portfolio shows: first those that rank and judge (then the
#: weekly trend and the week's change), after the moment's top friction and owner those
#: that explain.
FIRST, THEN = ("attempts_short", "completion_rate"), ("attempts", "failure_rate", "escalation_rate",
                                                      "duration_median_s")


def _columns() -> dict[str, list[Any]]:
    by_name = {c.name: c for c in SCORECARD_COLUMNS}
    return {"first": [by_name[n] for n in FIRST], "then": [by_name[n] for n in THEN]}


async def _result(analyse: Analyse, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The analysis's JSON result, read and kept exactly as the API's (analyses.py)."""
    return await analysis_answer(analyse, registry.get(name), values)


def _filters(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key not in FILTERS or not value:
            continue
        if key == "where":
            out.setdefault("where", []).append(value)
        else:
            out[key] = value
    return out


def _query(filters: dict[str, Any]) -> str:
    pairs = [(k, v) for k, vs in filters.items() for v in (vs if isinstance(vs, list) else [vs])]
    return ("?" + urlencode(pairs)) if pairs else ""


async def _form(request: Request) -> dict[str, str] | None:
    """A small urlencoded form (None: too large, or not one)."""
    try:
        raw = await read_body(request.stream(), FORM_LIMIT)
        fields = parse_qs(raw.decode("utf-8"), max_num_fields=10, strict_parsing=False)
    except (MicrojourneyError, UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items()}


def _script_json(spec: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` escaped
    as JSON escapes, so no value can close the element."""
    return Markup(script_safe(json.dumps(spec, separators=(",", ":"), allow_nan=False)))


def _local(target: str) -> str:
    """``target`` if it is a path of this server, else ``/`` (no redirect elsewhere)."""
    # Browsers drop tabs and line breaks in a URL ("/\t/evil" is "//evil"): none allowed.
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(ch) < 33 or ord(ch) == 127 for ch in target)):
        return "/"
    return target


def _cookie(response: Response, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict")


__all__ = ["MOMENT_PANELS", "add_pages", "panel", "portfolio_rows"]
