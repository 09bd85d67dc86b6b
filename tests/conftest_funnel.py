"""Helpers to build a small workspace for funnel tests (imported explicitly, not a conftest)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import microjourney as mj
from microjourney import engine
from microjourney.analysis import funnel as funnel_analysis
from microjourney.engine.funnel import step_windows_ms
from microjourney.spec import parse_duration

T0 = datetime(2024, 1, 1, 10, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ev:
    """One event row of the ingest file; ``t`` is seconds after 10:00 (ms precision)."""

    t: float
    event: str
    user: str | None = None
    anon: str | None = None
    props: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def iso(t_s: float) -> str:
    ms = round(t_s * 1000)
    return (T0 + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def matcher(spec: str | dict[str, Any]) -> dict[str, Any]:
    return {"event": spec} if isinstance(spec, str) else spec


def write_workspace(root: Path, funnel: list[str | dict[str, Any]], events: list[Ev],
                    timeout: str = "1h") -> mj.Workspace:
    """A workspace whose moment ``m`` has the funnel ``funnel`` (start, steps..., complete).

    Events are written to a JSON Lines file in list order (= ingest order) and ingested.
    """
    assert len(funnel) >= 2
    moment = {"name": "m", "start": matcher(funnel[0]),
              "steps": [matcher(s) for s in funnel[1:-1]],
              "complete": matcher(funnel[-1]), "timeout": timeout}
    spec = {"name": "funnel tests", "journeys": [{"name": "j", "moments": [moment]}]}
    root.mkdir(parents=True, exist_ok=True)
    # JSON is YAML: no quoting surprises with event names or property values.
    (root / "microjourney.yaml").write_text(json.dumps(spec, indent=1), encoding="utf-8")
    lines = []
    for i, e in enumerate(events):
        row: dict[str, Any] = {"event_id": f"e{i:05d}", "timestamp": iso(e.t), "event": e.event,
                               "channel": "web"}
        if e.user is not None:
            row["user_id"] = e.user
        if e.anon is not None:
            row["anonymous_id"] = e.anon
        if e.props is not None:
            row["properties"] = json.dumps(e.props)
        row.update(e.extra)
        lines.append(json.dumps(row))
    path = root / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws = mj.open(root)
    result = ws.ingest(path)
    assert result.accepted == len(events), result
    return ws


@dataclass(frozen=True)
class Funnel:
    counts: list[int]
    medians_s: list[float | None]  # index 0 is always None
    frame: Any


def run_funnel(ws: mj.Workspace, order: str = "ordered", per: str = "person",
               window: str | float | None = None) -> Funnel:
    df = ws.funnel("m", order=order, per=per, window=window).to_pandas()
    counts = [int(c) for c in df["count"]]
    medians: list[float | None] = []
    for v in df["median_time_from_previous_s"]:
        medians.append(None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))
    return Funnel(counts, medians, df)


def run_funnel_within(ws: mj.Workspace, order: str = "ordered", per: str = "person",
                      window: str | float | None = None, moment: str = "m") -> Funnel:
    """As :func:`run_funnel`, with the steps' ``within`` passed to the engine: the
    public entry (``engine.FunnelQuery`` + ``engine.funnel_stats``) called as the
    workspace's funnel calls it, plus ``step_windows_ms`` built from the moment."""
    m = ws.moment(moment)
    window_s = m.timeout if window is None else parse_duration(window)
    q = engine.FunnelQuery(n_steps=len(m.funnel), order=order, window_ms=round(window_s * 1000),
                           per=per, step_windows_ms=step_windows_ms(s.within for s in m.funnel))
    events = ws.events() if order == "strict" else None
    stats = engine.funnel_stats(ws._tagged(moment), events, q).to_pandas()
    df = funnel_analysis.steps(stats, m.step_labels)
    counts = [int(c) for c in df["count"]]
    medians = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
               for v in df["median_time_from_previous_s"]]
    return Funnel(counts, medians, df)
