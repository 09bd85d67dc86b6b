"""The ``microjourney`` command: parse arguments, call the core, render. Nothing else."""

from __future__ import annotations

import json
import math
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import workspace as ws_api
from .errors import MicrojourneyError
from .store.lake import check as check_lake

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Customer-experience analytics at the level of micro-moments.")
# Piped output (scripts, CI logs) gets room for a full table rather than Rich's 80 columns.
out = Console(highlight=False, width=None if Console().is_terminal else 160)
err = Console(stderr=True, highlight=False)

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.",
                                            show_default="current directory")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def main() -> None:
    """Entry point: run the app, turning product errors into one clear line."""
    try:
        app(standalone_mode=False)
    except MicrojourneyError as exc:
        err.print(f"[bold red]error[/] {escape(f'[{exc.code}]')}: {escape(exc.message)}",
                  soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option values, missing arguments
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NaN, NaT and NA become null, times ISO text, arrays lists."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _jsonable(value.tolist())
    if value is None or isinstance(value, str | bool):
        return value
    if pd.isna(value):
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in df.to_dict("records")]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def _pct(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * 100:.1f}%"


def _secs(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    for size, unit, limit in ((1, "s", 120), (60, "m", 120 * 60), (3600, "h", 48 * 3600)):
        if v < limit:
            return f"{v / size:.0f}{unit}" if unit == "s" else f"{v / size:.1f}{unit}"
    return f"{v / 86400:.1f}d"


#: The engine options given before the command (``microjourney --engine spark ...``).
_engine: dict[str, Any] = {}


@app.callback()
def _options(
    engine: Annotated[str | None, typer.Option(
        help="Run the analyses on this engine: duckdb or spark (default: the workspace's "
             "engine section, else duckdb). See docs/scaling.md.")] = None,
    lake: Annotated[str | None, typer.Option(
        metavar="<path|url>",
        help="Read events from this Parquet lake, a folder or an s3:// URL (written by "
             "`export --lake`), instead of the workspace's store.")] = None,
) -> None:
    """Customer-experience analytics at the level of micro-moments."""
    _engine.update(engine=engine, lake=lake)


def _open(workspace: Path) -> ws_api.Workspace:
    return ws_api.open(workspace, engine=_engine.get("engine"), lake=_engine.get("lake"))


@app.command()
def init(directory: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for the workspace.")]
         = Path("."),
         name: Annotated[str | None, typer.Option(help="Workspace name.")] = None) -> None:
    """Create a workspace: microjourney.yaml and .microjourney/ with its store."""
    ws = ws_api.init(directory, name=name)
    ws.close()
    out.print(f"Created workspace in {directory}: edit {directory / ws_api.SPEC_FILE} to declare "
              "moments, then `microjourney ingest FILE`.")


@app.command()
def check(workspace: WorkspaceOpt = Path(".")) -> None:
    """Validate microjourney.yaml and list its journeys and moments."""
    with _open(workspace) as ws:
        for j in ws.spec.journeys:
            out.print(f"{j.name}: {', '.join(m.name for m in j.moments)}")
        out.print(f"ok: {len(ws.spec.journeys)} journeys, {len(ws.moments)} moments")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...",
                                                help="Event files (CSV, JSON Lines, Parquet, XES).")],
    format: Annotated[str | None, typer.Option("--format", help="csv | jsonl | parquet | xes "
                                               "(default: from the file name).")] = None,
    map: Annotated[list[str] | None, typer.Option("--map", help="FIELD=COLUMN: take an event field "
                                                   "from another column. Repeatable.")] = None,
    channel: Annotated[str, typer.Option(help="Channel for rows that have none.")] = "other",
    timezone: Annotated[str | None, typer.Option(help="Zone for timestamps written without one, "
                                                 "e.g. UTC or Europe/Amsterdam.")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Load events; bad rows go to quarantine with their row and reason."""
    mapping = _mapping(map or [])
    results = []
    with _open(workspace) as ws:
        for f in files:
            results.append(_ingest_one(ws, f, format, mapping, channel, timezone, quiet=as_json))
    if as_json:
        _print_json([r.__dict__ for r in results])


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise typer.BadParameter(f"{pair!r}: write FIELD=COLUMN, e.g. user_id=customer",
                                     param_hint="--map")
        mapping[field.strip()] = column.strip()
    return mapping


def _ingest_one(ws: ws_api.Workspace, path: Path, fmt: str | None, mapping: dict[str, str],
                channel: str, timezone: str | None, *, quiet: bool) -> ws_api.IngestResult:
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"),
                  TimeElapsedColumn(), console=err, transient=True,
                  disable=quiet or not err.is_terminal) as progress:
        task = progress.add_task(f"ingest {path.name}", total=None)
        result = ws.ingest(path, format=fmt, mapping=mapping, channel=channel, timezone=timezone,
                           progress=lambda n: progress.advance(task, n))
    if not quiet:
        secs = time.perf_counter() - started
        out.print(f"{path.name}: {result.accepted:,} accepted, {result.duplicates:,} duplicate, "
                  f"{result.rejected:,} rejected ({result.rows / max(secs, 1e-9):,.0f} rows/s)")
        if result.rejected:
            out.print("  see `microjourney quarantine` for the rejected rows and why")
    return result


@app.command()
def export(lake: Annotated[str, typer.Option("--lake", metavar="<path|url>", help="Lake folder (created "
                                             "if missing), or s3://bucket/prefix (docs/lake.md).")],
           workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Write the events to a Parquet lake, one folder per UTC day, replacing the lake's copy
    (layout: docs/lake.md)."""
    with _open(workspace) as ws:
        result = ws.export_lake(lake)
    if as_json:
        _print_json({"lake": str(result.lake), "tables": [t.__dict__ for t in result.tables]})
        return
    for t in result.tables:
        out.print(f"{t.table}: {t.rows:,} rows, {t.days:,} days, {t.files:,} files in "
                  f"{escape(f'{result.lake}/{t.table}')}")


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


def _print_scorecard(df: pd.DataFrame, by: str | None) -> None:
    table = Table(title="Moment scorecard")
    cols = ["moment", *([by] if by else []), "attempts", "persons", "completion [95% CI]", "target",
            "failed", "abandoned", "escalated", "repeat contact", "self-service", "median", "p90",
            "SLA", "SLA met"]
    for c in cols:
        table.add_column(c, justify="left" if c in ("moment", by) else "right")
    for r in df.to_dict("records"):
        lo, hi = r["completion_ci"] if r["completion_ci"] is not None else (None, None)
        target = "–"
        if r["target_metric"]:
            mark = {True: "met", False: "missed", None: "?"}[r["on_target"]]
            target = f"{r['target_metric'].replace('_rate', '')} {r['target_value']:g} {mark}"
        table.add_row(r["moment"], *([str(r[by])] if by else []), f"{r['attempts']:,}",
                      f"{r['persons']:,}", f"{_pct(r['completion_rate'])} [{_pct(lo)}–{_pct(hi)}]",
                      target, _pct(r["failure_rate"]), _pct(r["abandonment_rate"]),
                      _pct(r["escalation_rate"]), _pct(r["repeat_contact_rate"]),
                      _pct(r["self_service_rate"]), _secs(r["duration_median_s"]),
                      _secs(r["duration_p90_s"]), _secs(r["sla_s"]), _pct(r["sla_met_rate"]))
    out.print(table)


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
        window_s = m.timeout if window is None else ws_api._duration(window)
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


@app.command()
def quarantine(limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
               workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Rejected rows: source file, row number, field and reason."""
    with _open(workspace) as ws:
        q = ws.quarantine()
        total = q.count().to_pyarrow().as_py()
        df = q.order_by([q.received_at.desc(), q.source, q.row]).limit(limit).to_pandas()
    if as_json:
        _print_json({"total": total, "rows": _records(df)})
        return
    table = Table(title=f"quarantine: {total:,} rows")
    for c in ("source", "row", "field", "reason"):
        table.add_column(c)
    for r in df.to_dict("records"):
        table.add_row(r["source"], str(r["row"]), str(r["field"] or ""), r["reason"])
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


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 unless a "
                                            "proxy in front needs another).")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8321,
          lake: Annotated[str | None, typer.Option(metavar="<path|url>", help="Append events to this "
                                                   "Parquet lake (a folder or an s3:// URL) instead of "
                                                   "the store (docs/lake.md).")] = None,
          workspace: WorkspaceOpt = Path(".")) -> None:
    """Run the collector and HTTP API (docs/collector.md) until stopped; prints where it
    listens. SIGTERM or Ctrl-C commits what is queued and closes the store."""
    from .server import serve as run_server

    def ready(url: str) -> None:
        print(f"listening on {url}", flush=True)

    lake = lake or _engine.get("lake")
    if lake is not None:  # a lake out of reach fails here, with its code, not in the server's start-up
        check_lake(lake)
    run_server(workspace, host=host, port=port, lake=lake, ready=ready)


@app.command()
def keys(action: Annotated[str, typer.Argument(metavar="[rotate]", help="rotate: replace both keys "
                                               "(the old ones stop working).")] = "show",
         workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """The workspace's API keys: the write key (public, ingest only, for web pages and
    apps) and the secret key (read and admin, for servers)."""
    if action not in ("show", "rotate"):
        raise MicrojourneyError(f"unknown action {action!r}; allowed: rotate", code="query/action")
    k = ws_api.keys(workspace, rotate=action == "rotate")
    if as_json:
        print(json.dumps({"write_key": k.write_key, "secret_key": k.secret_key}))
        return
    out.print(f"write key:  {k.write_key}   (ingest only; may ship in web pages)")
    out.print(f"secret key: {k.secret_key}   (read and admin; keep it on servers)")


@app.command()
def demo(directory: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for the sample workspace.")]
         = Path("build/demo"),
         persons: Annotated[int, typer.Option(help="Customers to simulate.")] = 20_000,
         seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7) -> None:
    """Build the sample workspace (a bank and shop), ingest it, analyse it, write the report.

    Web, app, email and SMS events are ingested from files; the contact centre's chat, voice
    and agent events are sent through the collector (started on 127.0.0.1 for the while)
    with the Python client."""
    from .demo import generate
    from .demo.live import Collector
    from .report import build_report

    if (directory / ws_api.SPEC_FILE).exists():
        raise MicrojourneyError(f"{directory} already holds a workspace; remove it or pick another "
                                "folder", code="workspace/exists")
    started = time.perf_counter()
    out.print(f"Generating a sample bank & shop in {directory} ({persons:,} customers)...")
    with Collector(directory) as collector:  # its process loads meanwhile, opens the store later
        files = generate(directory, persons=persons, seed=seed)
        for f in files.event_files:  # in order: the store numbers events as they arrive
            if f == files.live:
                _demo_send(directory, f, collector)
            else:
                with _open(directory) as ws:
                    _ingest_one(ws, f, None, {}, "other", None, quiet=False)
    with _open(directory) as ws:
        ws.refresh()
        out.print(f"{len(ws.moments)} moments in {len(ws.spec.journeys)} journeys analysed.")
        _print_scorecard(ws.scorecard().to_pandas(), None)
        path = build_report(ws)
    out.print(f"\nDone in {time.perf_counter() - started:.0f}s. Open the report: {path.resolve()}")
    out.print("Explore further (in the project's .venv: `. .venv/bin/activate`), e.g.:")
    out.print(f"  microjourney funnel card_payment -w {directory}\n"
              f"  microjourney daily card_payment -w {directory}\n"
              f"  microjourney scorecard --by device -w {directory}")


def _demo_send(directory: Path, events: Path, collector: Any) -> None:
    """The demo's HTTP path: the collector holds the store meanwhile, so no workspace is open."""
    from .demo.live import send

    sent = send(directory, events, collector=collector)
    out.print(f"Sent {sent.events:,} chat/voice/agent events through the collector ({sent.url}) "
              f"in {sent.seconds:.1f}s")


@app.command()
def report(output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write it.",
                                                       show_default="WORKSPACE/report.html")] = None,
           workspace: WorkspaceOpt = Path(".")) -> None:
    """Write the self-contained HTML report (scorecards, funnels, daily trends)."""
    from .report import build_report

    with _open(workspace) as ws:
        path = build_report(ws, output)
    out.print(f"report written: {path.resolve()}")


@app.command()
def forget(person: Annotated[str, typer.Argument(metavar="PERSON", help="A person id (the `person` "
                                                 "column) or one of their user ids.")],
           workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Erase a person: every stored row carrying their identifiers (events, identify/alias
    calls, quarantined rows); derived tables are rebuilt. The log keeps counts only
    (docs/identity.md)."""
    with _open(workspace) as ws:
        result = ws.forget(person)
    if as_json:
        _print_json({"erasure_id": result.erasure_id, "erased_at": result.erased_at,
                     "counts": result.counts, "dropped": list(result.dropped)})
        return
    rows = ", ".join(f"{n:,} {table}" for table, n in result.counts.items())
    out.print(f"erasure {result.erasure_id}: removed {rows} rows; derived tables will be rebuilt")


if __name__ == "__main__":  # pragma: no cover
    main()
