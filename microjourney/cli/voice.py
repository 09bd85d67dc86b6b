"""Commands for the voice of the customer: import survey answers from other tools, and
cluster customer texts into intents."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ..registry import get as get_analysis
from ..registry.base import Result
from ..vocabulary import TEXT_SOURCES as SOURCES
from .common import JsonOpt, WideOpt, WorkspaceOpt, _engine, _open, _print_json, app, out
from .render import show
from .served import analysis_result, refuse_while_served


def _pairs(pairs: list[str], option: str, example: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, column = pair.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise typer.BadParameter(f"{pair!r}: write NAME=COLUMN, e.g. {example}",
                                     param_hint=option)
        found[key.strip()] = column.strip()
    return found


@app.command()
def responses(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Responses, one per row (CSV or "
                                         "JSON Lines).")],
    survey: Annotated[str, typer.Option(help="The survey they answer (declared in the "
                                        "workspace).")],
    answer: Annotated[list[str], typer.Option("--answer", help="QUESTION=COLUMN: the column "
                                              "with a question's answers. Repeatable.")],
    time_column: Annotated[str, typer.Option("--time", help="The column with when each "
                                             "response was given.")],
    time_format: Annotated[str | None, typer.Option(help="How the times are written, in "
                                                    "strptime codes, e.g. '%d/%m/%Y %H:%M' "
                                                    "(default: ISO 8601).")] = None,
    person: Annotated[str | None, typer.Option(help="The column with the customer's user id "
                                               "(default: each response its own respondent).")] = None,
    response: Annotated[str | None, typer.Option(help="The column with each response's own id "
                                                 "(default: the file and row).")] = None,
    prop: Annotated[list[str] | None, typer.Option("--property", help="NAME=COLUMN: keep a "
                                                   "column with each answer. Repeatable.")] = None,
    channel: Annotated[str, typer.Option(help="The channel the survey was answered in.")] = "other",
    timezone: Annotated[str | None, typer.Option(help="Zone for times written without one, "
                                                 "e.g. UTC.")] = None,
    format: Annotated[str | None, typer.Option("--format", help="csv | jsonl (default: from the "
                                               "file name).")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Import a survey's answers from another tool (post-call IVR, e-mail, in-app): each
    answer links to the person's nearest attempt of the survey's moment; answers off their
    question's scale go to quarantine with their row and column (docs/surveys.md)."""
    answers = _pairs(answer, "--answer", "nps=NPS_SCORE")
    properties = _pairs(prop or [], "--property", "stage=SURVEY_SUB_TYPE")
    refuse_while_served(workspace, "responses", "stop the server, import, then serve again")
    started = time.perf_counter()
    with _open(workspace) as ws:
        result = ws.ingest_responses(file, survey=survey, answers=answers, time=time_column,
                                     time_format=time_format, person=person, response=response,
                                     properties=properties, channel=channel, timezone=timezone,
                                     format=format)
    fields = ("source", "format", "accepted", "duplicates", "rejected", "withheld")
    if as_json:
        _print_json({k: getattr(result, k) for k in fields})
    else:
        secs = time.perf_counter() - started
        out.print(f"{escape(file.name)}: {result.accepted:,} answers stored, "
                  f"{result.duplicates:,} duplicate, {result.rejected:,} rejected "
                  f"({secs:.1f} s)")
        if result.rejected:
            out.print("  see `microjourney quarantine` for the rejected rows and why")
        if result.advice:
            out.print(f"  {escape(result.advice)}")
    if result.advice:
        sys.exit(1)


