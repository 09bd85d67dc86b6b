"""Paths: the commonest paths after (``from``) or before (``to``) a step, from each case's
first one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from ..errors import QueryError
from .base import Analysis, Column, Output, View
from .cases import CaseParams

if TYPE_CHECKING:
    from ..workspace import Workspace

COLUMNS = (
    Column("cases", "cases", "count", "cases taking the path", keep=0),
    Column("share", "share", "rate", "cases ÷ cases reaching the step", keep=0),
    Column("duration_median_s", "median", "seconds", "median time along the path", keep=1),
    Column("variant", "path", keep=0),
)


class PathParams(CaseParams):
    start: str | None = Field(None, alias="from", description="Paths after this step (an event "
                              "name, or a step of --moment).")
    end: str | None = Field(None, alias="to", description="Paths leading to this step.")
    length: int = Field(5, ge=1, le=100, description="Steps in a path, the named one included.")
    top: int = Field(10, ge=1, le=1_000_000, description="How many paths.")

    @model_validator(mode="after")
    def _one_end(self) -> PathParams:
        if (self.start is None) == (self.end is None):
            raise ValueError("give exactly one of --from STEP or --to STEP")
        return self


def compute(ws: Workspace, p: PathParams) -> Output:
    step = p.start if p.start is not None else p.end
    if step is None:  # pragma: no cover - the validator requires one
        raise QueryError("give --from or --to", code="query/option")
    v = ws.paths(step, after=p.start is not None, moment=p.moment, by=p.case, length=p.length,
                 top=p.top, channel=p.channel, since=p.since, until=p.until, outcome=p.outcome,
                 where=p.where)
    return Output({"paths": v.to_pandas()})


def _examples(ws: Workspace) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for m in list(ws.moments)[:1]:
        first = ws.moments[m].step_labels[0]
        out += [{"from": first, "moment": m, "top": 1_000_000},
                {"to": first, "moment": m, "top": 1_000_000}]
    return out


ANALYSIS = Analysis(
    name="paths",
    title="Paths",
    doc="The commonest paths after (--from) or before (--to) a step, from each case's first one.",
    params=PathParams,
    compute=compute,
    views=(View("paths", "Paths", COLUMNS),),
    examples=_examples,
    report=False,
)
