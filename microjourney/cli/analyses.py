"""Commands that analyse a workspace: scorecard, funnel, daily, attempts, process-map,
variants, paths, conformance, frictions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from .. import workspace as ws_api
from ..workspace_analyses import _duration
from .common import (
    JsonOpt,
    WorkspaceOpt,
    _open,
    _pct,
    _print_json,
    _print_scorecard,
    _records,
    _secs,
    app,
    out,
)


@app.command()
def scorecard(
    by: Annotated[str | None, typer.Option(help="Break down by channel, outcome, or a property "
                                           "or context key of the start event.")] = None,
    since: Annotated[str | None, typer.Option(help="Attempts starting on/after (ISO date).")] = None,
    until: Annotated[str | None, typer.Option(help="Attempts starting before (ISO date).")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Per moment: volume, outcomes, completion rate with 95% CI, times against the SLA."""
    with _open(workspace) as ws:
        df = ws.scorecard(by=by, since=since, until=until).to_pandas()
    if as_json:
        _print_json(_records(df))
        return
    _print_scorecard(df, by)


@app.command()
def funnel(
    moment: Annotated[str, typer.Argument(metavar="MOMENT", help="Moment name.")],
    order: Annotated[str, typer.Option(help="ordered | strict | unordered")] = "ordered",
    window: Annotated[str | None, typer.Option(help="Conversion window from the first step, "
                                               "e.g. 10m (default: the moment's timeout).")] = None,
    per: Annotated[str, typer.Option(help="person | attempt (count tries)")] = "person",
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Step counts and conversion through a moment's start, steps and completion."""
    with _open(workspace) as ws:
        m = ws.moment(moment)
        steps = ws.funnel(moment, order=order, window=window, per=per).to_pandas()
        window_s = m.timeout if window is None else _duration(window)
    if as_json:
        _print_json({"moment": moment, "order": order, "per": per, "window_s": window_s,
                     "steps": _records(steps.drop(columns=["step"]))})
        return
    table = Table(title=f"{moment} funnel ({order}, per {per}, window {window_s:g}s)")
    for c in ("step", "count", "from start", "from previous", "median time"):
        table.add_column(c, justify="left" if c == "step" else "right")
    for r in steps.to_dict("records"):
        table.add_row(f"{r['step']}. {r['name']}", f"{r['count']:,}", _pct(r["conversion_from_start"]),
                      _pct(r["conversion_from_previous"]), _secs(r["median_time_from_previous_s"]))
    out.print(table)


@app.command()
def daily(moment: Annotated[str, typer.Argument(metavar="MOMENT", help="Moment name.")],
          workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Daily series (UTC) of a moment's attempts and completion rate."""
    with _open(workspace) as ws:
        df = ws.daily(moment).to_pandas()
    if as_json:
        _print_json({"moment": moment, "days": _records(df.drop(columns=["moment"]))})
        return
    table = Table(title=f"{moment} by day")
    for c in ("day", "attempts", "completed", "completion", "95% CI"):
        table.add_column(c, justify="right")
    for r in df.to_dict("records"):
        lo, hi = r["completion_ci"] if r["completion_ci"] is not None else (None, None)
        table.add_row(str(r["day"])[:10], f"{r['attempts']:,}", f"{r['completed']:,}",
                      _pct(r["completion_rate"]), f"{_pct(lo)}–{_pct(hi)}")
    out.print(table)


@app.command()
def attempts(moment: Annotated[str, typer.Argument(metavar="MOMENT", help="Moment name.")],
             limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
             outcome: Annotated[str | None, typer.Option(help="Only this outcome.")] = None,
             workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """A moment's attempts, newest first."""
    with _open(workspace) as ws:
        t = ws.attempts(moment)
        if outcome:
            t = t.filter(t.outcome == outcome)
        df = t.order_by(t.start_ts.desc()).limit(limit).drop("properties", "context").to_pandas()
    if as_json:
        _print_json(_records(df))
        return
    table = Table(title=f"{moment} attempts")
    for c in ("start", "person", "outcome", "duration", "furthest step", "retries", "channel"):
        table.add_column(c)
    for r in df.to_dict("records"):
        table.add_row(str(r["start_ts"])[:19], str(r["person"]), r["outcome"], _secs(r["duration_s"]),
                      str(r["furthest_step"]), str(r["retries"]), str(r["channel"]))
    out.print(table)


MomentOpt = Annotated[str | None, typer.Option("--moment", "-m", help="Only this moment's steps "
                                               "(default: all events).")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Cases are a person or an attempt (default: "
                                           "person for all events, attempt for a moment).")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Only events of this channel.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Only events on/after (ISO date).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Only events before (ISO date).")]
OutcomeOpt = Annotated[str | None, typer.Option(
    "--outcome", help="Only attempts with this outcome: completed, failed, abandoned, escalated, "
    "in_progress (needs --moment).")]


@app.command("process-map")
def process_map(moment: MomentOpt = None, by: ByOpt = None, channel: ChannelOpt = None,
                since: SinceOpt = None, until: UntilOpt = None, outcome: OutcomeOpt = None,
                workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Directly-follows graph: how often each step follows another, and how long it takes."""
    with _open(workspace) as ws:
        pm = ws.process_map(moment, by=by, channel=channel, since=since, until=until,
                            outcome=outcome)
        edges = pm.edges.order_by([pm.edges["count"].desc(), "source", "target"]).to_pandas()
        data = {
            "nodes": _records(pm.nodes.order_by([pm.nodes["count"].desc(), "name"]).to_pandas()),
            "edges": _records(edges),
            "start": dict(pm.starts.to_pandas().sort_values("name").itertuples(index=False)),
            "end": dict(pm.ends.to_pandas().sort_values("name").itertuples(index=False)),
        }
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"process map{f' of {moment}' if moment else ''}: most frequent transitions")
    for c in ("from", "to", "count", "median", "mean"):
        table.add_column(c, justify="left" if c in ("from", "to") else "right")
    for r in edges.head(30).to_dict("records"):
        table.add_row(str(r["source"]), str(r["target"]), f"{r['count']:,}", _secs(r["median_s"]),
                      _secs(r["mean_s"]))
    out.print(table)


@app.command()
def variants(moment: MomentOpt = None, by: ByOpt = None,
             top: Annotated[int, typer.Option(help="How many variants.")] = 10,
             channel: ChannelOpt = None, since: SinceOpt = None, until: UntilOpt = None,
             outcome: OutcomeOpt = None, workspace: WorkspaceOpt = Path("."),
             as_json: JsonOpt = False) -> None:
    """Path variants: the distinct step sequences, with counts, share and median duration."""
    with _open(workspace) as ws:
        df = ws.variants(moment, by=by, top=top, channel=channel, since=since,
                         until=until, outcome=outcome).to_pandas()
    _print_variants(df, f"top {top} path variants{f' of {moment}' if moment else ''}", as_json)


def _print_variants(df: pd.DataFrame, title: str, as_json: bool) -> None:
    if as_json:
        _print_json(_records(df))
        return
    table = Table(title=title)
    for c in ("cases", "share", "median", "path"):
        table.add_column(c, justify="left" if c == "path" else "right")
    for r in df.to_dict("records"):
        table.add_row(f"{r['cases']:,}", _pct(r["share"]), _secs(r["duration_median_s"]), r["variant"])
    out.print(table)


@app.command()
def paths(start: Annotated[str | None, typer.Option("--from", help="Paths after this step "
                                                   "(an event name, or a step of --moment).")] = None,
          end: Annotated[str | None, typer.Option("--to", help="Paths leading to this step.")] = None,
          moment: MomentOpt = None, by: ByOpt = None,
          length: Annotated[int, typer.Option(help="Steps in a path, the named one included.")] = 5,
          top: Annotated[int, typer.Option(help="How many paths.")] = 10,
          workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """The commonest paths after (--from) or before (--to) a step, from each case's first one."""
    if (start is None) == (end is None):
        raise typer.BadParameter("give exactly one of --from STEP or --to STEP", param_hint="--from/--to")
    step = start if start is not None else end
    with _open(workspace) as ws:
        df = ws.paths(step, after=start is not None, moment=moment, by=by, length=length,
                      top=top).to_pandas()
    _print_variants(df, f"top {top} paths {'after' if start is not None else 'before'} {step}",
                    as_json)


@app.command()
def conformance(moment: Annotated[str | None, typer.Argument(metavar="[MOMENT]", help="One moment "
                                                             "(default: all).")] = None,
                top: Annotated[int, typer.Option(help="Deviations to show per moment.")] = 5,
                workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """How often attempts follow the designed step order, and the commonest deviations."""
    with _open(workspace) as ws:
        summary, dev = (t.to_pandas() for t in ws.conformance(moment))
    dev = dev.groupby("moment", sort=False).head(top)
    if as_json:
        by = {m: _records(g.drop(columns=["moment"])) for m, g in dev.groupby("moment")}
        _print_json([{**r, "deviations": by.get(r["moment"], [])} for r in _records(summary)])
        return
    table = Table(title="conformance to the designed step order")
    for c in ("moment", "attempts", "conforming [95% CI]", "commonest deviations (attempts)"):
        table.add_column(c, justify="right" if c in ("attempts",) else "left")
    for r in summary.to_dict("records"):
        lo, hi = r["conformance_ci"]
        devs = dev[dev.moment == r["moment"]]
        text = "; ".join(f"{d.deviation} ({d.attempts:,})" for d in devs.itertuples()) or "-"
        table.add_row(r["moment"], f"{r['attempts']:,}",
                      f"{_pct(r['conformance_rate'])} [{_pct(lo)}–{_pct(hi)}]", text)
    out.print(table)


@app.command()
def frictions(moment: Annotated[str | None, typer.Argument(metavar="[MOMENT]", help="One moment "
                                                           "(default: all).")] = None,
              kind: Annotated[str | None, typer.Option(help="Only this kind of friction.")] = None,
              examples: Annotated[int, typer.Option(help="Also list this many frictions with the "
                                                    "most seconds lost, with evidence.")] = 0,
              detectors: Annotated[bool, typer.Option("--detectors", help="List the detectors, "
                                                      "their versions and settings, and stop.")] = False,
              workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Micro-frictions: per moment a friction score, seconds lost per attempt, and the
    kinds ranked by seconds lost with their impact on completion."""
    with _open(workspace) as ws:
        if detectors:
            _print_detectors(ws, as_json)
            return
        summary, kinds = (t.to_pandas() for t in ws.friction_summary(moment))
        rows = None
        if examples:
            t = ws.frictions(moment, kind=kind)
            rows = t.order_by([t.seconds_lost.desc(), t.attempt_id, t.at_ms]).limit(examples).to_pandas()
    if kind:
        kinds = kinds[kinds["kind"] == kind]
    if as_json:
        by = {m: _records(g.drop(columns=["moment"])) for m, g in kinds.groupby("moment")}
        data: Any = [{**r, "kinds": by.get(r["moment"], [])} for r in _records(summary)]
        if rows is not None:
            data = {"moments": data, "examples": _records(rows)}
        _print_json(data)
        return
    table = Table(title="Micro-frictions per moment")
    for c in ("moment", "attempts", "with friction [95% CI]", "lost per attempt", "score",
              "top frictions (seconds lost)"):
        table.add_column(c, justify="left" if c in ("moment", "top frictions (seconds lost)") else "right")
    for r in summary.to_dict("records"):
        lo, hi = r["affected_ci"]
        top = kinds[kinds["moment"] == r["moment"]].head(3)
        text = ", ".join(f"{k.kind} {_secs(k.seconds_lost)}" for k in top.itertuples()) or "-"
        score = "-" if pd.isna(r["friction_score"]) else f"{r['friction_score']:.1f}"
        table.add_row(r["moment"], f"{r['attempts']:,}",
                      f"{_pct(r['affected_rate'])} [{_pct(lo)}–{_pct(hi)}]",
                      _secs(r["seconds_per_attempt"]), score, text)
    out.print(table)
    if moment is not None:
        _print_kinds(kinds)
    if rows is not None:
        _print_examples(rows)


def _print_kinds(kinds: pd.DataFrame) -> None:
    table = Table(title="Frictions by seconds lost; completion with vs without (95% CI)")
    for c in ("#", "kind", "frictions", "attempts", "seconds lost", "per attempt",
              "completion with", "without", "difference [95% CI]"):
        table.add_column(c, justify="left" if c == "kind" else "right")
    for k in kinds.to_dict("records"):
        lo, hi = k["difference_ci"]
        diff = k["completion_difference"]
        sign = "-" if pd.isna(diff) else f"{diff * 100:+.1f} pts [{lo * 100:+.1f}, {hi * 100:+.1f}]"
        table.add_row(str(k["rank"]), k["kind"], f"{k['frictions']:,}",
                      f"{k['attempts']:,} ({_pct(k['share_of_attempts'])})", _secs(k["seconds_lost"]),
                      _secs(k["seconds_per_affected"]), _pct(k["completion_with"]),
                      _pct(k["completion_without"]), sign)
    out.print(table)


def _print_examples(rows: pd.DataFrame) -> None:
    table = Table(title="Frictions with the most seconds lost")
    for c in ("attempt", "kind", "step", "seconds lost", "evidence (event ids)"):
        table.add_column(c, justify="right" if c in ("step", "seconds lost") else "left")
    for r in rows.to_dict("records"):
        table.add_row(escape(r["attempt_id"]), r["kind"], str(r["step"]), _secs(r["seconds_lost"]),
                      escape(", ".join(r["evidence"])))
    out.print(table)


def _print_detectors(ws: ws_api.Workspace, as_json: bool) -> None:
    data = ws.friction_detectors()
    if as_json:
        _print_json(data)
        return
    table = Table(title="Friction detectors")
    for c in ("kind", "version", "enabled", "settings"):
        table.add_column(c)
    for d in data:
        settings = ", ".join(f"{k}={v}" for k, v in d["settings"].items())
        table.add_row(d["kind"], str(d["version"]), "yes" if d["enabled"] else "no", escape(settings))
    out.print(table)
