"""Path variants: the distinct sequences of steps cases take, with their number of cases,
share and median duration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from .base import Analysis, Column, Output, View
from .cases import CaseParams

if TYPE_CHECKING:
    from ..workspace import Workspace

COLUMNS = (
    Column("cases", "cases", "count", "cases taking the path", keep=0),
    Column("share", "share", "rate", "cases ÷ all cases", keep=0),
    Column("duration_median_s", "median", "seconds", "median time from the case's first to "
           "its last node", keep=1),
    Column("variant", "path", keep=0),
)


class Params(CaseParams):
    top: int = Field(10, ge=1, le=1_000_000, description="How many variants.")


def compute(ws: Workspace, p: Params) -> Output:
    v = ws.variants(p.moment, by=p.case, top=p.top, channel=p.channel, since=p.since,
                    until=p.until, outcome=p.outcome, where=p.where)
    return Output({"variants": v.to_pandas()})


ANALYSIS = Analysis(
    name="variants",
    title="Path variants",
    doc="Path variants: the distinct step sequences, with counts, share and median duration.",
    params=Params,
    compute=compute,
    views=(View("variants", "Path variants", COLUMNS),),
    examples=lambda ws: [{"top": 1_000_000}] + [{"moment": m, "top": 1_000_000}
                                                for m in list(ws.moments)[:2]],
)
