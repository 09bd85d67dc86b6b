"""What followed each intervention decision, for measuring a rule against its holdout
(docs/interventions.md, "Measured against the holdout").

The server stores each decision as an event: ``intervention_offered``, or
``intervention_held`` for a person in the rule's holdout (never shown anything). A person's
**first** decision of a rule is the unit (later ones would count the same person again);
what follows it within ``within`` is read from the attempts: whether the person completed
the rule's moment (an attempt of it that ended completed after the decision), and whether
they contacted an assisted channel (an attempt that is a contact, started after it),
whether such a contact was repeated (another contact about the moment followed it), and
whether an attempt of the moment ended escalated after it. From the survey answers linked
to the moment's attempts, :func:`answered` sums each person's CSAT and CES answers given in
that time, as the experiments sum them (:mod:`.experiments`): only sufficient statistics
leave the engine.
"""

from __future__ import annotations

from datetime import timedelta

import ibis
from ibis.expr.types import Table

from .backend import json_text

OFFERED, HELD = "intervention_offered", "intervention_held"

__all__ = ["HELD", "OFFERED", "answered", "decisions", "followed"]


def decisions(offered: Table, held: Table) -> Table:
    """Per (rule, person): the first decision's time ``t``, ``held`` (1: in the holdout) and
    the ``moment`` the rule watches (as the decision event names it). ``offered`` and
    ``held``: the decision events with their ``person``."""
    cols = ["person", "timestamp", "properties"]
    e = offered.select(*cols).mutate(_held=ibis.literal(0)).union(
        held.select(*cols).mutate(_held=ibis.literal(1)))
    e = e.mutate(rule=json_text(e.properties, "intervention"), _m=json_text(e.properties, "moment"))
    e = e.filter(e.rule.notnull() & e.person.notnull())
    return e.group_by(["rule", "person"]).aggregate(t=e.timestamp.min(), held=e._held.max(),
                                                    moment=e._m.min())


def _window(within_hours: float) -> ibis.Value:
    return ibis.interval(seconds=int(timedelta(hours=within_hours).total_seconds()))


def followed(units: Table, attempts: Table, within_hours: float) -> Table:
    """Per (rule, held): the decision ``units`` (persons), how many of them ``completed``
    the rule's moment and ``contacted`` an assisted channel within ``within_hours`` after
    their decision, how many started a contact that was followed by another (``repeated``,
    the attempts' ``repeat_contact``) in that time, how many had an attempt of the moment
    that ended in that time ``escalated`` (its outcome, or the attempts' ``escalated`` flag,
    as the experiments' ``escalation_rate`` reads it), and the ``first`` and ``last`` of
    those decisions."""
    window = _window(within_hours)
    a = attempts.select(a_person="person", a_moment="moment", a_start="start_ts", a_end="end_ts",
                        a_done=(attempts.outcome == "completed"), a_contact=attempts.contact.fill_null(False),
                        a_repeat=attempts.repeat_contact.fill_null(False),
                        a_escalated=(attempts.outcome == "escalated") | attempts.escalated.fill_null(False))
    j = units.left_join(a, units.person == a.a_person)
    ended = (j.a_moment == j.moment) & (j.a_end > j.t) & (j.a_end <= j.t + window)
    after = (j.a_start > j.t) & (j.a_start <= j.t + window)
    contact = j.a_contact & after
    repeat = j.a_repeat & after
    per = j.group_by(["rule", "person", "held", "t"]).aggregate(
        completed=(j.a_done & ended).fill_null(False).cast("int64").max(),
        contacted=contact.fill_null(False).cast("int64").max(),
        repeated=repeat.fill_null(False).cast("int64").max(),
        escalated=(j.a_escalated & ended).fill_null(False).cast("int64").max())
    return per.group_by(["rule", "held"]).aggregate(units=per.count(), completed=per.completed.sum(),
                                                    contacted=per.contacted.sum(),
                                                    repeated=per.repeated.sum(),
                                                    escalated=per.escalated.sum(), first=per.t.min(),
                                                    last=per.t.max())


def answered(units: Table, answers: Table, within_hours: float) -> Table:
    """Per (rule, held, ``kind``: ``csat`` or ``ces``) the sums over the decision ``units``
    (persons) of their survey answers linked to an attempt of the rule's moment and given
    within ``within_hours`` after their decision. ``answers``: as
    :func:`~microjourney.engine.experiments.scored_answers` gives them. Per person a ratio, as
    an experiment's survey metric: ``num`` the satisfied CSAT answers (csat) or the sum of the
    CES answers (ces), ``den`` the answers of the kind; the columns are the persons with such
    an answer (``units``) and the sums of ``num``, ``den``, their squares (``num2``,
    ``den2``) and their product (``numden``), the delta method's inputs."""
    window = _window(within_hours)
    s = answers.filter(answers.attempt_id.notnull() & answers.kind.isin(["csat", "ces"]))
    s = s.select(s_person=s.person, s_moment=s.moment, kind=s.kind, s_ts=s.answered_ts,
                 s_num=ibis.ifelse(s.kind == "csat", s.satisfied.cast("float64"), s.value))
    j = units.inner_join(s, [units.person == s.s_person, units.moment == s.s_moment,
                             s.s_ts > units.t, s.s_ts <= units.t + window])
    per = j.group_by(["rule", "held", "person", "kind"]).aggregate(
        num=j.s_num.sum(), den=j.count().cast("float64"))
    return per.group_by(["rule", "held", "kind"]).aggregate(
        units=per.count(), num=per.num.sum(), den=per.den.sum(), num2=(per.num * per.num).sum(),
        den2=(per.den * per.den).sum(), numden=(per.num * per.den).sum())
