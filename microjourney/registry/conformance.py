"""Step order: how often attempts follow each moment's designed step order, and the
commonest deviations (a step skipped, repeated, or taken again after a later one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from .. import engine
from ..analysis import conformance as conformance_analysis
from . import filters
from .base import Analysis, Column, Output, View
from .notices import small_counts

if TYPE_CHECKING:
    from ..workspace import Workspace

SUMMARY = (
    Column("moment", "moment", keep=0),
    Column("attempts", "attempts", "count", "attempts kept by the filters", keep=0),
    Column("conforming", "conforming", "count", "attempts with no deviation", keep=1),
    Column("conformance_rate", "conformance", "rate", "conforming ÷ attempts",
           ci="conformance_ci", keep=0),
)
DEVIATIONS = (
    Column("moment", "moment", keep=0),
    Column("deviation", "deviation", keep=0),
    Column("kind", "kind", keep=2),
    Column("attempts", "attempts", "count", "attempts with the deviation", keep=0),
    Column("occurrences", "occurrences", "count", "times it happened", keep=1),
)


class Params(filters.Filters):
    moment: str | None = Field(None, description="One moment (default: all).",
                               json_schema_extra={"argument": True})
    top: int = Field(5, ge=1, le=1_000_000, description="Deviations listed per moment.")


def compute(ws: Workspace, p: Params) -> Output:
    if p.moment is not None:
        ws.moment(p.moment)
    ws.refresh()
    tagged = ws.db.table("tagged")
    if p.moment is not None:
        tagged = tagged.filter(tagged.moment == p.moment)
    rows = engine.attempt_rows(tagged)
    if not filters.unfiltered(p):
        a = filters.attempts(ws.attempts(p.moment), p).select(
            k_person="person", k_moment="moment", k_segment="segment")
        rows = rows.semi_join(a, [rows.person == a.k_person, rows.moment == a.k_moment,
                                  rows.segment == a.k_segment])
    names = list(ws.moments) if p.moment is None else [p.moment]
    counts = engine.conformance_counts(rows).to_pandas()
    dev = engine.deviations(rows).to_pandas()
    labels = {name: ws.moments[name].step_labels for name in names}
    summary = conformance_analysis.summary(counts, names)
    named = conformance_analysis.named(dev, labels)
    named = named.groupby("moment", sort=False).head(p.top).reset_index(drop=True)
    return Output({"moments": summary, "deviations": named},
                  small_counts(summary, "attempts", ["moment"], "attempts"))


ANALYSIS = Analysis(
    name="conformance",
    title="Conformance to the designed step order",
    doc="How often attempts follow each moment's designed step order, and the commonest "
        "deviations: a step skipped, repeated, or taken again after a later one.",
    params=Params,
    compute=compute,
    views=(View("moments", "Conformance to the designed step order", SUMMARY),
           View("deviations", "Commonest deviations", DEVIATIONS)),
    examples=lambda ws: [{"top": 10_000}],
)
