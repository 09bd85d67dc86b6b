"""Conformance: how attempts follow a moment's designed step order, and how they deviate.

The designed flow is start (step 0), the steps in order, then complete (n+1); an attempt
conforms when its funnel steps go 0, 1, 2, ... with no step skipped, repeated or taken
out of order (it may stop early: a failed or abandoned attempt that followed the order
up to where it stopped conforms). Each transition between consecutive funnel events of
an attempt is one of:

* ``skipped``: from step i to step j > i + 1 (steps i+1 .. j-1 were skipped);
* ``repeated``: step i again right after step i;
* ``out_of_order``: from step i back to an earlier step j < i.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

KINDS = ("skipped", "repeated", "out_of_order")


def _transitions(rows: Table) -> Table:
    """Funnel rows of attempts (from ``attempt_rows``) with the previous step of the attempt."""
    f = rows.filter(rows.step.notnull())
    w = ibis.window(group_by=["person", "moment", "segment"], order_by="rn")
    f = f.mutate(prev=f.step.lag().over(w))
    kind = ibis.cases(
        (f.step == f.prev, "repeated"),
        (f.step < f.prev, "out_of_order"),
        (f.step > f.prev + 1, "skipped"),
        else_=ibis.null("string"),
    )
    return f.mutate(kind=kind, attempt=f.person.concat(":", f.segment.cast("string")))


def deviations(rows: Table) -> Table:
    """Per moment, kind and (from step, to step): occurrences and attempts affected."""
    t = _transitions(rows)
    t = t.filter(t.kind.notnull())
    return t.group_by(["moment", "kind", "prev", "step"]).aggregate(
        occurrences=t.count(), attempts=t.attempt.nunique())


def conformance_counts(rows: Table) -> Table:
    """Per moment: attempts, and attempts with at least one deviation."""
    t = _transitions(rows)
    per_attempt = t.group_by(["moment", "attempt"]).aggregate(deviates=t.kind.notnull().any())
    return per_attempt.group_by("moment").aggregate(
        attempts=per_attempt.count(), deviating=per_attempt.deviates.cast("int64").sum())
