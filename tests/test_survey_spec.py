"""Survey declarations in microjourney.yaml: what a valid one means, and each mistake named
with its file, line and what is wrong."""

from __future__ import annotations

import datetime

import pytest

from microjourney.errors import SpecError
from microjourney.spec.load import parse_workspace

HEAD = """\
journeys:
  - name: j
    moments:
      - {name: pay, start: {event: open}, complete: {event: ok}}
surveys:
"""
GOOD = """\
  - name: payment_csat
    moment: pay
    trigger: {outcomes: [completed, failed], channel: [web, app], delay: 2s}
    questions:
      - {id: ease, type: csat, text: How easy was paying?}
      - {id: why, type: text, text: What made it hard?, when: {question: ease, at_most: 3}}
      - {id: method, type: single, text: How did you pay?, choices: [card, wallet]}
    display: {show: times, times: 3, sample: 25, recontact: 30d, cap: 2000, start: 2026-11-01}
    control: 5
    languages:
      de: {ease: Wie einfach war das Bezahlen?}
survey_cooldown: 7d
"""


def test_a_survey_as_declared():
    ws = parse_workspace(HEAD + GOOD)
    (s,) = ws.surveys
    assert (s.name, s.moment, s.trigger.outcomes, s.trigger.channel, s.trigger.delay) == (
        "payment_csat", "pay", ("completed", "failed"), ("web", "app"), 2.0)
    assert [q.id for q in s.questions] == ["ease", "why", "method"]
    assert [q.id for q in s.scored] == ["ease"]
    assert s.questions[1].when.at_most == 3 and s.questions[2].choices == ("card", "wallet")
    d = s.display
    assert (d.show, d.times, d.sample, d.recontact, d.cap, d.start, d.end) == (
        "times", 3, 25.0, 30 * 86400.0, 2000, datetime.date(2026, 11, 1), None)
    assert s.control == 5.0 and s.languages == {"de": {"ease": "Wie einfach war das Bezahlen?"}}
    assert ws.survey_cooldown == 7 * 86400.0
    # The defaults: every outcome, any channel, shown once to everyone.
    bare = parse_workspace(HEAD + "  - {name: s, moment: pay, "
                                  "questions: [{id: q, type: nps, text: Recommend?}]}\n")
    assert bare.surveys[0].trigger.outcomes == ("completed", "failed", "abandoned", "escalated")
    assert (bare.surveys[0].display.show, bare.surveys[0].display.sample) == ("once", 100.0)


#: (text changed, to what, where the mistake is shown, what is said).
MISTAKES = [
    ("moment: pay", "moment: payy", "7:13",
     "survey 'payment_csat' is of moment 'payy', which is not defined; moments: pay"),
    ("at_most: 3", "at_most: 9", "6:5", "question 'why': 9 is outside 'ease''s csat scale (1–5)"),
    ("question: ease", "question: method", "6:5",
     "question 'why' follows up 'method', which is not an earlier question"),
    ("{id: ease, type: csat, text: How easy was paying?}", "{id: ease, type: text, text: How was it?}",
     "6:5", "question 'why' follows up 'ease', a text question: only scored questions"),
    ("choices: [card, wallet]", "choices: [card]", "12:9",
     "a single choice question needs at least two choices"),
    ("type: csat, text: How", "type: csat, choices: [a, b], text: How", "10:9",
     "a csat question has no choices"),
    ("{id: method,", "{id: ease,", "6:5", "question id 'ease' is used twice"),
    ("de: {ease:", "deutsch-lang-x: {ease:", "6:5", "language 'deutsch-lang-x' is not a language tag"),
    ("de: {ease:", "de: {speed:", "6:5", "language 'de' translates 'speed', which is not a question"),
    ("show: times, times: 3,", "show: times,", "13:5", "show: times needs `times`"),
    ("start: 2026-11-01", "start: 2026-11-01, end: 2026-10-01", "13:5",
     "start 2026-11-01 is after end 2026-10-01"),
    ("outcomes: [completed, failed]", "outcomes: [completed, lost]", "8:37",
     "Input should be 'completed', 'failed', 'abandoned' or 'escalated'"),
    ("channel: [web, app]", "channel: [web, fax]", "8:46", "unknown channel 'fax'"),
    ("sample: 25", "sample: 0", "13:46", "Input should be greater than 0 (surveys[0].display.sample)"),
    ("control: 5", "contrl: 5", "14:5", "unknown key 'contrl'"),
]


@pytest.mark.parametrize(("old", "new", "where", "message"), MISTAKES)
def test_each_mistake_is_named_with_its_line(old, new, where, message):
    text = (HEAD + GOOD).replace(old, new)
    assert text != HEAD + GOOD, old
    with pytest.raises(SpecError) as err:
        parse_workspace(text, file="microjourney.yaml")
    shown = str(err.value)
    assert f"microjourney.yaml:{where}:" in shown and message in shown, shown


def test_a_survey_name_twice():
    one = GOOD.replace("survey_cooldown: 7d\n", "")
    with pytest.raises(SpecError, match=r"microjourney.yaml:17:11: survey 'payment_csat' is defined twice"):
        parse_workspace(HEAD + one + one, file="microjourney.yaml")
