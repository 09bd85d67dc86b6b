"""What every detector returns, and the small helpers they share."""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from ibis.expr.types import Table, Value

from ...spec import Workspace
from ..backend import json_text

#: Columns of a friction row, in order.
COLUMNS = ("attempt_id", "person", "moment", "step", "kind", "version", "seconds_lost", "at_ms",
           "evidence")
#: What a detector returns: the attempt by its number in the scope and the evidence as
#: event ``seq`` numbers; :func:`..detect` turns them into attempt and event ids once.
DETECTED = ("attempt", "moment", "step", "kind", "version", "seconds_lost", "at_ms", "evidence")


@dataclass(frozen=True)
class Context:
    """What detectors may need besides the scope: the workspace, per-step SLAs and the
    events' properties (``events``: the store's events table, by ``seq``)."""

    workspace: Workspace
    events: Table

    def properties(self, t: Table) -> Table:
        """``t`` (scope rows) with their events' ``properties``. The scope leaves the
        JSON out, so that only the rows a detector looks into carry it."""
        p = self.events.select(p_seq=self.events.seq, properties=self.events.properties)
        return t.inner_join(p, t.seq == p.p_seq).drop("p_seq")

    def step_slas(self) -> Table:
        """(moment, step, sla_ms) for every step (or complete) with its own ``sla``."""
        rows = [{"l_moment": m.name, "l_step": k, "sla_ms": round(matcher.sla * 1000)}
                for m in self.workspace.moments.values()
                for k, matcher in enumerate(m.funnel) if matcher.sla is not None]
        return ibis.memtable(rows, schema={"l_moment": "string", "l_step": "int64",
                                           "sla_ms": "int64"})


def friction(t: Table, *, kind: str, version: int, seconds: Value, at_ms: Value,
             evidence: Value, step: Value | None = None) -> Table:
    """Rows in the shape detectors return (``DETECTED``); ``evidence`` holds ``seq`` numbers."""
    return t.select(
        attempt=t.attempt, moment=t.moment,
        step=(t.at_step if step is None else step).cast("int64"),
        kind=ibis.literal(kind), version=ibis.literal(version, "int64"),
        seconds_lost=seconds.cast("float64"), at_ms=at_ms.cast("int64"),
        evidence=evidence.cast("array<int64>"),
    )


def number(t: Table, key: str) -> Value:
    """Property ``key`` as a number (NULL when absent or not a number)."""
    return json_text(t.properties, key).try_cast("float64")


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def capped(delta_ms: Value, cap_s: float) -> Value:
    """A time difference in seconds, at least 0 and at most ``cap_s``."""
    return ibis.least(ibis.greatest(delta_ms, 0), ms(cap_s)) / 1000.0


def one(t: Table) -> Value:
    """Evidence of one event: the row's own."""
    return ibis.array([t.seq])
