"""Escalation and repeat contact: what happens after a self-service attempt goes wrong.

A *contact* about a moment is an event playing the moment's ``escalate`` role in an
assisted channel (chat, voice, agent, email), or the start of an attempt made in a
conversation channel (chat, voice, agent: a chat or a call is itself a contact).
Every other attempt is **self-service** (web, app, and attempts begun by an e-mail or
SMS the company sent). Per moment:

* a failed or abandoned self-service attempt followed by a contact within
  ``escalation_window`` of its last event is **escalated** (as is an attempt whose outcome is ``escalated``);
* an attempt that is or led to a contact is a **repeat contact** when another contact
  about the moment by the same person follows within ``repeat_contact_window``.
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from ..spec import Workspace
from ..vocabulary import ASSISTED_CHANNELS, CONVERSATION_CHANNELS
from .backend import epoch_ms, rows_table

ASSISTED = list(ASSISTED_CHANNELS)
CONVERSATION = list(CONVERSATION_CHANNELS)


def moment_settings(workspace: Workspace) -> Table:
    """Per moment (``w_moment``): its timeout and its escalation and repeat-contact
    windows, in ms; the small table the engine joins to attempts."""
    rows = [{"w_moment": m.name, "timeout_ms": round(m.timeout * 1000),
             "escalation_ms": round(m.escalation_window * 1000),
             "repeat_ms": round(m.repeat_contact_window * 1000)}
            for m in workspace.moments.values()]
    return rows_table(rows, {"w_moment": "string", "timeout_ms": "int64",
                                       "escalation_ms": "int64", "repeat_ms": "int64"})


def contacts(tagged: Table, attempts: Table) -> Table:
    """Contacts per (person, moment): time (ms) and channel."""
    esc = tagged.filter((tagged.role == "escalate") & tagged.channel.isin(ASSISTED))
    esc = esc.select(c_person=esc.person, c_moment=esc.moment, c_ms=esc.t_ms, c_channel=esc.channel)
    a = attempts.filter(attempts.channel.isin(CONVERSATION))
    starts = a.select(c_person=a.person, c_moment=a.moment, c_ms=epoch_ms(a.start_ts),
                      c_channel=a.channel)
    return esc.union(starts, distinct=True)


def with_contacts(attempts: Table, tagged: Table, settings: Table) -> Table:
    """``attempts`` with escalation, contact and repeat-contact columns
    (``settings`` from :func:`moment_settings`)."""
    a = attempts.inner_join(settings, attempts.moment == settings.w_moment).drop("w_moment",
                                                                                  "timeout_ms")
    a = a.mutate(_end_ms=epoch_ms(a.end_ts), _start_ms=epoch_ms(a.start_ts),
                 self_service=~a.channel.isin(CONVERSATION))
    c = contacts(tagged, attempts)

    # Escalated after the attempt: the first contact within the window.
    cand = a.filter(a.outcome.isin(["failed", "abandoned"]) & a.self_service)
    j = cand.inner_join(c, [cand.person == c.c_person, cand.moment == c.c_moment,
                            c.c_ms > cand._end_ms, c.c_ms <= cand._end_ms + cand.escalation_ms])
    after = j.group_by(e_id=j.attempt_id).aggregate(e_ms=j.c_ms.min(),
                                                    e_channel=j.c_channel.argmin(j.c_ms))
    a = a.left_join(after, a.attempt_id == after.e_id).drop("e_id")
    in_attempt = a.outcome == "escalated"
    a = a.mutate(
        escalated=in_attempt | a.e_ms.notnull(),
        escalation_channel=ibis.ifelse(in_attempt, a.end_channel, a.e_channel),
        escalation_delay_s=ibis.ifelse(in_attempt, 0.0, (a.e_ms - a._end_ms) / 1000.0),
        channel_hops=a.channel_hops + ibis.ifelse(a.e_ms.notnull(), 1, 0),
        _contact_ms=ibis.cases((~a.self_service, a._start_ms), (in_attempt, a._end_ms),
                               else_=a.e_ms),
    )

    # Repeat contact: another contact about the moment follows within the window.
    k = a.filter(a._contact_ms.notnull())
    r = k.inner_join(c, [k.person == c.c_person, k.moment == c.c_moment,
                         c.c_ms > k._contact_ms, c.c_ms <= k._contact_ms + k.repeat_ms])
    repeated = r.group_by(r_id=r.attempt_id).aggregate(r_n=r.c_ms.count())
    a = a.left_join(repeated, a.attempt_id == repeated.r_id).drop("r_id")
    a = a.mutate(contact=a._contact_ms.notnull(),
                 repeat_contact=ibis.ifelse(a._contact_ms.notnull(), a.r_n.notnull(), None))
    return a.drop("_end_ms", "_start_ms", "_contact_ms", "e_ms", "e_channel", "r_n",
                  "escalation_ms", "repeat_ms")
