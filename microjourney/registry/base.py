"""What an analysis declares, and what it returns.

An :class:`Analysis` is declared once, in its own module of this package: its name and
title, its parameters (a pydantic model: typed, validated, documented, defaulted), the
computation (a function of the workspace and the parameters) and how its tables read
(:class:`View`, :class:`Column`). The CLI command, the Python API
(``ws.analysis(name, **params)``), ``GET /v1/analyses/{name}``, the report section and
the DuckDB-vs-Spark conformance entry are all made from that declaration
(docs/architecture.md, "Adding an analysis").

A computation returns an :class:`Output`: named tables and coded warnings
(:class:`Notice`); the registry adds the metadata (parameters, filters, engine, the end
of the data) and hands back a frozen :class:`Result`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import QueryError
from ..jsonable import jsonable, records

if TYPE_CHECKING:
    from ..workspace import Workspace

#: How a column's values read on every surface (one formatter: :mod:`microjourney.fmt`).
#: ``measure`` and ``measure-change`` read in the unit of the row's ``metric`` column: a
#: rate (or a change in points), seconds, or a count (:func:`microjourney.fmt.measure`).
#: ``score``: a value on a −1 to 1 (or 0 to 1) scale, two decimals and signed.
Kind = Literal["text", "count", "rate", "points", "seconds", "number", "p", "time", "list", "flag",
               "measure", "measure-change", "score"]


class Params(BaseModel):
    """The parameters of an analysis. A field's description is its help on every surface;
    a field with ``json_schema_extra={"argument": True}`` is a positional CLI argument."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True)
class Column:
    """A column as people read it: ``label`` (the same words on every surface), what its
    values are (``kind``), and for a rate its interval column (``ci``). ``doc`` says what
    it counts; for a rate, over what (its denominator). ``keep``: 0 is always shown; a
    higher number is hidden earlier when a table does not fit the terminal."""

    name: str
    label: str
    kind: Kind = "text"
    doc: str = ""
    ci: str | None = None
    keep: int = 1


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column],
          extra: Sequence[str] = ()) -> pd.DataFrame:
    """``rows`` as a table with the declared ``columns``, their interval columns and
    ``extra`` ones, in that order (an empty table keeps them too)."""
    names = [c.name for c in columns] + [c.ci for c in columns if c.ci] + list(extra)
    return pd.DataFrame(list(rows), columns=list(dict.fromkeys(names)))


@dataclass(frozen=True)
class View:
    """How one table of the result reads: a title (which may name the result's metadata,
    ``"Quarantine: {total:,} rows"``) and its columns, in order."""

    table: str
    title: str
    columns: tuple[Column, ...]
    #: Rows shown in a terminal (all with ``--wide`` or ``--json``); None: all.
    rows: int | None = None


@dataclass(frozen=True)
class Notice:
    """A coded warning beside a result, not an error: ``too-few-attempts``,
    ``interval-undefined``... ``where`` names what it is about (``{"moment": ...}``)."""

    code: str
    message: str
    where: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "where": dict(self.where)}


@dataclass(frozen=True)
class Output:
    """What a computation returns: tables by name (small pandas frames) and warnings."""

    tables: Mapping[str, pd.DataFrame]
    warnings: Sequence[Notice] = ()
    #: Figures about the whole result (a total beyond the rows shown), added to its metadata.
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """An analysis's answer: named tables, coded warnings and metadata (``params`` as
    given with defaults filled in, ``filters``, ``engine``, ``as_of``: the time of the
    last event).

    >>> r = ws.analysis("scorecard", channel="web")     # doctest: +SKIP
    >>> r.table()                                       # the main table, a DataFrame
    >>> r.to_dict()                                     # what --json and the API print
    """

    analysis: str
    tables: Mapping[str, pd.DataFrame]
    warnings: tuple[Notice, ...]
    meta: Mapping[str, Any]

    def table(self, name: str | None = None) -> pd.DataFrame:
        """A table by name; without one, the first (the analysis's main table)."""
        if name is None:
            return next(iter(self.tables.values()))
        return self.tables[name]

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON values (:func:`microjourney.jsonable.jsonable`)."""
        return {"analysis": self.analysis, "meta": jsonable(dict(self.meta)),
                "warnings": [w.to_dict() for w in self.warnings],
                "tables": {name: records(df) for name, df in self.tables.items()},
                "columns": {name: [str(c) for c in df.columns] for name, df in self.tables.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """A result read back from :meth:`to_dict` (the CLI reading a running server)."""
        columns = data.get("columns") or {}
        tables = {name: pd.DataFrame.from_records(rows, columns=columns.get(name))
                  if rows else pd.DataFrame(columns=columns.get(name))
                  for name, rows in data["tables"].items()}
        warnings = tuple(Notice(w["code"], w["message"], w.get("where") or {})
                         for w in data.get("warnings", ()))
        return cls(data["analysis"], tables, warnings, data.get("meta", {}))


@dataclass(frozen=True)
class Analysis:
    """One analysis, declared once (see the module doc)."""

    name: str
    title: str
    #: One paragraph: what it answers. The CLI help, the API summary and docs/analyses.md.
    doc: str
    params: type[Params]
    compute: Callable[[Workspace, Any], Output]
    views: tuple[View, ...]
    #: Parameters the conformance suite runs it with, per workspace (each a dict).
    examples: Callable[[Workspace], Sequence[Mapping[str, Any]]] = lambda ws: [{}]
    #: Compared across engines (DuckDB store, DuckDB over a lake, Spark). False only for
    #: what reads the workspace's own store whatever the engine (quarantine, ingests).
    engines: bool = True
    #: The report shows it (with default parameters) when a report section renders it.
    report: bool = True
    #: Its CLI command is made from this declaration (False: a hand-written command that
    #: calls it, such as ``quarantine`` with its ``--clear``).
    cli: bool = True

    def validate(self, values: Mapping[str, Any]) -> Params:
        """The parameters from ``values`` (by name or public alias); a ``QueryError``
        naming the parameter when one is wrong."""
        try:
            return self.params.model_validate(dict(values))
        except ValidationError as exc:
            raise QueryError(describe_problem(self.name, exc.errors()[0]), code="query/option") from None


def describe_problem(analysis: str, error: Mapping[str, Any]) -> str:
    """One sentence for a parameter's first problem, naming it as the CLI spells it."""
    loc = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
    name = loc[0] if loc else ""
    option = f"--{name.replace('_', '-')}" if name else "parameters"
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "literal_error":
        allowed = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"unknown {analysis} {name.replace('_', ' ')} {error.get('input')!r}; allowed: {allowed}"
    if kind == "missing":
        return f"{analysis} needs {option}"
    if kind == "extra_forbidden":
        return f"{analysis} has no parameter {option}"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{analysis}: {option}: {message}" if name else f"{analysis}: {message}"
