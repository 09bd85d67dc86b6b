"""Gather a workspace's analyses and write the report: the bridge from the API to HTML.

Every number comes from the analysis registry (``ws.analysis``), so the report shows what
the CLI and the API show under the same labels; the filters given apply to every analysis
that takes them and are named in the report's header."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from microjourney import fmt
from microjourney.registry import REGISTRY, Filters, process_map
from microjourney.registry.scorecard import rank_key
from microjourney.report.analyses import analysis_section, filters_text
from microjourney.report.html import write_report

if TYPE_CHECKING:
    from microjourney.workspace import Workspace

#: Analyses the report shows in sections of their own (the portfolio, each moment's
#: section); every other analysis with ``report=True`` gets a section made from its views.
BESPOKE = ("scorecard", "funnel", "series", "frictions")


def build_report(ws: Workspace, path: str | os.PathLike[str] | None = None,
                 **filters: Any) -> Path:
    """Write ``report.html`` (default: in the workspace folder) and return its path.
    ``filters``: ``since``, ``until``, ``channel``, ``where`` (a list of ``KEY=VALUE``)."""
    target = Path(path) if path is not None else ws.root / "report.html"
    given = Filters(**filters)
    applied = given.model_dump(exclude_defaults=True)
    moments, funnels, graphs = [], [], {}
    # Every moment's daily series in one query.
    series = ws.analysis("series", **applied).table().rename(columns={"period": "day"})
    daily = {name: rows.reset_index(drop=True) for name, rows in series.groupby("moment", sort=False)}
    for name, m in ws.moments.items():
        moments.append({
            "name": name, "journey": ws.spec.journey_of(name), "title": m.title,
            "owner": m.owner, "problem": m.problem, "intent": m.intent, "sla_s": m.sla,
            "target": {"metric": m.target.metric, "value": m.target.value} if m.target else None,
        })
        funnel = ws.analysis("funnel", moment=name, **applied)
        funnels.append({"moment": name, "order": "ordered", "per": "person",
                        "window_s": m.timeout,
                        "steps": funnel.table().drop(columns=["step"]).to_dict("records")})
        pm = ws.analysis("process-map", moment=name, **applied).to_dict()
        graphs[name] = process_map.graph(pm["tables"]["edges"], pm["tables"]["nodes"], pm["meta"]["path"])
    result = ws.analysis("frictions", **applied)
    summary, kinds = result.table("moments"), result.table("kinds")
    frictions = {r["moment"]: {**r, "kinds": kinds[kinds["moment"] == r["moment"]].to_dict("records")}
                 for r in summary.to_dict("records")}
    sections, answers = [], {}
    for analysis in REGISTRY:
        if analysis.report and analysis.name not in BESPOKE:
            accepted = set(analysis.params.model_fields)
            answers[analysis.name] = ws.analysis(
                analysis.name, **{k: v for k, v in applied.items() if k in accepted})
            sections.append(analysis_section(analysis, answers[analysis.name]))
    # Ranked as the dashboard's portfolio ranks them: by value at stake where costs are set
    # (the portfolio analysis's order), else most attempts short of target first.
    scorecard = ws.analysis("scorecard", **applied).table()
    order = [r["moment"] for r in sorted(scorecard.to_dict("records"), key=rank_key)]
    if "portfolio" in answers:
        worth = answers["portfolio"].table("moments")
        valued = [m for m, v in zip(worth["moment"], worth["total_value"], strict=True)
                  if fmt.num(v) is not None]
        if valued:
            order = valued + [m for m in order if m not in valued]
    scorecard = scorecard.set_index("moment", drop=False).loc[order].reset_index(drop=True)
    moments.sort(key=lambda m: order.index(m["name"]))
    # The changes shipped and the regressions' starts, marked on each moment's trend.
    alerts = answers["alerts"].table("alerts") if "alerts" in answers else None
    for m in moments:
        m["marks"] = [{"day": str(c["day"]), "label": f"{c['kind']}: {c['title']}", "kind": "change"}
                      for c in ws.changes(m["name"])]
        if alerts is not None:
            m["marks"] += [{"day": a["start"], "label": f"{a['metric']} regressed", "kind": "alert"}
                           for a in alerts[alerts["moment"] == m["name"]].to_dict("records")]
    return write_report(
        target,
        title=ws.spec.name,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        scorecard=scorecard,
        funnels=funnels,
        daily=daily,
        moments=moments,
        summary=ws.summary(),
        frictions=frictions,
        more=sections,
        filters=filters_text(given.filters()),
        graphs=graphs,
        headline=answers["week-on-week"].meta.get("headline"),  # its section's answer
    )
