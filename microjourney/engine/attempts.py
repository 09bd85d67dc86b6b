"""Cut each moment's tagged events into attempts, per person, with window functions.

Per (person, moment), in time order (ties: ingest order, then role rank), an attempt
begins at a ``start`` event when no attempt is open. It stays open while the
person's events of that moment follow each other within the moment's ``timeout``;
its first outcome event (complete / fail / escalate) ends it. An attempt that goes
quiet for longer than the timeout is ``abandoned``; one still within its timeout
at the end of the data (``as_of``) is ``in_progress``. A start inside an open
attempt (the page opened again, a second tab) does not begin a new attempt: it is
a retry of step 0. Events of a moment outside any attempt (a step with no start
before it) are not part of any attempt.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from .backend import bit_count, channel_bit
from .tagging import OUTCOMES

OUTCOME_NAMES = {"complete": "completed", "fail": "failed", "escalate": "escalated"}


def segments(tagged: Table) -> Table:
    """The tagged rows with their attempt: ``segment`` names the attempt within (person,
    moment), NULL for a row outside any attempt; ``rn`` is the row's order in (person,
    moment) and ``hop`` 1 when the attempt's previous row came from another channel;
    ``begin_rn`` and ``begin_ms`` are the order and time of the row that began the cut
    the row is in (whether or not a start has come yet).

    The workspace stores the tag table in this form, so attempts, the friction scope,
    conformance and moment paths read the cut instead of cutting again. A row's values
    depend only on the rows before it: :func:`segments_after` cuts rows that come after
    those already cut without reading them."""
    return _cut(tagged, after=False)


def segments_after(tagged: Table, last: Table) -> Table:
    """:func:`segments` of rows that each come after every row already cut of their
    (person, moment), from ``last``: per (person, moment), the last row cut (``rn``,
    ``t_ms``, ``role``, ``channel``, ``segment``) and where its cut began (``begin_rn``,
    ``begin_ms``), as the workspace keeps them in ``tag_last``; a (person, moment) with
    no row there has none cut before. The rows are those cutting all of them again gives."""
    ll = last.select(l_person="person", l_moment="moment", l_rn="rn", l_t_ms="t_ms",
                     l_role="role", l_channel="channel", l_segment="segment",
                     l_begin_rn="begin_rn", l_begin_ms="begin_ms")
    t = tagged.left_join(ll, [tagged.person == ll.l_person, tagged.moment == ll.l_moment])
    return _cut(t.drop("l_person", "l_moment"), after=True)


_KEY = ["person", "moment"]
#: The order of a (person, moment)'s rows: time, then ingest order, then role rank.
_ORDER = ibis.window(group_by=_KEY, order_by=["t_ms", "seq", "rank"])
_LAST = ("l_rn", "l_t_ms", "l_role", "l_channel", "l_segment", "l_begin_rn", "l_begin_ms")


def _cut(t: Table, *, after: bool) -> Table:
    """:func:`segments` of ``t``; ``after``: following the last row cut before, whose
    values ``t``'s ``l_*`` columns hold (:func:`segments_after`)."""
    n = ibis.row_number().over(_ORDER)

    def previous(column: str) -> ibis.Value:
        lag = t[column].lag().over(_ORDER)
        return ibis.ifelse(n == 0, t["l_" + column], lag) if after else lag

    t = t.mutate(prev_t=previous("t_ms"), prev_role=previous("role"),
                 prev_channel=previous("channel"),
                 rn=n + ibis.coalesce(t.l_rn + 1, 0) if after else n)
    gap = (t.t_ms - t.prev_t) > t.timeout_ms
    brk = t.prev_t.isnull() | t.prev_role.isin(OUTCOMES) | gap
    # A channel hop: the attempt's next event comes from another channel.
    t = t.mutate(brk=brk, hop=ibis.ifelse(~brk & (t.channel != t.prev_channel), 1, 0))
    # Running maxima over the same ordering (one sort): where the current cut began
    # (its order and time: times do not decrease along the order), and where the last
    # start was. A row is in an attempt when a start came at or after its cut's
    # beginning; the cut's beginning names the attempt.
    cumulative = ibis.window(group_by=_KEY, order_by="rn", rows=(None, 0))
    begin_rn = ibis.ifelse(t.brk, t.rn, 0).max().over(cumulative)
    begin_ms = ibis.ifelse(t.brk, t.t_ms, None).max().over(cumulative)
    last_start = ibis.ifelse(t.role == "start", t.rn, -1).max().over(cumulative)
    if after:  # until a row breaks it, the last row's cut goes on, with or without a start
        begin_rn = ibis.greatest(begin_rn, ibis.coalesce(t.l_begin_rn, 0))
        begin_ms = ibis.greatest(begin_ms, t.l_begin_ms)
        last_start = ibis.greatest(last_start, ibis.coalesce(t.l_segment, -1))
    t = t.mutate(begin_rn=begin_rn, begin_ms=begin_ms, last_start=last_start)
    t = t.mutate(segment=ibis.ifelse(t.last_start >= t.begin_rn, t.begin_rn, None))
    return t.drop("prev_t", "prev_role", "prev_channel", "last_start", "brk",
                  *(_LAST if after else ()))


