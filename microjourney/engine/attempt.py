"""One attempt's timeline: every event of its person from the attempt's start to its end,
in order, with its properties and the role it played in the attempt (start, step N,
complete, fail, escalate) — the evidence behind an attempt's outcome and its frictions."""

from __future__ import annotations

from ibis.expr.types import Table

from .backend import epoch_ms


def attempt_events(attempt: Table, timeline: Table, events: Table, tagged: Table) -> Table:
    """The events of the one-row ``attempt`` (a row of ``attempts``): from ``timeline``
    (every event in person order), those of its person between its start and its end,
    with ``event_id``, ``timestamp`` and ``properties`` from ``events`` (by ``seq``) and the
    ``role`` and ``step`` from ``tagged`` where the event played one in this attempt."""
    a = attempt.select(a_person="person", a_moment="moment", a_segment="segment",
                       a_start=epoch_ms(attempt.start_ts), a_end=epoch_ms(attempt.end_ts))
    t = timeline.inner_join(a, (timeline.person == a.a_person) & (timeline.t_ms >= a.a_start)
                            & (timeline.t_ms <= a.a_end))
    # Properties as JSON text: the same value from the store (a JSON column) and a lake.
    e = events.select(e_seq="seq", event_id="event_id", timestamp="timestamp",
                      properties=events.properties.cast("string"))
    t = t.inner_join(e, t.seq == e.e_seq)
    g = tagged.select(g_person="person", g_moment="moment", g_segment="segment", g_seq="seq",
                      role="role", step="step")
    t = t.left_join(g, (t.seq == g.g_seq) & (t.a_person == g.g_person) & (t.a_moment == g.g_moment)
                    & (t.a_segment == g.g_segment))
    since = t.t_ms - t.a_start
    return t.select("seq", "event_id", "timestamp", "event", "channel", "role", "step", "properties",
                    since_start_s=since.cast("float64") / 1000).order_by(["timestamp", "seq", "step"])


def events_by_id(events: Table, ids: Table) -> Table:
    """The events whose ``event_id`` is in the one-column table ``ids`` (``e_id``): id,
    name, channel and time, in time order (a friction's evidence, as read)."""
    e = events.semi_join(ids, events.event_id == ids.e_id)
    return e.select("event_id", "event", "channel", "timestamp").order_by(["timestamp", "event_id"])


__all__ = ["attempt_events", "events_by_id"]