@app.command()
def intents(
    file: Annotated[Path | None, typer.Argument(metavar="[FILE]", help="Customer texts to import "
                                                "first, one per row (CSV or JSON Lines); without "
                                                "it, the texts stored.")] = None,
    text: Annotated[str | None, typer.Option(help="The column with the texts (with FILE).")] = None,
    source: Annotated[str | None, typer.Option(help=f"Where the texts come from: {', '.join(SOURCES)} "
                                               "(with FILE: what they are stored as, default "
                                               "other; without: only these).")] = None,
    time_column: Annotated[str | None, typer.Option("--time", help="The column with when each "
                                                    "text was written (default: now).")] = None,
    time_format: Annotated[str | None, typer.Option(help="How the times are written, in strptime "
                                                    "codes (default: ISO 8601).")] = None,
    person: Annotated[str | None, typer.Option(help="The column with the customer's user id.")] = None,
    ident: Annotated[str | None, typer.Option("--id", help="The column with each text's own id "
                                              "(default: the file and row).")] = None,
    channel_column: Annotated[str | None, typer.Option(help="The column with each text's "
                                                       "channel.")] = None,
    source_column: Annotated[str | None, typer.Option(help="The column with each text's source "
                                                      "(with FILE; else --source).")] = None,
    channel: Annotated[str, typer.Option(help="The channel of texts that name none.")] = "other",
    timezone: Annotated[str | None, typer.Option(help="Zone for times written without one.")] = None,
    moment: Annotated[str | None, typer.Option(help="Only the intents mapped to this moment.")] = None,
    k: Annotated[int | None, typer.Option("--k", help="How many intents (default: chosen "
                                          "automatically).")] = None,
    since: Annotated[str | None, typer.Option(help="Only texts written on or after this date.")] = None,
    until: Annotated[str | None, typer.Option(help="Only texts written before this date.")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="Write every text with its intent "
                                                "and moment to this CSV file.")] = None,
    workspace: WorkspaceOpt = Path("."),
    as_json: JsonOpt = False,
    wide: WideOpt = False,
) -> None:
    """Cluster customer texts (searches, help-centre searches, chat messages, agent notes)
    into intents, each named by its distinctive words, mapped to the moment that should
    serve it, with its demand and that moment's failure rate (docs/intents.md). With FILE,
    its texts are imported first (again: nothing twice)."""
    if file is not None:
        if text is None:
            raise typer.BadParameter("name the column with the texts", param_hint="--text")
        refuse_while_served(workspace, "intents FILE", "send the texts to it (POST /v1/batch) "
                            "or stop it")
        with _open(workspace) as ws:
            r = ws.ingest_texts(file, text=text, source=source or "other", time=time_column,
                                time_format=time_format, person=person, ident=ident,
                                channel_column=channel_column, source_column=source_column,
                                channel=channel, timezone=timezone)
        if not as_json:
            out.print(f"{escape(file.name)}: {r.accepted:,} texts stored, {r.duplicates:,} "
                      f"duplicate, {r.rejected:,} rejected")
    values: dict[str, Any] = {k_: v for k_, v in {"source": source, "moment": moment, "k": k,
                                                  "since": since, "until": until}.items()
                              if v is not None}
    if output is not None:
        values["texts"] = True
    result = analysis_result(workspace, "intents", values, _engine)
    if output is not None:
        _write_texts(result, output)
        result = Result(result.analysis, {n: t for n, t in result.tables.items() if n != "texts"},
                        result.warnings, result.meta)
    show(result, get_analysis("intents"), out, as_json=as_json, wide=wide)
    if output is not None and not as_json:
        out.print(f"every text with its intent: {escape(str(output))}")


def _write_texts(result: Result, path: Path) -> None:
    """The texts with their intent's words and moment, as CSV."""
    texts = result.tables.get("texts")
    if texts is None:
        return
    named = result.table("intents").set_index("intent") if len(result.table("intents")) else None
    rows = texts.copy()
    if named is not None:
        rows["intent_terms"] = rows["intent"].map(lambda i: ", ".join(named["terms"].get(i, [])))
        rows["moment"] = rows["intent"].map(lambda i: named["moment"].get(i))
    rows.to_csv(path, index=False)
