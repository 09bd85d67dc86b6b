"""The value at stake's sufficient statistics: per moment, each distinct pattern of a
person's tallies and how many persons have it (docs/value.md).

A bootstrap over persons needs each person's tallies, not the attempts: the value at stake
is made of sums over persons (attempts, finished and failed attempts, avoidable contacts)
and of counts of persons (retained or not, by how their first attempt ended). Persons with
the same tallies are interchangeable in a resample, so the engine groups them: one row per
(moment, pattern) with ``persons``, how many have it. Resampling persons with replacement
is then drawing how many of each pattern from a multinomial (:mod:`microjourney.analysis.value`),
exact, not an approximation. The rows are few (tallies are small integers, and most
persons share a handful of patterns) and bounded by the persons, whatever the data.

Per person and moment, over the attempts given (the filters already applied):

* ``attempts``, ``finished`` (attempts − in progress), ``failed``;
* ``avoidable``: the distinct assisted contacts the person's attempts name that a working
  moment would have spared: the contact each escalated attempt led to (its escalation: the
  escalate event ending it, or the first contact after a failed or abandoned self-service
  attempt), and each contact (the attempt's own, or the one it led to) that another contact
  about the moment followed within the repeat-contact window (standing for that later
  contact). A contact is named by its instant, so two failed attempts escalated into the
  same chat count it once, as do a failed web attempt and the chat attempt it led to;
* ``first``: how the person's first finished attempt of the moment ended (``completed``,
  ``failed``, ``other`` for abandoned or escalated; NULL when none finished);
* ``returned``: for a first attempt that completed or failed and whose retention window is
  over by the end of the data, whether the person came back: some event after the attempt's
  aftermath (``after_ms`` after its end: the moment's escalation window, in which a retry, a
  help page or a contact is the attempt's own sequel) and at most ``retention_ms`` after its
  end, that is not a survey event and not in e-mail or SMS (which may be the company's own
  messages). Any other event counts, a later attempt of this moment or another included.
  NULL when the window is not over (or for other outcomes).
"""

from __future__ import annotations

import ibis
from ibis.expr.types import Table

from .backend import epoch_ms
from .surveys import SURVEY_EVENTS

#: Channels whose events may be the company's (notices, codes, receipts): not a return.
SENT = ("email", "sms")
#: The tallies of a pattern, in the order of its columns.
TALLIES = ("attempts", "finished", "failed", "avoidable", "first", "returned")


def contact_instants(a: Table) -> Table:
    """``a`` (attempts with their contact columns) with ``esc_ms``, the instant of the
    contact an escalated attempt led to, and ``rep_ms``, the instant of the contact followed
    by a repeat contact (NULL otherwise). As ``with_contacts`` sets them: a contact attempt's
    own contact is its start; a self-service attempt's is its escalate event (its end) or the
    first contact after it (end + escalation delay, exact in ms)."""
    end_ms = epoch_ms(a.end_ts)
    led_to = end_ms + (a.escalation_delay_s * 1000).round().cast("int64")
    own = ibis.ifelse(a.self_service, led_to, epoch_ms(a.start_ts))
    return a.mutate(
        esc_ms=ibis.ifelse(a.escalated, led_to, ibis.null("int64")),
        rep_ms=ibis.ifelse(a.repeat_contact.fill_null(False), own, ibis.null("int64")),
    )


def person_patterns(attempts: Table, timeline: Table, windows: Table, as_of_ms: int) -> Table:
    """Per moment, each distinct pattern of :data:`TALLIES` and the ``persons`` with it.

    ``attempts``: the attempts that count (filtered); ``timeline``: every event (person,
    event, channel, t_ms); ``windows``: per moment (``w_moment``), in ms after the attempt's
    end, where its retention window begins (``after_ms``) and ends (``retention_ms``);
    ``as_of_ms``: the end of the data."""
    a = contact_instants(attempts)
    a = a.mutate(done=(a.outcome != "in_progress"), end_ms=epoch_ms(a.end_ts),
                 start_ms=epoch_ms(a.start_ts))
    per = a.group_by(["person", "moment"]).aggregate(
        attempts=a.count(),
        finished=a.done.cast("int64").sum(),
        failed=(a.outcome == "failed").cast("int64").sum(),
        avoidable=(a.esc_ms.nunique() + a.rep_ms.nunique()).cast("int64"),
    )

    # The person's first finished attempt of the moment (attempts of one person and moment
    # never start at the same instant; the id breaks a tie all the same).
    f = a.filter(a.done)
    w = ibis.window(group_by=[f.person, f.moment], order_by=[f.start_ms, f.attempt_id])
    f = f.mutate(rn=ibis.row_number().over(w))
    f = f.filter(f.rn == 0)
    f = f.inner_join(windows, f.moment == windows.w_moment)
    f = f.select(f_person=f.person, f_moment=f.moment,
                 first=ibis.ifelse(f.outcome.isin(["completed", "failed"]), f.outcome, "other"),
                 watched=(f.outcome.isin(["completed", "failed"])
                          & (f.end_ms + f.retention_ms <= as_of_ms)
                          & (f.retention_ms > f.after_ms)),
                 f_from=f.end_ms + f.after_ms, f_until=f.end_ms + f.retention_ms)

    # Came back: a qualifying event after the attempt's aftermath, within its window.
    q = timeline.filter(~timeline.event.isin(list(SURVEY_EVENTS)) & ~timeline.channel.isin(list(SENT)))
    q = q.select(q_person=q.person, q_ms=q.t_ms)
    watched = f.filter(f.watched)
    j = watched.inner_join(q, [watched.f_person == q.q_person, q.q_ms > watched.f_from,
                               q.q_ms <= watched.f_until])
    back = j.select(b_person=j.f_person, b_moment=j.f_moment).distinct()
    f = f.left_join(back, [f.f_person == back.b_person, f.f_moment == back.b_moment])
    f = f.mutate(returned=ibis.ifelse(f.watched, f.b_person.notnull(), ibis.null("boolean")))
    f = f.select("f_person", "f_moment", "first", "returned")

    t = per.left_join(f, [per.person == f.f_person, per.moment == f.f_moment])
    return t.group_by(["moment", *TALLIES]).aggregate(persons=t.count())


__all__ = ["SENT", "TALLIES", "contact_instants", "person_patterns"]
