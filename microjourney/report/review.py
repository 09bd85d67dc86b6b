"""The weekly review as a one-page document for the owners' meeting (docs/review.md):
Markdown (to paste into a chat or a wiki, or to send by webhook) or a self-contained HTML
page (to print or to mail). Both are rendered by Jinja2 templates from the ``review``
analysis's result, every figure formatted by :func:`microjourney.fmt.cell` from the
analysis's declared columns — the same words and numbers as the CLI, the API and the
dashboard. User text (moment names, verbatims, change titles) is escaped for the format.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from functools import cache
from typing import Any

import jinja2

from ..fmt import cell, when
from ..registry import Result
from ..registry.base import Column
from ..registry.review import ANALYSIS

__all__ = ["html", "markdown"]

#: The columns each table of the document shows, by view.
SHOWN = {
    "moments": ("rag", "moment", "metric", "this_week", "last_week", "change", "baseline",
                "target", "reasons"),
    "wall": ("side", "moment", "owner", "rag", "this_week", "change", "quote"),
    "alerts": ("moment", "metric", "scope", "start", "days", "size", "segment", "friction"),
    "frictions": ("moment", "kind", "seconds_now", "seconds_before", "growth", "new"),
    "changes": ("day", "moment", "title", "before", "after", "effect", "verdict"),
    "verbatims": ("timestamp", "moment", "text", "sentiment", "band", "outcome"),
}
#: What each moment's row adds under the table when it has it.
DETAILS = ("alert", "friction", "change_title")
_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~]|(?<!\w)_|_(?!\w))")


def _md(text: Any) -> str:
    """Text safe in a Markdown table cell: its markup characters escaped, one line."""
    one = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", one).replace("&", "&amp;")


@cache
def _env(kind: str) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("microjourney.report", "templates"),
                             autoescape=kind == "html", undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = _md
    return env


def _columns(view: str) -> list[Column]:
    by_name = {c.name: c for v in ANALYSIS.views if v.table == view for c in v.columns}
    return [by_name[n] for n in SHOWN[view]]


def _table(data: Mapping[str, Any], view: str) -> dict[str, Any]:
    """A table of the result ``data`` (its ``to_dict()``) as the document shows it: its
    title, labels and rows of cells (text, unescaped)."""
    rows = list(data["tables"][view])
    columns = _columns(view)
    title = next(v.title for v in ANALYSIS.views if v.table == view)
    return {"title": title, "labels": [c.label for c in columns],
            "rows": [{"cells": [cell(c, r) for c in columns], "rag": r.get("rag"), "raw": r}
                     for r in rows]}


def _context(result: Result | Mapping[str, Any]) -> dict[str, Any]:
    data = result.to_dict() if isinstance(result, Result) else result
    meta, warnings = data["meta"], data.get("warnings", [])
    moments = _table(data, "moments")
    owners: dict[str, list[dict[str, Any]]] = {}
    for row in moments["rows"]:
        r = row["raw"]
        row["details"] = [(c.label, cell(c, r)) for c in ANALYSIS.views[0].columns
                          if c.name in DETAILS and r.get(c.name)]
        owners.setdefault(str(r["owner"]), []).append(row)
    first, last = date.fromisoformat(meta["from"]), date.fromisoformat(meta["to"])
    return {"meta": meta, "week": meta["week"], "span": f"{first:%-d %b} – {last:%-d %b %Y}",
            "headline": meta.get("headline", ""), "labels": moments["labels"],
            "owners": list(owners.items()),
            "tables": [_table(data, v) for v in ("alerts", "frictions", "changes", "verbatims")],
            "wall": _table(data, "wall"),
            "as_of": when(meta["as_of"]) if meta.get("as_of") else None,
            "warnings": [f"{w['code']}: {w['message']}" for w in warnings]}


def markdown(result: Result | Mapping[str, Any]) -> str:
    """The review as one Markdown page (``result`` a :class:`Result` or its ``to_dict()``)."""
    return _env("md").get_template("review.md.j2").render(**_context(result))


def html(result: Result | Mapping[str, Any], *, css: str | None = None) -> str:
    """The review as one self-contained HTML page: no script, no network, prints on A4."""
    return _env("html").get_template("review.html.j2").render(**_context(result), css=css or CSS)


CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 1.6rem; }
.headline { font-size: 1.05rem; } .sub { color: #555; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 .8rem; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .4rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
.rag { font-weight: 700; padding: 0 .35rem; border-radius: .25rem; }
.rag-red { background: #fbd5d5; color: #7a1010; } .rag-amber { background: #fde8c4; color: #6b4200; }
.rag-green { background: #d3f0d6; color: #114a1a; } .rag-grey { background: #e6e6e6; color: #333; }
.detail { color: #333; font-size: .92rem; } .warn { color: #6b4200; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } }
"""
