"""One attempt, whole: its row, every event of its person from its start to its end with
the role each played and its properties, and the frictions found in it — the "why" behind
a number (the dashboard's attempt page; ``microjourney attempt ID``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from pydantic import Field

from .. import engine
from ..errors import QueryError
from .base import Analysis, Column, Output, Params, View

if TYPE_CHECKING:
    from ..workspace import Workspace

ATTEMPT = (
    Column("attempt_id", "attempt", keep=0),
    Column("moment", "moment", keep=0),
    Column("person", "person", keep=0),
    Column("outcome", "outcome", keep=0),
    Column("start_ts", "start", "time", "the start event's time", keep=0),
    Column("duration_s", "duration", "seconds", "first to last event of the attempt", keep=1),
    Column("furthest_step", "furthest step", "count", "0 = start … steps + 1 = complete", keep=1),
    Column("retries", "retries", "count", "funnel step events beyond the first of each step", keep=2),
    Column("channel", "channel", "text", "the start event's channel", keep=1),
    Column("channels", "channels", "count", "how many channels its events came from", keep=2),
    Column("escalated", "escalated", "flag", "escalated in the attempt or after it", keep=2),
)
EVENTS = (
    Column("timestamp", "time", "time", keep=0),
    Column("since_start_s", "since start", "seconds", "time since the attempt's start", keep=1),
    Column("event", "event", keep=0),
    Column("channel", "channel", keep=1),
    Column("role", "role", "text", "the role the event played in this attempt (start, step, "
           "complete, fail, escalate); empty: another event of the person meanwhile", keep=0),
    Column("step", "step", "count", "the funnel step it reached (1 = the first after the start)",
           keep=2),
    Column("properties", "properties", "text", "the event's properties, as stored (scrubbed on "
           "the way in)", keep=1),
    Column("event_id", "event id", keep=3),
)
FRICTIONS = (
    Column("kind", "kind", keep=0),
    Column("step", "step", "count", keep=1),
    Column("seconds_lost", "seconds lost", "seconds", keep=0),
    Column("evidence", "evidence (event ids)", "list", keep=1),
)


class AttemptParams(Params):
    id: str = Field(description="The attempt's id (the `attempt_id` of attempts).",
                    max_length=1000, json_schema_extra={"argument": True})


def compute(ws: Workspace, p: AttemptParams) -> Output:
    a = ws.attempts()
    one = a.filter(a.attempt_id == p.id)
    row = one.drop("properties", "context").to_pandas()
    if row.empty:
        raise QueryError(f"no attempt {p.id!r}: give an `attempt_id` from the attempts analysis",
                         code="query/attempt")
    moment = str(row["moment"].iloc[0])
    # The timeline is as fresh as the attempts just read (ws.attempts refreshed it).
    events = engine.attempt_events(one, ws.db.table("timeline"), ws.events(), ws._tagged(moment))
    f = ws.frictions(moment)
    f = f.filter(f.attempt_id == p.id).order_by([f.at_ms, f.kind])
    frictions = f.select("kind", "step", "seconds_lost", "evidence").to_pandas()
    return Output({"attempt": row, "events": events.to_pandas(),
                   "frictions": frictions if len(frictions) else pd.DataFrame(
                       columns=["kind", "step", "seconds_lost", "evidence"])})


def _examples(ws: Workspace) -> list[dict[str, str]]:
    a = ws.attempts()
    first = a.order_by([a.start_ts, a.attempt_id]).limit(1).attempt_id.to_pyarrow().to_pylist()
    return [{"id": first[0]}] if first else []


ANALYSIS = Analysis(
    name="attempt",
    title="One attempt",
    doc="One attempt, whole: its row, every event of its person from its start to its end with "
        "the role each played and its properties, and the frictions found in it.",
    params=AttemptParams,
    compute=compute,
    views=(View("attempt", "Attempt", ATTEMPT), View("events", "Its events, in order", EVENTS),
           View("frictions", "Frictions in it", FRICTIONS)),
    examples=_examples,
    report=False,
)
