"""Survey answers as the engine reads them: from the survey events, one answer per
display and question, each linked to the attempt it speaks of; and customer texts.

A survey travels as ordinary events (docs/surveys.md, "Survey events"), so ingest, the
collector, consent, scrubbing, erasure, the lake and Spark carry it like any other:

* ``survey_shown`` — a display: ``survey``, ``display`` (its id), ``attempt``, ``control``
  (shown to the control sample, whatever the outcome);
* ``survey_response`` — one answer: ``survey``, ``display``, ``question``, ``answer``,
  ``attempt``, ``final`` (the last answer the person gave in that display);
* ``survey_dismissed`` — a display closed without finishing: ``survey``, ``display``.

An answer counts once per (survey, display, question): the first one stored, so a
partial answer sent again, or a client that retries with new event ids, is never counted
twice. An answer without a display is its own display (its event id).

Linking (docs/surveys.md, "Linking answers to attempts"): an answer links to the attempt
it names (``attempt``) when that attempt is the person's, of the survey's moment, started
before the answer and ended within the survey's ``link_within`` before it; otherwise to the
latest such attempt; otherwise to none.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
from ibis.expr.types import Table

from .backend import epoch_ms, json_text

SHOWN, RESPONSE, DISMISSED = "survey_shown", "survey_response", "survey_dismissed"
#: The event names a survey travels as.
SURVEY_EVENTS = (SHOWN, RESPONSE, DISMISSED)
#: The event a customer text travels as (search queries, chat messages, agent notes...).
TEXT = "customer_text"

__all__ = ["DISMISSED", "RESPONSE", "SHOWN", "SURVEY_EVENTS", "TEXT", "answers", "displays", "linked",
           "texts"]


def _survey_rows(events: Table, name: str) -> Table:
    e = events.filter(events.event == name)
    props = e.properties
    return e.mutate(survey=json_text(props, "survey"),
                    display=ibis.coalesce(json_text(props, "display"), e.event_id))


def answers(events: Table, surveys: Sequence[str]) -> Table:
    """One row per (survey, display, question) of the named ``surveys``: the first answer
    stored (lowest ``seq``) with its person, time, channel and properties. ``events`` are
    the events with their ``person``."""
    r = _survey_rows(events, RESPONSE)
    props = r.properties
    r = r.mutate(question=json_text(props, "question"), answer=json_text(props, "answer"),
                 given_attempt=json_text(props, "attempt"),
                 final=json_text(props, "final").lower().isin(("true", "1")).fill_null(False))
    r = r.filter(r.survey.isin(list(surveys)) & r.question.notnull() & r.answer.notnull()
                 & (r.answer != ""))
    first = ibis.row_number().over(group_by=[r.survey, r.display, r.question], order_by=r.seq)
    r = r.mutate(_first=first)
    return r.filter(r._first == 0).drop("_first")


def displays(events: Table, surveys: Sequence[str]) -> Table:
    """The displays of the named ``surveys``: one row per (survey, display) shown, with
    whether it went to the control sample and whether it was dismissed."""
    shown = _survey_rows(events, SHOWN)
    shown = shown.filter(shown.survey.isin(list(surveys)))
    control = json_text(shown.properties, "control").lower().isin(("true", "1")).fill_null(False)
    shown = shown.group_by([shown.survey, shown.display]).aggregate(
        shown_ts=shown.timestamp.min(), channel=shown.channel.first(),
        control=control.cast("int64").max())
    gone = _survey_rows(events, DISMISSED)
    gone = gone.group_by([gone.survey, gone.display]).aggregate(dismissed_n=gone.count())
    j = shown.left_join(gone, [shown.survey == gone.survey, shown.display == gone.display])
    return j.select(survey=j.survey, display=j.display, shown_ts=j.shown_ts, channel=j.channel,
                    control=j.control == 1, dismissed=j.dismissed_n.notnull())


def linked(rows: Table, attempts: Table, links: Table) -> Table:
    """``rows`` (answers, :func:`answers`) with the attempt each links to (module doc):
    ``attempt_id`` (NULL when none) and the attempt's columns prefixed ``a_``. ``links``:
    per survey its ``moment`` (NULL: of no moment) and ``link_ms``."""
    r = rows.inner_join(links, rows.survey == links.link_survey).drop("link_survey")
    r = r.mutate(_ts_ms=epoch_ms(r.timestamp))
    a = attempts.select(
        attempt_id=attempts.attempt_id, _a_person=attempts.person, _a_moment=attempts.moment,
        _a_start=epoch_ms(attempts.start_ts), _a_end=epoch_ms(attempts.end_ts),
        a_outcome=attempts.outcome, a_channel=attempts.channel,
        a_furthest_step=attempts.furthest_step, a_escalated=attempts.escalated,
        a_properties=attempts.properties, a_context=attempts.context)
    j = r.left_join(a, [r.person == a._a_person, r.link_moment == a._a_moment,
                        a._a_start <= r._ts_ms, r._ts_ms - a._a_end <= r.link_ms])
    named = ibis.ifelse(j.attempt_id == j.given_attempt, 1, 0)
    best = ibis.row_number().over(group_by=j.event_id,
                                  order_by=[ibis.desc(named), ibis.desc(j._a_start)])
    j = j.mutate(_best=best)
    return j.filter(j._best == 0).drop("_best", "_ts_ms", "_a_person", "_a_moment", "_a_start",
                                       "_a_end")


def texts(events: Table) -> Table:
    """Customer texts (``customer_text`` events, docs/intents.md) with their ``text``,
    ``source`` and ``text_id``, in a fixed order (time, then event id) so that every engine
    hands the same texts to the clustering in the same order."""
    t = events.filter(events.event == TEXT)
    props = t.properties
    t = t.mutate(text=json_text(props, "text"), source=json_text(props, "source"),
                 text_id=json_text(props, "text_id"))
    return t.filter(t.text.notnull() & (t.text != "")).order_by([t.timestamp, t.event_id])
