"""The one table renderer of the CLI: any registered analysis's result, its columns
labelled and formatted as declared (:mod:`microjourney.registry.base`), fitted to 100
columns by hiding the least needed ones (``--wide`` shows them all).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..fmt import DASH, cell, when
from ..jsonable import dumps
from ..registry.base import Analysis, Column, Result, View

#: The width a table fits by default (narrower when the terminal is).
WIDTH = 100
#: Text wider than this wraps inside its column when the table must fit.
TEXT_WIDTH = 48


def columns_of(view: View, df: pd.DataFrame, result: Result) -> list[Column]:
    """The view's columns the table has, with a breakdown key (``by``) after the first."""
    cols = [c for c in view.columns if c.name in df.columns]
    by = (result.meta.get("params") or {}).get("by")
    if isinstance(by, str) and by in df.columns and all(c.name != by for c in cols):
        cols.insert(1, Column(by, by, keep=0))
    return cols


def fit(cols: list[Column], rows: Sequence[Sequence[str]], width: int | None) -> list[int]:
    """Which columns to show (their positions) so the table fits ``width`` (None: all):
    the one with the highest ``keep`` goes first, the rightmost of equals first."""
    shown = list(range(len(cols)))
    if width is None:
        return shown

    def need(i: int) -> int:
        longest = max([len(cols[i].label), *(len(r[i]) for r in rows)])
        return min(longest, TEXT_WIDTH if cols[i].kind == "text" else longest) + 3

    while sum(need(i) for i in shown) + 1 > width:
        hideable = [i for i in shown if cols[i].keep > 0]
        if not hideable:
            break
        shown.remove(max(hideable, key=lambda i: (cols[i].keep, i)))
    return shown


def show(result: Result, analysis: Analysis, console: Console, *, as_json: bool,
         wide: bool) -> None:
    """``--json``: the result as the HTTP API gives it; else its tables, rendered."""
    if as_json:
        sys.stdout.write(dumps(result.to_dict(), indent=True) + "\n")
        return
    render(result, analysis, console, wide=wide)


def render(result: Result, analysis: Analysis, console: Console, *, wide: bool = False) -> None:
    """Print each of the result's tables as its view says, then its warnings."""
    width = None if wide else min(WIDTH, console.width if console.is_terminal else WIDTH)
    printed = False
    for view in analysis.views:
        df = result.tables.get(view.table)
        if df is None:
            continue
        if printed and df.empty:
            continue  # a secondary table with nothing in it
        _table(view, df, result, console, width, wide)
        printed = True
    context = _context(result)
    if context:
        console.print(Text(context, style="dim"), width=width)
    for w in result.warnings:
        console.print(Text(f"warning [{w.code}]: {w.message}", style="yellow"), width=width)


def _table(view: View, df: pd.DataFrame, result: Result, console: Console, width: int | None,
           wide: bool) -> None:
    cols = columns_of(view, df, result)
    records = df.to_dict("records")
    limit = None if wide or view.rows is None else view.rows
    shown_rows = records if limit is None else records[:limit]
    cells = [[cell(c, r) for c in cols] for r in shown_rows]
    keep = fit(cols, cells, width)
    try:
        title = view.title.format(**result.meta)
    except (KeyError, ValueError, IndexError):
        title = view.title
    moment = (result.meta.get("params") or {}).get("moment")
    if isinstance(moment, str):
        title += f" — {moment}"
    table = Table(title=Text(title), title_justify="left")
    for i in keep:
        left = cols[i].kind in ("text", "list", "time")
        table.add_column(Text(cols[i].label), justify="left" if left else "right",
                         overflow="fold", max_width=None if wide else TEXT_WIDTH)
    for row in cells:
        table.add_row(*(Text(row[i]) for i in keep))
    if not cells:
        table.add_row(*(Text(DASH) for _ in keep))
    total = sum(min(max([len(cols[i].label), *(len(r[i]) for r in cells)]), 10_000) + 3
                for i in keep) + 1
    (Console(width=max(total, 40), highlight=False, file=console.file) if wide else console).print(
        table, width=width)
    hidden = [cols[i].label for i in range(len(cols)) if i not in keep]
    notes = []
    if hidden:
        notes.append(f"{len(hidden)} column{'s' if len(hidden) > 1 else ''} hidden to fit "
                     f"{width} characters; --wide shows all: {', '.join(hidden)}")
    if limit is not None and len(records) > limit:
        notes.append(f"{limit} of {len(records):,} rows shown; --wide or --json shows all")
    for note in notes:
        console.print(Text(note, style="dim"), width=width)


def _context(result: Result) -> str:
    """The filters and the end of the data, under the tables."""
    parts = []
    filters = result.meta.get("filters") or {}
    for key, value in filters.items():
        if key == "where":
            parts.extend(f"{k}={v}" for k, v in value.items())
        else:
            parts.append(f"{key} {value}")
    as_of = result.meta.get("as_of")
    out = f"filters: {', '.join(parts)}" if parts else ""
    if as_of:
        out += ("; " if out else "") + f"data up to {when(as_of)}"
    return out
