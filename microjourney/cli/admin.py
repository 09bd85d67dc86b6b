"""Commands that make, fill, serve and administer a workspace: init, check, ingest, export,
quarantine, serve, keys, demo, report, forget."""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .. import workspace as ws_api
from ..errors import MicrojourneyError, QueryError
from ..ingest.readers import value_map
from ..registry import get as get_analysis
from ..registry.base import describe_problem
from ..registry.filters import Filters
from ..store.lake import check as check_lake
from .common import (
    JsonOpt,
    WideOpt,
    WorkspaceOpt,
    _engine,
    _open,
    _print_json,
    app,
    err,
    out,
)
from .render import show
from .served import analysis_result, refuse_while_served, through_server

#: The common filters' fields, for options written out by hand (``report``).
FILTERS = Filters.model_fields


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
        surveys = f", {len(ws.spec.surveys)} surveys" if ws.spec.surveys else ""
        out.print(f"ok: {len(ws.spec.journeys)} journeys, {len(ws.moments)} moments{surveys}")


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(metavar="FILE...",
                                                help="Event files (CSV, JSON Lines, Parquet, XES).")],
    format: Annotated[str | None, typer.Option("--format", help="csv | jsonl | parquet | xes "
                                               "(default: from the file name).")] = None,
    map: Annotated[list[str] | None, typer.Option("--map", help="FIELD=COLUMN: take an event field "
                                                   "from another column. Repeatable.")] = None,
    value: Annotated[list[str] | None, typer.Option(
        "--value", help="FIELD:FROM=TO: read the value FROM of a field as TO (TO empty: missing), "
                        "e.g. channel:desktop=web; applied before rows are checked. Repeatable.")] = None,
    channel: Annotated[str, typer.Option(help="Channel for rows that have none.")] = "other",
    timezone: Annotated[str | None, typer.Option(help="Zone for timestamps written without one, "
                                                 "e.g. UTC or Europe/Amsterdam.")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Load events; bad rows go to quarantine with their row and reason. Exits with 1 when
    every row of a file was rejected, saying the likeliest fix."""
    mapping = _mapping(map or [])
    values = value_map(value or [])
    results = []
    refuse_while_served(workspace, "ingest", "send the events to it over HTTP (POST /v1/batch, "
                        "docs/collector.md)")
    with _open(workspace) as ws:
        for f in files:
            result = _ingest_one(ws, f, format, mapping, channel, timezone, quiet=as_json, values=values)
            if result.advice:  # nothing of the file was kept: most often an option is missing
                err.print(f"[bold red]error[/] {escape('[ingest/all-rejected]')}: {escape(str(f))}: "
                          f"{escape(result.advice)}", soft_wrap=True)
            results.append(result)
    if as_json:
        _print_json([{k: getattr(r, k) for k in ("source", "format", "accepted", "duplicates",
                                                 "rejected", "withheld")} for r in results])
    if any(r.advice for r in results):
        # sys.exit, not typer.Exit: the app runs with standalone_mode=False, where click hands
        # an Exit's code back as a return value instead of exiting with it.
        sys.exit(1)


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
                channel: str, timezone: str | None, *, quiet: bool,
                values: dict[str, dict[str, str]] | None = None) -> ws_api.IngestResult:
    started = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} rows"),
                  TimeElapsedColumn(), console=err, transient=True,
                  disable=quiet or not err.is_terminal) as progress:
        task = progress.add_task(f"ingest {path.name}", total=None)
        result = ws.ingest(path, format=fmt, mapping=mapping, channel=channel, timezone=timezone,
                           progress=lambda n: progress.advance(task, n), values=values)
    if not quiet:
        secs = time.perf_counter() - started
        # Every row read: a re-ingested invalid row is not quarantined (nor counted) again.
        read = result.accepted + result.duplicates + result.withheld + result.invalid
        out.print(f"{escape(path.name)}: {result.accepted:,} accepted, {result.duplicates:,} duplicate, "
                  f"{result.rejected:,} rejected ({read / max(secs, 1e-9):,.0f} rows/s)")
        if result.rejected and not result.advice:
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
def quarantine(limit: Annotated[int, typer.Option(help="Rows to show.")] = 20,
               clear: Annotated[bool, typer.Option("--clear", help="Delete the quarantined rows "
                                                   "(all, or those of --source) instead of listing "
                                                   "them.")] = False,
               source: Annotated[str | None, typer.Option(metavar="FILE", help="Only the rows of "
                                                          "this source (a file name, as the listing "
                                                          "shows it).")] = None,
               workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False,
               wide: WideOpt = False) -> None:
    """Rejected rows: source file, row number, field and reason, and the commonest reasons
    (--clear deletes them). The listing is the registered analysis `quarantine`."""
    if clear:
        _clear_quarantine(workspace, source, as_json)
        return
    analysis = get_analysis("quarantine")
    result = analysis_result(workspace, "quarantine", {"limit": limit, "source": source}, _engine)
    show(result, analysis, out, as_json=as_json, wide=wide)


def _clear_quarantine(workspace: Path, source: str | None, as_json: bool) -> None:
    """``quarantine --clear [--source FILE]``: delete the rows, say how many (through the
    server when one holds the store)."""
    answer = through_server(workspace, "DELETE", "/v1/quarantine", {"source": source})
    if answer is not None:
        _print_cleared(int(answer["removed"]), source, [], as_json)
        return
    with _open(workspace) as ws:
        removed = ws.clear_quarantine(source)
        # A name that matches nothing is most often a path or a typo: show the names there are.
        q = ws.quarantine()
        others = [] if removed or source is None else \
            q.select("source").distinct().order_by("source").limit(10).to_pyarrow().column(0).to_pylist()
    _print_cleared(removed, source, others, as_json)


def _print_cleared(removed: int, source: str | None, others: list[str], as_json: bool) -> None:
    if as_json:
        _print_json({"removed": removed, "source": source})
        return
    rows = f"{removed:,} quarantined row{'' if removed == 1 else 's'}"
    out.print(f"removed {rows}" + (f" of {escape(source)}" if source is not None else ""))
    if others:
        out.print(f"  sources in quarantine: {escape(', '.join(others))}")


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address to listen on (keep 127.0.0.1 unless a "
                                            "proxy in front needs another).")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8321,
          lake: Annotated[str | None, typer.Option(metavar="<path|url>", help="Append events to this "
                                                   "Parquet lake (a folder or an s3:// URL) instead of "
                                                   "the store (docs/lake.md).")] = None,
          log_level: Annotated[Literal["warning", "info"], typer.Option(
              help="info: also log each background refresh (mode, persons, events, seconds) and "
                   "other routine work; counts only, never a value of the data.")] = "warning",
          workspace: WorkspaceOpt = Path(".")) -> None:
    """Run the collector and HTTP API (docs/collector.md) until stopped; prints where it
    listens. SIGTERM or Ctrl-C commits what is queued and closes the store."""
    from ..server import serve as run_server

    def ready(url: str) -> None:
        print(f"listening on {url}", flush=True)

    lake = lake or _engine.get("lake")
    if lake is not None:  # a lake out of reach fails here, with its code, not in the server's start-up
        check_lake(lake)
    run_server(workspace, host=host, port=port, lake=lake, ready=ready, log_level=log_level)


@app.command()
def keys(action: Annotated[str, typer.Argument(metavar="[rotate]", help="rotate: replace the three "
                                               "keys (the old ones stop working).")] = "show",
         workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """The workspace's keys: the write key (public, ingest only, for web pages and apps),
    the secret key (read and admin, for servers) and the viewer key (signs in to the
    dashboard to read it, nothing else)."""
    if action not in ("show", "rotate"):
        raise MicrojourneyError(f"unknown action {action!r}; allowed: rotate", code="query/action")
    k = ws_api.keys(workspace, rotate=action == "rotate")
    if as_json:
        print(json.dumps({"write_key": k.write_key, "secret_key": k.secret_key,
                          "viewer_key": k.viewer_key}))
        return
    out.print(f"write key:  {k.write_key}   (ingest only; may ship in web pages)")
    out.print(f"secret key: {k.secret_key}   (read and admin; keep it on servers)")
    out.print(f"viewer key: {k.viewer_key}   (signs in to the dashboard, to read it)")


@app.command()
def demo(directory: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for the sample workspace.")]
         = Path("build/demo"),
         persons: Annotated[int, typer.Option(help="Customers to simulate.")] = 20_000,
         seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 7) -> None:
    """Build the sample workspace (a bank and shop), ingest it, analyse it, write the report.

    Web, app, email and SMS events are ingested from files; the contact centre's chat, voice
    and agent events are sent through the collector (started on 127.0.0.1 for the while)
    with the Python client."""
    from ..demo import generate
    from ..demo.live import Collector
    from ..demo.surveys import import_exports
    from ..report import build_report

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
                # The derived tables, once the contact centre's events are in; the e-mails
                # and text messages sent since are then taken in by an incremental refresh.
                with _open(directory) as ws:
                    first = ws.refresh()
                out.print(f"Derived tables built in {first.seconds:.1f}s "
                          f"({first.events:,} events).")
            else:
                with _open(directory) as ws:
                    _ingest_one(ws, f, None, {}, "other", None, quiet=False)
    with _open(directory) as ws:
        # The phone system keeps its post-call survey apart, and support texts come as a file:
        # both are imported.
        ivr, said, nps = import_exports(ws, files.ivr.parent)
        out.print(f"{files.ivr.name}: {ivr.accepted:,} post-call survey answers imported.")
        out.print(f"NPS of the payment journey: {nps.accepted:,} answers imported (Peak-End).")
        out.print(f"{files.texts.name}: {said.accepted:,} customer texts imported (intents).")
        for c in files.changes:
            ws.add_change(c["moment"], c["day"], c["kind"], c["title"],
                          experiment=c.get("experiment"), note=c.get("note"), source="demo")
        out.print(f"{len(files.changes)} changes shipped in the period kept in the playbook.")
        built = ws.refresh()
        if built.mode == "incremental":
            everyone = ws.summary()["persons"]
            out.print(f"Incremental refresh: the {built.events:,} events stored since, "
                      f"{built.persons:,} of {everyone:,} persons' rows computed again in "
                      f"{built.seconds:.1f}s.")
        if files.baseline:
            ws.freeze_baselines(list(ws.moments), since=files.baseline[0], until=files.baseline[1])
            out.print(f"Baselines frozen over {files.baseline[0]} to {files.baseline[1]} "
                      "(the weekly review compares each week with them).")
        out.print(f"{len(ws.moments)} moments in {len(ws.spec.journeys)} journeys analysed.")
        show(ws.analysis("scorecard"), get_analysis("scorecard"), out, as_json=False, wide=False)
        path = build_report(ws)
    out.print(f"\nDone in {time.perf_counter() - started:.0f}s. Open the report: {path.resolve()}")
    out.print(f"The dashboard: `microjourney serve -w {directory}`, then open http://127.0.0.1:8321/ "
              f"and sign in with the viewer key that `microjourney keys -w {directory}` shows.")
    out.print("Explore further (in the project's .venv: `. .venv/bin/activate`), e.g.:")
    out.print(f"  microjourney funnel card_payment -w {directory}\n"
              f"  microjourney series card_payment --every week --by channel -w {directory}\n"
              f"  microjourney scorecard --by device --wide -w {directory}\n"
              f"  microjourney frictions card_payment --where device=mobile -w {directory}\n"
              f"  microjourney week-on-week -w {directory}\n"
              f"  microjourney survey-scores --by outcome -w {directory}\n"
              f"  microjourney intents --wide -w {directory}\n"
              f"  microjourney experiment analyze reset_by_sms -w {directory}\n"
              f"  microjourney playbook -w {directory}\n"
              f"  microjourney alerts -w {directory}\n"
              f"  microjourney review -w {directory}\n"
              f"  microjourney interventions -w {directory}")


def _demo_send(directory: Path, events: Path, collector: Any) -> None:
    """The demo's HTTP path: the collector holds the store meanwhile, so no workspace is open."""
    from ..demo.live import send

    sent = send(directory, events, collector=collector)
    out.print(f"Sent {sent.events:,} chat/voice/agent events through the collector ({sent.url}) "
              f"in {sent.seconds:.1f}s")


@app.command()
def report(output: Annotated[Path | None, typer.Option("--output", "--out", "-o", help="Where to write it.",
                                                       show_default="WORKSPACE/report.html")] = None,
           since: Annotated[str | None, typer.Option(help=FILTERS["since"].description)] = None,
           until: Annotated[str | None, typer.Option(help=FILTERS["until"].description)] = None,
           channel: Annotated[str | None, typer.Option(help=FILTERS["channel"].description)] = None,
           where: Annotated[list[str] | None, typer.Option(metavar="<KEY=VALUE>",
                                                           help=FILTERS["where"].description)] = None,
           workspace: WorkspaceOpt = Path(".")) -> None:
    """Write the self-contained HTML report (portfolio, moments with their funnels, trends
    and frictions, and every other analysis); the filters apply to every analysis that
    takes them and are named in its header."""
    from ..report import build_report

    given = {"since": since, "until": until, "channel": channel, "where": where or []}
    try:
        Filters(**given)
    except ValidationError as exc:  # the words every analysis uses for a bad filter
        raise QueryError(describe_problem("report", exc.errors()[0]), code="query/option") from None
    refuse_while_served(workspace, "report", "ask the server for the analyses "
                        "(GET /v1/analyses/{name})")
    with _open(workspace) as ws:
        path = build_report(ws, output, **given)
    out.print(f"report written: {path.resolve()}")


@app.command()
def forget(person: Annotated[str, typer.Argument(metavar="PERSON", help="A person id (the `person` "
                                                 "column) or one of their user ids.")],
           workspace: WorkspaceOpt = Path("."), as_json: JsonOpt = False) -> None:
    """Erase a person: every stored row carrying their identifiers (events, identify/alias
    calls, quarantined rows) and their rows of the derived tables. The log keeps counts only
    (docs/identity.md). While a server holds the store, the server erases."""
    answer = through_server(workspace, "DELETE", f"/v1/persons/{urllib.parse.quote(person, safe='')}")
    if answer is not None:
        data = {k: answer[k] for k in ("erasure_id", "erased_at", "counts", "derived")}
    else:
        with _open(workspace) as ws:
            result = ws.forget(person)
        data = {"erasure_id": result.erasure_id, "erased_at": result.erased_at,
                "counts": result.counts, "derived": result.derived}
    if as_json:
        _print_json(data)
        return
    rows = ", ".join(f"{n:,} {table}" for table, n in data["counts"].items())
    out.print(f"erasure {data['erasure_id']}: removed {rows} rows, and "
              f"{sum(data['derived'].values()):,} rows of derived tables")
