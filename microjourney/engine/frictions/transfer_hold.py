"""transfer_hold (v2): passed around and kept waiting in assisted channels.

* a transfer (``transfer_events``): seconds lost are the time until the person's next
  event (waiting for the next operator), at most ``cap`` (the cap when none follows and the
  attempt is over: since version 2);
* hold reported by an event (the first of ``hold_keys`` it carries, in seconds) over
  ``hold_allowance``: seconds lost are the hold beyond the allowance;
* an unreturned query: an attempt started in a conversation channel (chat, voice, agent) and not answered
  (``answer_events``) within ``answer_sla``: seconds lost are the wait beyond it, to
  the answer or, when nobody answered, to the attempt's last event; at most ``cap``.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ...ingest.schema import ASSISTED_CHANNELS, CONVERSATION_CHANNELS
from ...spec.frictions import TransferHold
from .base import Context, capped, friction, ms, number, one, to_next

KIND = "transfer_hold"
VERSION = 2


def reach(cfg: TransferHold) -> float:
    """How far (s) the next event after a transfer can be and still change what is found."""
    return cfg.cap


def detect(s: Table, cfg: TransferHold, ctx: Context) -> Table:
    t = ctx.attempts(ctx.neighbours(s.filter(s.event.isin(list(cfg.transfer_events)))))
    transfers = friction(t, kind=KIND, version=VERSION, at_ms=t.t_ms, evidence=one(t),
                         seconds=to_next(t.t_ms, t.t_ms, t.next_t, t.outcome, cfg.cap))

    h = ctx.properties(s.filter(s.channel.isin(list(ASSISTED_CHANNELS))))
    h = h.mutate(hold=ibis.coalesce(*(number(h, k) for k in cfg.hold_keys)))
    h = h.filter(h.hold > cfg.hold_allowance)
    holds = friction(h, kind=KIND, version=VERSION, at_ms=h.t_ms, evidence=one(h),
                     seconds=h.hold - cfg.hold_allowance)

    # Attempts with a start in a conversation channel, then their first answer.
    st = s.filter(s.role == "start")
    g = st.group_by("attempt").aggregate(
        assisted=st.channel.isin(list(CONVERSATION_CHANNELS)).any(),
        start_id=st.seq.first(order_by=[st.t_ms, st.seq]))
    g = ctx.attempts(g.filter(g.assisted))
    ans = s.filter(s.event.isin(list(cfg.answer_events)))
    ans = ans.group_by(n_attempt=ans.attempt).aggregate(answer_t=ans.t_ms.min())
    g = g.left_join(ans, g.attempt == ans.n_attempt)
    g = g.select("attempt", "start_id", "answer_t", start_t=g.start_ms, last_t=g.end_ms)
    wait = ibis.coalesce(g.answer_t, g.last_t) - g.start_t
    g = g.filter(wait > ms(cfg.answer_sla))
    # The wait for an answer is the start's: it counts at step 0.
    unanswered = friction(g, kind=KIND, version=VERSION, step=ibis.literal(0, "int64"),
                          reached=ibis.literal(0, "int64"),
                          at_ms=g.start_t + ms(cfg.answer_sla), evidence=ibis.array([g.start_id]),
                          seconds=capped(wait - ms(cfg.answer_sla), cfg.cap))
    return transfers.union(holds).union(unanswered)
