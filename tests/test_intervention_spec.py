"""Intervention rules in microjourney.yaml: what a valid one means, and each mistake named
with its file, line and what is wrong (docs/interventions.md, docs/workspace.md)."""

from __future__ import annotations

import datetime

import pytest

from microjourney.errors import SpecError
from microjourney.spec.load import parse_workspace

HEAD = """\
journeys:
  - name: j
    moments:
      - {name: pay, start: {event: open}, complete: {event: ok}, fail: {event: bad}}
      - {name: ship, start: {event: ship_open}, steps: [{event: label, sla: 2m}], complete: {event: shipped}}
surveys:
  - {name: pay_csat, moment: pay, questions: [{id: q, type: csat, text: Easy?}]}
interventions:
"""
GOOD = """\
  - name: pay_help
    moment: pay
    when: {signal: failure, count: 2, seconds: 30m}
    offer: help
    text: Card declined twice? Check its expiry date.
    languages: {de: Karte zweimal abgelehnt?}
    channels: [web, app]
    cap: {person: 2, within: 7d, moment_day: 500}
    quiet_hours: "22:00-07:00"
    holdout: 10
    start: 2026-01-01
  - name: ship_wait
    moment: ship
    when: {signal: waiting}
    offer: webhook
    webhooks: [{url: https://hooks.example.com/cx, secret_env: CX_SECRET}]
intervention_persons: 5000
"""


def test_a_rule_as_declared():
    ws = parse_workspace(HEAD + GOOD)
    help_, wait = ws.interventions
    assert (help_.name, help_.moment, help_.offer, help_.when.signal) == (
        "pay_help", "pay", "help", "failure")
    assert (help_.when.threshold, help_.when.window, help_.when.names) == (2, 1800.0, ())
    assert help_.channels == ("web", "app") and help_.holdout == 10.0
    assert (help_.cap.person, help_.cap.within, help_.cap.moment_day) == (2, 7 * 86400.0, 500)
    assert help_.start == datetime.date(2026, 1, 1) and help_.end is None
    assert help_.texts("de-AT") == ("de", "Karte zweimal abgelehnt?")
    assert help_.texts("fr") == (None, "Card declined twice? Check its expiry date.")
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert help_.quiet(at.replace(hour=23)) and help_.quiet(at.replace(hour=6, minute=59))
    assert not help_.quiet(at.replace(hour=7)) and not help_.quiet(at.replace(hour=21, minute=59))
    assert wait.when.window is None and wait.webhooks[0].secret_env == "CX_SECRET"
    assert ws.intervention_persons == 5000
    # The defaults: one per person a day, no moment cap, no holdout; each signal's own.
    bare = parse_workspace(HEAD + "  - {name: r, moment: pay, when: {signal: rage_click}, offer: chat, "
                                  "text: Need a hand?}\n")
    (r,) = bare.interventions
    assert (r.cap.person, r.cap.within, r.cap.moment_day, r.holdout) == (1, 86400.0, None, 0.0)
    assert (r.when.names, r.when.threshold, r.when.window) == (("click",), 3, 1.0)
    assert bare.intervention_persons == 100_000


#: (text changed, to what, where the mistake is shown, what is said).
MISTAKES = [
    ("moment: pay\n", "moment: payy\n", "10:13",
     "intervention 'pay_help' is of moment 'payy', which is not defined; moments: pay, ship"),
    ("signal: failure", "signal: anger", "11:20", "signal: Input should be 'failure'"),
    ("offer: help", "offer: hug", "12:12", "offer: Input should be 'help', 'chat'"),
    ("    text: Card declined twice? Check its expiry date.\n", "", "9:5",
     "a help offer needs its `text`"),
    ("count: 2, seconds: 30m}", "count: 2, events: [x]}", "11:5", "signal failure takes no `events`"),
    ("channels: [web, app]", "channels: [web, fax]", "15:5", "unknown channel 'fax'"),
    ('quiet_hours: "22:00-07:00"', 'quiet_hours: "late"', "17:18", "quiet_hours 'late': write UTC times"),
    ("holdout: 10", "holdout: 100", "18:14", "Input should be less than 100"),
    ("start: 2026-01-01", "start: 2026-01-01\n    end: 2025-01-01", "9:5",
     "start 2026-01-01 is after end 2025-01-01"),
    ("moment_day: 500", "moment_day: 0", "16:46", "greater than or equal to 1"),
    ("de: Karte", "deutsch-lang-x: Karte", "9:5", "language 'deutsch-lang-x' is not a language tag"),
    ("when: {signal: waiting}", "when: {signal: waiting, count: 3}", "22:5",
     "signal waiting takes no `count`"),
    ("offer: webhook", "offer: survey", "20:5", "`survey` names the survey of a survey offer"),
    ("holdout: 10", "holdot: 10", "18:5", "unknown key 'holdot'"),
]


@pytest.mark.parametrize(("old", "new", "where", "message"), MISTAKES)
def test_each_mistake_is_named_with_its_line(old, new, where, message):
    text = (HEAD + GOOD).replace(old, new, 1)
    assert text != HEAD + GOOD, old
    with pytest.raises(SpecError) as err:
        parse_workspace(text, file="microjourney.yaml")
    shown = str(err.value)
    assert f"microjourney.yaml:{where}:" in shown and message in shown, shown


def test_references_to_the_workspace():
    # A survey offer names a declared survey; a wait needs an sla (the moment's, a step's) or
    # seconds; a name is used once.
    survey = "  - {name: s, moment: pay, when: {signal: error_shown}, offer: survey, survey: nps}\n"
    with pytest.raises(SpecError, match=r"microjourney.yaml:9:\d+: intervention 's' offers survey "
                                        r"'nps', which is not defined; surveys: pay_csat"):
        parse_workspace(HEAD + survey, file="microjourney.yaml")
    assert parse_workspace(HEAD + survey.replace("nps}", "pay_csat}")).interventions[0].survey == "pay_csat"
    wait = "  - {name: w, moment: pay, when: {signal: waiting}, offer: chat, text: Stuck?}\n"
    with pytest.raises(SpecError, match="intervention 'w' waits on moment 'pay', which declares no sla"):
        parse_workspace(HEAD + wait, file="microjourney.yaml")
    assert parse_workspace(HEAD + wait.replace("waiting}", "waiting, seconds: 45s}")
                           ).interventions[0].when.window == 45.0
    with pytest.raises(SpecError, match=r"microjourney.yaml:10:\d+: intervention 'w' is defined twice"):
        parse_workspace(HEAD + wait.replace("waiting}", "waiting, seconds: 1m}") * 2,
                        file="microjourney.yaml")
    with pytest.raises(SpecError, match="signal uncertainty needs `events`"):
        parse_workspace(HEAD + "  - {name: u, moment: pay, when: {signal: uncertainty}, offer: callback, "
                               "text: Call you?}\n")
