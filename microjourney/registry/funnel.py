"""A moment's funnel: how many persons (or tries) reach its start, each step and its
completion, with conversion and the median time from the previous step."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from .. import engine
from ..analysis import funnel as funnel_analysis
from ..errors import QueryError
from ..spec import parse_duration
from . import filters
from .base import Analysis, Column, Notice, Output, View

if TYPE_CHECKING:
    import pandas as pd
    from ibis.expr.types import Table

    from ..spec.model import Moment
    from ..workspace import Workspace

COLUMNS = (
    Column("step", "#", "count", keep=0),
    Column("name", "step", keep=0),
    Column("count", "count", "count", "persons (with --per attempt: tries) reaching the step "
           "within the window", keep=0),
    Column("conversion_from_start", "from start", "rate", "count ÷ the first step's count",
           keep=0),
    Column("conversion_from_previous", "from previous", "rate", "count ÷ the previous step's "
           "count", keep=1),
    Column("median_time_from_previous_s", "median time", "seconds", "median time from the "
           "previous step, over those reaching the step", keep=1),
    Column("within_s", "within", "seconds", "the step's own conversion window from the "
           "previous step (`within:`), if it has one", keep=2),
)


class Params(filters.Filters):
    moment: str = Field(description="Moment name.", json_schema_extra={"argument": True})
    order: Literal["ordered", "strict", "unordered"] = Field(
        "ordered", description="ordered: other events may come between steps; strict: none may; "
        "unordered: steps in any order.")
    window: str | None = Field(None, description="Conversion window from the first step, e.g. "
                               "10m (default: the moment's timeout).")
    per: Literal["person", "attempt"] = Field("person", description="Count persons, or every "
                                              "try (attempt).")


def window_s(ws: Workspace, p: Params) -> float:
    """The conversion window in seconds: the one asked for, else the moment's timeout."""
    if p.window is None:
        return ws.moment(p.moment).timeout
    try:
        return parse_duration(p.window)
    except ValueError as exc:
        raise QueryError(f"--window: {exc}", code="query/option") from None


def compute(ws: Workspace, p: Params) -> Output:
    m = ws.moment(p.moment)
    seconds = window_s(ws, p)
    within = [matcher.within for matcher in m.funnel]
    q = replace(engine.moment_query(m), order=p.order, window_ms=round(seconds * 1000), per=p.per)
    kept = (ws._funnel_tries(p.moment)
            if p.order == "ordered" and p.window is None and filters.unfiltered(p) else None)
    if kept is not None:
        # The moment's own funnel: counted from the tries the refresh keeps (funnel_tries).
        return _output(p, m, engine.kept_funnel_stats(kept, q).to_pandas(), within)
    tagged: Table = ws._tagged(p.moment)
    if not filters.unfiltered(p):
        # The funnel of the attempts the filters keep: their start, period, channel, values.
        a = filters.attempts(ws.attempts(p.moment), p).select(k_person="person",
                                                               k_segment="segment")
        tagged = tagged.semi_join(a, [tagged.person == a.k_person, tagged.segment == a.k_segment])
    events = ws.events() if p.order == "strict" else None
    stats = engine.funnel_stats(tagged, events, q).to_pandas()
    return _output(p, m, stats, within)


def _output(p: Params, m: Moment, stats: pd.DataFrame, within: list[float | None]) -> Output:
    steps = funnel_analysis.steps(stats, m.step_labels)
    steps["within_s"] = within
    first = int(steps["count"].iloc[0]) if len(steps) else 0
    notes = []
    if first == 0:
        notes.append(Notice("no-units", f"{p.moment}: nobody reached the start; conversion is "
                            "undefined", {"moment": p.moment}))
    return Output({"steps": steps}, notes)


ANALYSIS = Analysis(
    name="funnel",
    title="Funnel",
    doc="Step counts and conversion through a moment's start, steps and completion (ordered, "
        "strict or unordered), with the median time between steps.",
    params=Params,
    compute=compute,
    views=(View("steps", "Funnel", COLUMNS),),
    examples=lambda ws: [{"moment": m} for m in list(ws.moments)[:2]] + [
        {"moment": m, "order": o, "per": "attempt"} for m in list(ws.moments)[:1]
        for o in ("strict", "unordered")],
)
