"""What every detector returns, and the small helpers they share."""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from ibis.expr.types import Table, Value

from ...spec import Workspace
from ..backend import json_text, rows_table

#: Columns of a friction row, in order.
COLUMNS = ("attempt_id", "person", "moment", "step", "kind", "version", "seconds_lost", "at_ms",
           "evidence")
#: What a detector returns: the attempt by its number in the scope and the evidence as
#: event ``seq`` numbers; :func:`..named` turns them into moments, attempt and event ids
#: once. ``reached`` is the furthest step the attempt had reached when the friction
#: happened (a U-turn back to step 1 from step 2 happened at step 2): the impact on
#: completion compares attempts that had reached the same step.
DETECTED = ("attempt", "step", "kind", "version", "seconds_lost", "at_ms", "evidence", "reached")


@dataclass(frozen=True)
class Context:
    """What detectors may need besides the scope, joined on the rows they look into:
    the workspace and its per-step SLAs, the events' properties (``events``: the store's
    events table), the person's neighbouring events (``timeline``) and the attempts
    (``spans``, from :func:`.scope.spans`). The scope leaves them out because most
    detectors read a few of its rows."""

    workspace: Workspace
    events: Table
    timeline: Table
    spans: Table

    def properties(self, t: Table) -> Table:
        """``t`` (rows with ``seq``) with their events' ``properties`` (JSON)."""
        p = self.events.select(p_seq=self.events.seq, properties=self.events.properties)
        return t.inner_join(p, t.seq == p.p_seq).drop("p_seq")

    def neighbours(self, t: Table) -> Table:
        """``t`` (rows with ``seq``) with the times of the person's previous and next
        event, any channel and any attempt (``prev_t``, ``next_t``; NULL at the ends)."""
        n = self.timeline.select(n_seq="seq", prev_t="prev_t", next_t="next_t")
        return t.inner_join(n, t.seq == n.n_seq).drop("n_seq")

    def attempts(self, t: Table) -> Table:
        """``t`` (rows with ``attempt``) with their attempt's ``moment``, ``outcome``,
        ``start_ms`` and ``end_ms``."""
        a = self.spans.select(s_inner="inner", moment="a_moment", outcome="outcome",
                              start_ms="start_ms", end_ms="end_ms")
        return t.inner_join(a, t.attempt == a.s_inner).drop("s_inner")

    def step_slas(self) -> Table:
        """(moment, step, sla_ms) for every step (or complete) with its own ``sla``."""
        rows = [{"l_moment": m.name, "l_step": k, "sla_ms": round(matcher.sla * 1000)}
                for m in self.workspace.moments.values()
                for k, matcher in enumerate(m.funnel) if matcher.sla is not None]
        return rows_table(rows, {"l_moment": "string", "l_step": "int64",
                                           "sla_ms": "int64"})


def friction(t: Table, *, kind: str, version: int, seconds: Value, at_ms: Value,
             evidence: Value, step: Value | None = None, reached: Value | None = None) -> Table:
    """Rows in the shape detectors return (``DETECTED``); ``evidence`` holds ``seq`` numbers.
    ``step`` and ``reached`` default to the row's ``at_step`` (the scope's furthest step
    so far); rows aggregated from several events must pass ``reached``."""
    return t.select(
        attempt=t.attempt,
        step=(t.at_step if step is None else step).cast("int64"),
        kind=ibis.literal(kind), version=ibis.literal(version, "int64"),
        seconds_lost=seconds.cast("float64"), at_ms=at_ms.cast("int64"),
        evidence=evidence.cast("array<int64>"),
        reached=(t.at_step if reached is None else reached).cast("int64"),
    )


def number(t: Table, key: str) -> Value:
    """Property ``key`` as a number (NULL when absent or not a number)."""
    return json_text(t.properties, key).try_cast("float64")


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def capped(delta_ms: Value, cap_s: float) -> Value:
    """A time difference in seconds, at least 0 and at most ``cap_s``."""
    return ibis.least(ibis.greatest(delta_ms, 0), ms(cap_s)) / 1000.0


def to_next(start: Value, last: Value, next_t: Value, outcome: Value, cap_s: float) -> Value:
    """Seconds from ``start`` to the person's next event after ``last`` (``next_t``), at most
    ``cap_s``. With no event after it: the cap once the attempt is over (the person left),
    up to ``last`` while it is in progress. A next event later than the cap then counts
    as none: what a detector finds for a finished attempt does not change when the person
    comes back much later, so a refresh need not look at it again (a detector that reads
    the next event declares how far it looks, ``reach``)."""
    end = ibis.ifelse(outcome == "in_progress", last, start + ms(cap_s))
    return capped(ibis.coalesce(next_t, end) - start, cap_s)


def one(t: Table) -> Value:
    """Evidence of one event: the row's own."""
    return ibis.array([t.seq])
