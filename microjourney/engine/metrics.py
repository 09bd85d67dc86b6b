"""Moment metrics as engine aggregates: sufficient statistics, never raw rows."""

from __future__ import annotations

from ibis.expr.types import Table


def outcome_counts(attempts: Table, by: list[str], *, persons: bool = True) -> Table:
    """Per ``by`` group: attempts, persons (unless ``persons`` is false: the distinct count
    is most of the work), outcome counts and completion times."""
    a = attempts
    done = a.outcome == "completed"
    return a.group_by(by).aggregate(
        attempts=a.count(),
        **({"persons": a.person.nunique()} if persons else {}),
        completed=done.cast("int64").sum(),
        failed=(a.outcome == "failed").cast("int64").sum(),
        abandoned=(a.outcome == "abandoned").cast("int64").sum(),
        escalated=(a.outcome == "escalated").cast("int64").sum(),
        escalations=a.escalated.cast("int64").sum(),
        contacts=a.contact.cast("int64").sum(),
        repeat_contacts=a.repeat_contact.cast("int64").sum(),
        self_served=(done & a.self_service & ~a.escalated).cast("int64").sum(),
        authenticated_self_served=(done & a.self_service & a.authenticated & ~a.escalated)
        .cast("int64").sum(),
        in_progress=(a.outcome == "in_progress").cast("int64").sum(),
        retried=(a.retries > 0).cast("int64").sum(),
        duration_median_s=a.duration_s.median(where=done),
        duration_p90_s=a.duration_s.quantile(0.9, where=done),
        sla_known=a.sla_met.notnull().cast("int64").sum(),
        sla_met=a.sla_met.cast("int64").sum(),
    )


def daily_counts(attempts: Table) -> Table:
    """Per moment and day (UTC) of the attempt's start: attempts by outcome."""
    a = attempts.mutate(day=attempts.start_ts.date())
    return outcome_counts(a, ["moment", "day"]).order_by(["moment", "day"])
