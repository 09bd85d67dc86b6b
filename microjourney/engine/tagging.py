"""Tag events with the moment roles they play, for all moments in one pass.

Every matcher of every moment becomes a row of one *role table*
(event name → moment, role, funnel step). Events are joined to it once on the
event name; channel and property tests are then one CASE over the matcher id.
Never one scan per moment or per step.

Roles: ``start`` (funnel step 0), ``step`` (1..n), ``complete`` (n+1), ``fail``,
``escalate``. ``rank`` orders roles of one event inside a moment (start first,
outcomes last), so attempts and funnels are deterministic.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import ibis
from ibis.expr.types import BooleanValue, Table

from ..spec import Matcher, Moment, Predicate, Workspace
from .backend import epoch_ms, json_text, rows_table

OUTCOMES = ("complete", "fail", "escalate")


@dataclass(frozen=True)
class Role:
    matcher_id: int
    moment: str
    role: str
    step: int | None
    rank: int
    matcher: Matcher


def roles(moments: list[Moment]) -> list[Role]:
    """The role table of ``moments``, one row per matcher."""
    out: list[Role] = []
    for moment in moments:
        n = len(moment.steps)
        entries: list[tuple[str, int | None, Matcher | None]] = [("start", 0, moment.start)]
        entries += [("step", i + 1, m) for i, m in enumerate(moment.steps)]
        entries += [("complete", n + 1, moment.complete), ("fail", None, moment.fail),
                    ("escalate", None, moment.escalate)]
        for rank, (role, step, matcher) in enumerate(entries):
            if matcher is not None:
                out.append(Role(len(out), moment.name, role, step, rank, matcher))
    return out


def predicate(props: ibis.Value, p: Predicate) -> BooleanValue:
    text = json_text(props, p.key)
    if p.op == "exists":
        return text.notnull() if p.value else text.isnull()
    if p.op in ("gt", "gte", "lt", "lte"):
        num = text.try_cast("float64")
        return {"gt": num > p.value, "gte": num >= p.value,
                "lt": num < p.value, "lte": num <= p.value}[p.op]
    values = p.value if p.op in ("in", "not_in") else [p.value]
    # Compare as text, so `valid: true` matches JSON true and the CSV text "true" alike.
    texts = [str(v).lower() if isinstance(v, bool) else str(v) for v in values]
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    hit = text.isin(texts)
    if numbers:
        hit = hit | text.try_cast("float64").isin(numbers)
    return hit if p.op in ("eq", "in") else (text.notnull() & ~hit)


def _condition(t: Table, m: Matcher) -> BooleanValue | None:
    cond: BooleanValue | None = None
    if m.channel:
        cond = t.channel.isin(list(m.channel))
    for p in m.where:
        c = predicate(t.properties, p)
        cond = c if cond is None else cond & c
    return cond


def tag(events: Table, workspace: Workspace, moments: Collection[str] | None = None) -> Table:
    """Rows (event × role) for every event that plays a role in a moment (of ``moments``
    only, when given).

    ``events`` must have a ``person`` column (see :func:`microjourney.identity.with_person`).
    """
    table = roles([m for m in workspace.moments.values() if moments is None or m.name in moments])
    if not table:
        raise ValueError("no moments to tag")
    role_rows = [
        {"r_event": e, "matcher_id": r.matcher_id, "moment": r.moment, "role": r.role,
         "step": r.step, "rank": r.rank, "timeout_ms": round(ms.timeout * 1000),
         "sla_s": ms.sla}
        for r in table for ms in [workspace.moments[r.moment]] for e in r.matcher.event
    ]
    role_t = rows_table(role_rows, {
        "r_event": "string", "matcher_id": "int64", "moment": "string", "role": "string",
        "step": "int64", "rank": "int64", "timeout_ms": "int64", "sla_s": "float64"})
    joined = events.inner_join(role_t, events.event == role_t.r_event)
    branches = [(joined.matcher_id == r.matcher_id, c) for r in table
                if (c := _condition(joined, r.matcher)) is not None]
    if branches:
        joined = joined.filter(ibis.cases(*branches, else_=True))
    # Narrow rows: window sorts carry every column they are given.
    return joined.select(
        "person", "moment", "role", "step", "rank", "timeout_ms", "sla_s", "seq", "timestamp",
        "event", "channel", t_ms=epoch_ms(joined.timestamp), known=joined.user_id.notnull(),
    )
