"""A moment's attempts, newest first: one row per person's pass through the moment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from . import filters
from .base import Analysis, Column, Output, View

if TYPE_CHECKING:
    from ..workspace import Workspace

Outcome = Literal["completed", "failed", "abandoned", "escalated", "in_progress"]

COLUMNS = (
    Column("start_ts", "start", "time", "the start event's time", keep=0),
    Column("person", "person", keep=0),
    Column("outcome", "outcome", keep=0),
    Column("duration_s", "duration", "seconds", "first to last event of the attempt", keep=1),
    Column("furthest_step", "furthest step", "count", "0 = start … steps + 1 = complete", keep=1),
    Column("retries", "retries", "count", "funnel step events beyond the first of each step",
           keep=2),
    Column("channel", "channel", keep=1),
    Column("escalated", "escalated", "flag", "escalated in the attempt or after it", keep=3),
    Column("attempt_id", "attempt", "text", "the attempt's id (`microjourney attempt ID` shows it "
           "whole)", keep=4),
)


class Params(filters.Filters):
    moment: str = Field(description="Moment name.", json_schema_extra={"argument": True})
    outcome: Outcome | None = Field(None, description="Only attempts with this outcome.")
    kind: str | None = Field(None, description="Only attempts with a friction of this kind.")
    reached: int | None = Field(None, ge=0, le=1000, description="Only attempts whose furthest "
                                "step is at least this (0 = start … steps + 1 = complete).")
    limit: int = Field(20, ge=1, le=100_000, description="Rows to show.")


def compute(ws: Workspace, p: Params) -> Output:
    t = filters.attempts(ws.attempts(p.moment), p)
    if p.outcome:
        t = t.filter(t.outcome == p.outcome)
    if p.reached is not None:
        t = t.filter(t.furthest_step >= p.reached)
    if p.kind:
        f = ws.frictions(p.moment, kind=p.kind).select(f_id="attempt_id").distinct()
        t = t.semi_join(f, t.attempt_id == f.f_id)
    t = t.order_by([t.start_ts.desc(), t.person, t.segment]).limit(p.limit)
    return Output({"attempts": t.drop("properties", "context").to_pandas()})


ANALYSIS = Analysis(
    name="attempts",
    title="Attempts",
    doc="A moment's attempts, newest first: start, person, outcome, duration, furthest step, "
        "retries, channels, escalation and contacts; by outcome, friction kind and step reached.",
    params=Params,
    compute=compute,
    views=(View("attempts", "Attempts", COLUMNS),),
    examples=lambda ws: [{"moment": m, "limit": 100_000} for m in list(ws.moments)[:1]],
    report=False,
)
