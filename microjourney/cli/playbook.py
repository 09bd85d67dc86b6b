"""The team's records: ``microjourney change`` — add a change shipped to a moment, list them,
remove one (docs/playbook.md; ``microjourney playbook``, the registered analysis, measures
them) — and ``microjourney baseline``, a moment's baseline frozen (docs/review.md)."""

from __future__ import annotations

import urllib.parse
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .. import fmt
from .. import workspace as ws_api
from ..errors import QueryError
from ..registry.playbook import KINDS
from .common import JsonOpt, WorkspaceOpt, _print_json, app, out
from .served import through_server

change = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                     help="The change playbook: changes shipped to moments, measured by "
                          "`microjourney playbook`.")
app.add_typer(change, name="change")


@change.command("add")
def add_command(
    moment: Annotated[str, typer.Argument(metavar="MOMENT", help="The moment that changed.")],
    day: Annotated[str, typer.Option("--date", help="The day it shipped (YYYY-MM-DD).")],
    kind: Annotated[str, typer.Option("--kind", help=f"What changed: {', '.join(KINDS)}.")],
    title: Annotated[str, typer.Option("--title", help="What changed, in a few words.")],
    experiment: Annotated[str | None, typer.Option("--experiment", help="The experiment that "
                                                   "tested it.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="Why, or anything to remember.")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Keep a change shipped to a moment; the playbook measures its effect (adding the same
    moment, day and title again keeps nothing new)."""
    body = {"moment": moment, "date": day, "kind": kind, "title": title,
            "experiment": experiment, "note": note}
    kept = through_server(workspace, "POST", "/v1/changes", body=body)
    if kept is None:
        with ws_api.open(workspace) as ws:
            kept = ws.add_change(moment, day, kind, title, experiment=experiment, note=note,
                                 source="cli")
    if as_json:
        _print_json(kept)
        return
    said = "kept" if kept["new"] else "already kept"
    out.print(f"{said}: change {kept['change_id']} to {escape(moment)} on {kept['day']} "
              f"({kept['kind']}): {escape(kept['title'])}. Its effect: microjourney playbook "
              f"{escape(moment)}")


@change.command("list")
def list_command(
    moment: Annotated[str | None, typer.Argument(metavar="[MOMENT]", help="Only this moment's.")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """The changes kept, by day."""
    answer = through_server(workspace, "GET", "/v1/changes", {"moment": moment})
    rows: list[dict[str, Any]]
    if answer is None:
        with ws_api.open(workspace) as ws:
            rows = ws.changes(moment)
    else:
        rows = answer["changes"]
    if as_json:
        _print_json(rows)
        return
    if not rows:
        out.print("no changes kept yet: microjourney change add MOMENT --date D --kind K --title T")
        return
    t = Table(title="Changes")
    for label in ("id", "day", "moment", "kind", "change", "experiment"):
        t.add_column(label)
    for r in rows:
        day = r["day"].isoformat() if isinstance(r["day"], date) else str(r["day"])
        t.add_row(r["change_id"], day, escape(r["moment"]), r["kind"], escape(r["title"]),
                  escape(r["experiment"] or ""))
    out.print(t)


@change.command("remove")
def remove_command(
    change_id: Annotated[str, typer.Argument(metavar="ID", help="The change's id (change list).")],
    workspace: WorkspaceOpt = Path("."),
) -> None:
    """Forget a change kept by mistake."""
    answer = through_server(workspace, "DELETE", f"/v1/changes/{urllib.parse.quote(change_id, safe='')}")
    if answer is None:
        with ws_api.open(workspace) as ws:
            gone = ws.remove_change(change_id)
    else:
        gone = bool(answer["removed"])
    if not gone:
        raise QueryError(f"no change {change_id!r} (microjourney change list)", code="query/no-change")
    out.print(f"removed change {change_id}")


@app.command("baseline")
def baseline_command(
    moment: Annotated[str | None, typer.Argument(metavar="[MOMENT]", help="The moment whose "
                                                 "baseline to freeze (none: list the baselines).")] = None,
    since: Annotated[str | None, typer.Option(help="First day of the period (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Day after the period (YYYY-MM-DD; default: the "
                                              "end of the data).")] = None,
    days: Annotated[int, typer.Option(help="Days of the period when --since is not given.")] = 28,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Freeze a moment's baseline — its scorecard over a period, kept with the day it was
    frozen, what the weekly review compares each week with — or list the baselines."""
    if moment is None:
        answer = through_server(workspace, "GET", "/v1/baselines")
        if answer is None:
            with ws_api.open(workspace) as ws:
                rows = ws.baselines()
        else:
            rows = answer["baselines"]
        if as_json:
            _print_json(rows)
            return
        t = Table(title="Baselines (the latest of each moment counts)")
        for label in ("moment", "frozen", "period", "attempts", "completion"):
            t.add_column(label)
        for r in rows:
            f = r["figures"]
            t.add_row(escape(r["moment"]), str(r["frozen_at"])[:16], _period(r),
                      fmt.count(f.get("attempts")), fmt.pct(f.get("completion_rate")))
        out.print(t)
        return
    values = {"since": since, "until": until, "days": days}
    kept = through_server(workspace, "POST", f"/v1/baselines/{urllib.parse.quote(moment, safe='')}",
                          body=values)
    if kept is None:
        with ws_api.open(workspace) as ws:
            kept = ws.freeze_baseline(moment, since=since, until=until, days=days)
    if as_json:
        _print_json(kept)
        return
    f = kept["figures"]
    out.print(f"baseline of {escape(moment)} frozen: {_period(kept)}, "
              f"{fmt.count(f.get('attempts'))} attempts, completion "
              f"{fmt.pct(f.get('completion_rate'))}, median time {fmt.seconds(f.get('duration_median_s'))}")


def _period(row: dict[str, Any]) -> str:
    """A baseline's days, first to last (its ``until`` is the day after)."""
    last = datetime.fromisoformat(str(row["until"])) - timedelta(days=1)
    return f"{str(row['since'])[:10]} to {last.date().isoformat()}"
