"""One command per registered analysis, made from its declaration: its parameters become
arguments and options (help from their descriptions), ``--json`` prints the result as the
HTTP API gives it, and the table goes through the one renderer (:mod:`.render`).

While ``microjourney serve`` holds the workspace's store, a command asks the running
server for the same result (:mod:`.served`).
"""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic.fields import FieldInfo

from ..errors import QueryError
from ..jsonable import dumps
from ..registry import REGISTRY, Analysis, Result
from ..report import review as review_document
from .common import JsonOpt, WideOpt, WorkspaceOpt, _engine, app, out
from .render import show
from .served import analysis_result

#: Analyses that also print as a one-page document: format → the result's rendering.
DOCUMENTS: dict[str, dict[str, Callable[[Result], str]]] = {
    "review": {"md": review_document.markdown, "html": review_document.html},
}
FormatOpt = Annotated[str, typer.Option("--format", metavar="<table|json|md|html>", help=(
    "table (the terminal's), json (as --json), md (one Markdown page) or html (one "
    "self-contained HTML page)."))]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the document to "
                                                "this file instead of printing it.")]


def _cli_type(annotation: Any) -> tuple[Any, str]:
    """The type typer parses (pydantic validates after) and, for a choice, its values."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return str, " | ".join(map(str, typing.get_args(annotation)))
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        inner, choices = _cli_type(args[0])
        return inner | None, choices
    if origin is list:
        return list[str] | None, ""
    return annotation, ""


def _parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    public = field.alias or name
    kind, choices = _cli_type(field.annotation)
    default = ... if field.is_required() else (None if field.default_factory else field.default)
    info: Any
    if extra.get("argument"):
        info = typer.Argument(metavar=public.upper(), help=field.description, show_default=False)
    else:
        names = [f"--{public.replace('_', '-')}"]
        names += [str(extra[k]) for k in ("short", "also") if k in extra]
        metavar = f"<{choices.replace(' ', '')}>" if choices else (
            "<KEY=VALUE>" if typing.get_origin(field.annotation) is list else None)
        info = typer.Option(*names, help=field.description, metavar=metavar)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[kind, info])


def command(analysis: Analysis, name: str | None = None, *, fixed: dict[str, Any] | None = None,
            hidden: bool = False) -> None:
    """Register the CLI command of ``analysis`` (under ``name``; ``fixed`` parameters)."""
    fields = {k: f for k, f in analysis.params.model_fields.items() if k not in (fixed or {})}
    params = [_parameter(k, f) for k, f in fields.items()]
    params += [
        inspect.Parameter("workspace", inspect.Parameter.KEYWORD_ONLY, default=Path("."),
                          annotation=WorkspaceOpt),
        inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False,
                          annotation=JsonOpt),
        inspect.Parameter("wide", inspect.Parameter.KEYWORD_ONLY, default=False,
                          annotation=WideOpt),
    ]

    documents = DOCUMENTS.get(analysis.name)
    if documents:
        params += [
            inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, default="table",
                              annotation=FormatOpt),
            inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=None,
                              annotation=OutputOpt),
        ]

    def run(**given: Any) -> None:
        values = dict(fixed or {})
        values.update({k: v for k, v in given.items() if k in fields and v is not None
                       and v != []})
        kind = "json" if given["as_json"] else given.get("format", "table")
        if documents and kind not in ("table", "json", *documents):
            raise QueryError(f"{analysis.name} --format: {kind!r} is not one of table, json, "
                             f"{', '.join(documents)}", code="query/option")
        result = analysis_result(given["workspace"], analysis.name, values, _engine)
        if documents and (kind in documents or given.get("output")):
            text = (dumps(result.to_dict(), indent=True) + "\n" if kind in ("json", "table")
                    else documents[kind](result))
            if given.get("output"):
                given["output"].write_text(text, encoding="utf-8")
                out.print(f"Wrote {given['output']}")
            else:
                sys.stdout.write(text)
            return
        show(result, analysis, out, as_json=kind == "json", wide=given["wide"])

    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    run.__doc__ = analysis.doc
    run.__name__ = (name or analysis.name).replace("-", "_")
    app.command(name or analysis.name, hidden=hidden)(run)


for _analysis in REGISTRY:
    if _analysis.cli:
        command(_analysis)
# The series per day under the name it had before weekly series existed.
command(next(a for a in REGISTRY if a.name == "series"), "daily", fixed={"every": "day"},
        hidden=True)