def attempt_rows(tagged: Table) -> Table:
    """The rows of :func:`segments` that belong to an attempt."""
    return tagged.filter(tagged.segment.notnull())


def attempts(tagged: Table, events: Table, as_of_ms: int) -> Table:
    """One row per attempt, from tagged rows cut by :func:`segments`.

    Only narrow columns go through the window sorts; the start event's id, properties
    and context are fetched from ``events`` (by ``seq``) once per attempt afterwards.
    """
    t = attempt_rows(tagged)
    funnel = t.step.notnull()
    a = t.group_by(["person", "moment", "segment"]).aggregate(
        start_seq=t.seq.argmin(t.rn),
        start_ts=t.timestamp.min(),
        end_ts=t.timestamp.max(),
        start_ms=t.t_ms.min(),
        begin_ms=t.begin_ms.min(),
        end_ms=t.t_ms.max(),
        outcome_role=t.role.max(where=t.role.isin(OUTCOMES)),
        furthest_step=t.step.max(),
        # Bit sets instead of COUNT(DISTINCT): one pass, no re-join of aggregates.
        step_bits=(ibis.literal(1, "int64") << t.step).bit_or(),
        step_events=funnel.cast("int64").sum(),
        events=t.count(),
        channel=t.channel.argmin(t.rn),
        end_channel=t.channel.argmax(t.rn),
        channel_bits=channel_bit(t.channel).bit_or(),
        hops=t.hop.sum(),
        known=t.known.any(),
        timeout_ms=t.timeout_ms.max(),
        sla_s=t.sla_s.max(),
    )
    start = events.select(s_seq=events.seq, s_event_id=events.event_id,
                          s_properties=events.properties, s_context=events.context)
    a = a.inner_join(start, a.start_seq == start.s_seq)
    outcome = ibis.cases(
        *((a.outcome_role == role, name) for role, name in OUTCOME_NAMES.items()),
        else_=ibis.ifelse(as_of_ms - a.end_ms > a.timeout_ms, "abandoned", "in_progress"),
    )
    duration = (a.end_ms - a.start_ms) / 1000.0
    return a.select(
        attempt_id=a.moment.concat(":", a.s_event_id),
        moment=a.moment,
        person=a.person,
        segment=a.segment,
        # When the attempt's cut began (its first row of the moment, perhaps before the
        # start): where a refresh cuts again from.
        begin_ms=a.begin_ms,
        start_ts=a.start_ts,
        end_ts=a.end_ts,
        outcome=outcome,
        duration_s=duration,
        sla_s=a.sla_s,
        # Time to complete against the SLA: known for completed attempts only.
        sla_met=ibis.ifelse(a.sla_s.isnull() | (outcome != "completed"), None, duration <= a.sla_s),
        furthest_step=a.furthest_step,
        steps_reached=bit_count(a.step_bits),
        retries=a.step_events - bit_count(a.step_bits),
        events=a.events,
        channel=a.channel,
        end_channel=a.end_channel,
        channels=bit_count(a.channel_bits),
        channel_hops=a.hops.cast("int64"),
        # Signed in: some event of the attempt carries a user id.
        authenticated=a.known,
        properties=a.s_properties,
        context=a.s_context,
    )
