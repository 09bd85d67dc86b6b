"""Survey answers linked to attempts, and the survey-scores analysis, against hand-worked
values on a small workspace (docs/surveys.md)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from microjourney.errors import QueryError
from microjourney.spec import KINDS

from .helpers import PAYMENT_YAML, ev, workspace_of

OFF = "\n".join(f"  {k}: {{enabled: false}}" for k in KINDS if k != "error_shown")
YAML = PAYMENT_YAML + f"""\
frictions:
{OFF}
surveys:
  - name: pay_csat
    moment: card_payment
    trigger: {{outcomes: [completed, failed]}}
    questions:
      - {{id: ease, type: csat, text: How easy was paying?}}
      - {{id: nps, type: nps, text: Would you recommend us?, required: false}}
      - {{id: why, type: text, text: Why?, required: false}}
    control: 10
  - name: relationship
    questions:
      - {{id: nps, type: nps, text: Would you recommend us?}}
"""


def shown(t, who, display, **props):
    return ev(t, "survey_shown", who, event_id=f"show-{display}",
              properties={"survey": "pay_csat", "display": display, **props})


def answer(t, who, display, question, value, final=False, **props):
    return ev(t, "survey_response", who, event_id=f"{display}-{question}-{t}",
              properties={"survey": "pay_csat", "display": display, "question": question,
                          "answer": value, "final": final, **props})


def events():
    return [
        # u1 completes and answers 5 and 10; later a second 'ease' for the same display
        # (a client retrying with a new id) must not count.
        ev("10:00:00", "checkout_payment_opened", "u1"), ev("10:00:20", "payment_succeeded", "u1"),
        shown("10:00:25", "u1", "d1"), answer("10:00:30", "u1", "d1", "ease", 5),
        answer("10:00:35", "u1", "d1", "nps", 10, final=True),
        answer("10:00:40", "u1", "d1", "ease", 1),
        ev("11:00:00", "checkout_payment_opened", "u2"), ev("11:00:30", "payment_succeeded", "u2"),
        shown("11:00:31", "u2", "d2"), answer("11:00:35", "u2", "d2", "ease", 4),
        answer("11:00:36", "u2", "d2", "nps", 7, final=True),
        # u3 fails after an error message (a friction), asked as the control sample.
        ev("12:00:00", "checkout_payment_opened", "u3"), ev("12:00:05", "error_shown", "u3"),
        ev("12:00:10", "payment_failed", "u3"),
        shown("12:00:11", "u3", "d3", control=True), answer("12:00:15", "u3", "d3", "ease", 1),
        answer("12:00:16", "u3", "d3", "nps", 2, final=True),
        # u4 fails and dismisses the survey.
        ev("13:00:00", "checkout_payment_opened", "u4"), ev("13:00:10", "payment_failed", "u4"),
        shown("13:00:11", "u4", "d8"),
        ev("13:00:12", "survey_dismissed", "u4", properties={"survey": "pay_csat", "display": "d8"}),
        # u5 pays twice; an answer naming the first attempt links to it, one naming none to
        # the latest; the first is partial (no final answer).
        ev("14:00:00", "checkout_payment_opened", "u5", event_id="u5-a"),
        ev("14:00:20", "payment_succeeded", "u5"),
        ev("15:00:00", "checkout_payment_opened", "u5", event_id="u5-b"),
        ev("15:00:20", "payment_succeeded", "u5"),
        shown("15:01:00", "u5", "d5"),
        answer("15:01:05", "u5", "d5", "ease", 2, attempt="card_payment:u5-a"),
        shown("15:02:00", "u5", "d6"), answer("15:02:05", "u5", "d6", "ease", 3, final=True),
        # u6 answers eleven days after paying: past link_within (7 days), linked to nothing.
        ev("16:00:00", "checkout_payment_opened", "u6"), ev("16:00:10", "payment_succeeded", "u6"),
        {**answer("16:00:00", "u6", "d7", "ease", 5, final=True),
         "timestamp": "2024-01-12T16:00:00+00:00"},
        # An answer off the scale is left out with a warning.
        {**answer("17:00:00", "u7", "d9", "ease", 9, final=True)},
    ]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = workspace_of(tmp_path_factory.mktemp("surveys"), YAML, events())
    yield w
    w.close()


def test_each_answer_links_to_its_attempt_by_the_documented_rule(ws):
    a = ws.survey_answers("pay_csat").to_pandas()
    got = {(r.display, r.question): r.attempt_id for r in a.itertuples()}
    assert got[("d1", "ease")] == got[("d1", "nps")] and got[("d1", "ease")].startswith("card_payment:")
    assert got[("d5", "ease")] == "card_payment:u5-a"  # the attempt it names
    assert got[("d6", "ease")] == "card_payment:u5-b"  # the latest before it
    assert pd.isna(got[("d7", "ease")])  # eleven days after: past link_within
    # The first answer per display and question counts: d1's ease is 5, not the later 1.
    first = a[(a.display == "d1") & (a.question == "ease")]
    assert len(first) == 1 and first.answer.iloc[0] == "5"


def test_scores_rates_and_reweighting_by_hand(ws):
    r = ws.analysis("survey-scores", survey="pay_csat")
    s = r.table("scores").set_index("question")
    ease = s.loc["ease"]
    # ease: 5, 4, 1, 2, 3, 5 (the 9 is off the scale) → 3 of 6 satisfied, mean 20/6.
    assert ease.responses == 6 and ease.satisfied == 0.5
    assert ease["mean"] == pytest.approx(20 / 6)
    assert ease.linked_rate == pytest.approx(5 / 6)
    # Reweighted: strata of finished attempts — completed 5 (u1, u2, u5 twice, u6), failed
    # with friction 1 (u3), failed 1 (u4, unanswered: left out, its weight shared).
    # Answers per stratum: completed 5, 4, 2, 3 → 2/4 satisfied; failed with friction
    # 1 → 0. Weights 5/6 and 1/6: 0.5 × 5/6.
    assert ease.satisfied_reweighted == pytest.approx(0.5 * 5 / 6)
    assert math.isnan(ease.nps)
    nps = s.loc["nps"]
    # nps: 10, 7, 2 → one promoter, one detractor of three.
    assert nps.responses == 3 and nps.nps == pytest.approx(0.0)
    assert nps.nps_ci[0] < 0 < nps.nps_ci[1]
    assert "why" not in s.index  # a text question has no score
    codes = {w.code for w in r.warnings}
    assert {"invalid-answers", "stratum-unanswered", "few-units"} <= codes
    rates = r.table("rates").set_index("survey").loc["pay_csat"]
    # Shown: d1 d2 d3 d5 d6 d8; answered of them: 5. Answered in all: d1 d2 d3 d5 d6 d7 d9;
    # d5 has no final answer: 1 of 7 partial.
    assert (rates.displays, rates.answered, rates.control, rates.dismissed) == (6, 5, 1, 1)
    assert rates.response_rate == pytest.approx(5 / 6)
    assert rates.partial_rate == pytest.approx(1 / 7)


def test_breakdowns_by_outcome_and_friction(ws):
    by_outcome = ws.analysis("survey-scores", survey="pay_csat", question="nps", by="outcome")
    t = by_outcome.table("scores").set_index("outcome")
    assert t.loc["completed", "nps"] == pytest.approx(0.5)  # 10 and 7
    assert t.loc["failed", "nps"] == pytest.approx(-1.0)  # 2
    by_friction = ws.analysis("survey-scores", survey="pay_csat", question="ease", by="friction")
    f = by_friction.table("scores").set_index("friction")
    assert f.loc["error_shown", "responses"] == 1 and f.loc["error_shown", "satisfied"] == 0
    assert f.loc["(none)", "responses"] == 4 and f.loc["(unlinked)", "responses"] == 1


def test_wrong_parameters_say_what_is_wrong(ws):
    with pytest.raises(QueryError, match="no survey 'nope'; surveys: pay_csat, relationship"):
        ws.analysis("survey-scores", survey="nope")
    with pytest.raises(QueryError, match="has no question 'x'"):
        ws.analysis("survey-scores", survey="pay_csat", question="x")
