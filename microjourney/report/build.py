"""Gather a workspace's analyses and write the report: the bridge from the API to HTML."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from microjourney.report.html import write_report

if TYPE_CHECKING:
    from microjourney.workspace import Workspace


def build_report(ws: Workspace, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``report.html`` (default: in the workspace folder) and return its path."""
    target = Path(path) if path is not None else ws.root / "report.html"
    moments = []
    funnels = []
    daily = {}
    for name, m in ws.moments.items():
        moments.append({
            "name": name, "journey": ws.spec.journey_of(name), "title": m.title,
            "owner": m.owner, "problem": m.problem, "intent": m.intent, "sla_s": m.sla,
            "target": {"metric": m.target.metric, "value": m.target.value} if m.target else None,
        })
        steps = ws.funnel(name).to_pandas()
        funnels.append({"moment": name, "order": "ordered", "per": "person",
                        "window_s": m.timeout,
                        "steps": steps.drop(columns=["step"]).to_dict("records")})
        daily[name] = ws.daily(name).to_pandas()
    summary, kinds = (t.to_pandas() for t in ws.friction_summary())
    frictions = {r["moment"]: {**r, "kinds": kinds[kinds["moment"] == r["moment"]].to_dict("records")}
                 for r in summary.to_dict("records")}
    return write_report(
        target,
        title=ws.spec.name,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        scorecard=ws.scorecard().to_pandas(),
        funnels=funnels,
        daily=daily,
        moments=moments,
        summary=ws.summary(),
        frictions=frictions,
    )
