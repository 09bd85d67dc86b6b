"""Report sections made from the analysis registry: any result's tables, with the labels,
formats and column meanings its declaration gives (the same as the CLI's and the API's)."""

from __future__ import annotations

from typing import Any

from microjourney.fmt import cell
from microjourney.registry.base import Analysis, Result, View
from microjourney.report.cells import h

#: Rows of a table shown in the report (the API and the CLI's --json give them all).
ROWS = 25


def _table(view: View, result: Result) -> str:
    df = result.tables.get(view.table)
    if df is None:
        return ""
    cols = [c for c in view.columns if c.name in df.columns]
    records = df.to_dict("records")
    if not records:
        return f'<p class="empty">{h(view.title)}: none.</p>'
    left = ("text", "list", "time")
    head = "".join(
        f'<th scope="col"{"" if c.kind in left else " class=n"}'
        f'{f" title={chr(34)}{h(c.doc)}{chr(34)}" if c.doc else ""}>{h(c.label)}</th>'
        for c in cols)
    body = "".join(
        "<tr>" + "".join(f'<td{"" if c.kind in left else " class=n"}>{h(cell(c, r))}</td>'
                         for c in cols) + "</tr>"
        for r in records[:ROWS])
    more = (f'<p class="muted">{ROWS} of {len(records):,} rows; '
            f"<code>microjourney {h(result.analysis)} --json</code> gives all.</p>"
            if len(records) > ROWS else "")
    return (f'<div class="scroll"><table class="analysis"><caption>{h(view.title)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}")


def analysis_section(analysis: Analysis, result: Result) -> str:
    """A section for one analysis: its title, what it answers, its tables, its warnings."""
    tables = "".join(_table(v, result) for v in analysis.views)
    warnings = "".join(f'<li><code>{h(w.code)}</code> {h(w.message)}</li>'
                       for w in result.warnings)
    notes = f'<ul class="warnings">{warnings}</ul>' if warnings else ""
    return (f'<section class="analysis" id="a-{h(analysis.name)}" '
            f'data-analysis="{h(analysis.name)}"><h2>{h(analysis.title)}</h2>'
            f"<p>{h(analysis.doc)}</p>{tables}{notes}</section>")


def filters_text(filters: dict[str, Any]) -> str:
    """The filters in force, as the report's header says them."""
    parts = []
    for key, value in filters.items():
        if key == "where":
            parts.extend(f"{k}={v}" for k, v in value.items())
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)
