"""The survey metrics of experiments, ``csat`` and ``ces``, over the answers linked to the
exposed persons' attempts after exposure, persons as the units (docs/experiments.md, "Survey
metrics"); and the daily survey sums of the engine (``daily_surveys``)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import ibis
import pandas as pd
import pyarrow as pa
import pytest
from scipy.stats import t as student

import microjourney as mj
from microjourney.engine.daily import daily_surveys
from microjourney.engine.experiments import scored_answers
from microjourney.fmt import cell, lower_is_better
from microjourney.registry import get
from microjourney.registry.experiment import survey_questions
from microjourney.spec.experiments import METRICS, SURVEY_METRICS

from .helpers import PAYMENT_YAML, ev, workspace_of, write_events

YAML = PAYMENT_YAML + """\
surveys:
  - name: pay_survey
    moment: card_payment
    questions:
      - {id: sat, type: csat, text: How satisfied are you?}
      - {id: effort, type: ces, text: How easy was it?, required: false}
  - name: pay_ease
    moment: card_payment
    questions:
      - {id: ease, type: ces, text: How easy was paying?}
experiments:
  - name: calm_copy
    moment: card_payment
    variants: [{name: control}, {name: calm}]
    metric: csat
    secondary: [ces]
    guardrails: [failure_rate]
  - name: reverse
    moment: card_payment
    variants: [{name: easy}, {name: hard}]
    metric: csat
    guardrails: [ces]
  - name: quiet
    moment: card_payment
    variants: [{name: control}, {name: quiet}]
    metric: ces
    guardrails: [failure_rate]
"""
BARE_YAML = PAYMENT_YAML + """\
experiments:
  - name: bare
    moment: card_payment
    variants: [{name: control}, {name: other}]
    metric: csat
    secondary: [ces]
    guardrails: [failure_rate]
"""

#: Per person of calm_copy: their attempts after exposure (hour, completed) and each
#: attempt's answers (survey, question, answer). c5 answers nothing: no unit of csat or ces.
#: c1 and t1 answer after two attempts each (one unit each, two answers); t3's CES answer
#: comes from the second survey of the moment.
PEOPLE = {
    "control": {
        "c1": [(10, True, [("pay_survey", "sat", 5), ("pay_survey", "effort", 2)]),
               (11, False, [("pay_survey", "sat", 2), ("pay_survey", "effort", 3)])],
        "c2": [(10, True, [("pay_survey", "sat", 4), ("pay_survey", "effort", 3)])],
        "c3": [(10, False, [("pay_survey", "sat", 1), ("pay_survey", "effort", 2)])],
        "c4": [(10, True, [("pay_survey", "sat", 3), ("pay_survey", "effort", 2)])],
        "c5": [(10, True, [])],
    },
    "calm": {
        "t1": [(10, True, [("pay_survey", "sat", 5), ("pay_survey", "effort", 6)]),
               (11, True, [("pay_survey", "sat", 4), ("pay_survey", "effort", 7)])],
        "t2": [(10, True, [("pay_survey", "sat", 4), ("pay_survey", "effort", 6)])],
        "t3": [(10, True, [("pay_survey", "sat", 5), ("pay_ease", "ease", 7)])],
        "t4": [(10, False, [("pay_survey", "sat", 2), ("pay_survey", "effort", 6)])],
    },
}


def exposure(who: str, experiment: str, variant: str, t: str = "09:00:00") -> dict:
    return ev(t, "experiment_exposure", who, event_id=f"x-{experiment}-{who}-{t}",
              properties={"experiment": experiment, "variant": variant})


def answer(t: str, who: str, display: str, survey: str, question: str, value: int) -> dict:
    return ev(t, "survey_response", who, event_id=f"{display}-{question}",
              properties={"survey": survey, "display": display, "question": question,
                          "answer": value})


def attempt(hour: int, who: str, ok: bool, said: list[tuple[str, str, int]]) -> list[dict]:
    """An attempt started at ``hour`` and ended 30 s later, answered a minute after it
    started (the answers link to it: the person's latest attempt started before them)."""
    rows = [ev(f"{hour:02d}:00:00", "checkout_payment_opened", who),
            ev(f"{hour:02d}:00:30", "payment_succeeded" if ok else "payment_failed", who)]
    return rows + [answer(f"{hour:02d}:01:00", who, f"{who}-{hour}", *a) for a in said]


def events() -> list[dict]:
    rows = []
    for variant, people in PEOPLE.items():
        for who, attempts in people.items():
            rows.append(exposure(who, "calm_copy", variant))
            # reverse: the same persons, the calm ones as its control.
            rows.append(exposure(who, "reverse", "easy" if variant == "calm" else "hard"))
            for hour, ok, said in attempts:
                rows += attempt(hour, who, ok, said)
    # c2 answered 1 after an attempt before exposure: not counted, but their CUPED covariate.
    rows += attempt(8, "c2", True, [("pay_survey", "sat", 1)])
    # An answer off the scale is left out; one 19 days later links to no attempt.
    rows.append(answer("10:02:00", "c3", "c3-x", "pay_survey", "sat", 9))
    rows.append({**answer("10:00:00", "t2", "t2-late", "pay_survey", "sat", 1),
                 "timestamp": "2024-01-20T10:00:00+00:00"})
    # m1 saw both variants: left out of calm_copy.
    rows += [exposure("m1", "calm_copy", "control"), exposure("m1", "calm_copy", "calm", "09:30:00"),
             *attempt(10, "m1", True, [("pay_survey", "sat", 5), ("pay_survey", "effort", 7)])]
    # quiet: four persons who attempt and answer nothing.
    for i, variant in enumerate(("control", "control", "quiet", "quiet")):
        rows += [exposure(f"q{i}", "quiet", variant), *attempt(10, f"q{i}", True, [])]
    return rows


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    w = workspace_of(tmp_path_factory.mktemp("experiment_surveys"), YAML, events())
    yield w
    w.close()


def by_hand(units: list[tuple[float, float]]) -> tuple[int, float, float]:
    """Units, Σnum ÷ Σden and the delta method's variance of one unit, from each person's
    (numerator, denominator), with sample (n − 1) variances."""
    n = len(units)
    mm = sum(m for m, _ in units) / n
    md = sum(d for _, d in units) / n
    vm = sum((m - mm) ** 2 for m, _ in units) / (n - 1)
    vd = sum((d - md) ** 2 for _, d in units) / (n - 1)
    c = sum((m - mm) * (d - md) for m, d in units) / (n - 1)
    return n, mm / md, vm / md**2 + vd * mm**2 / md**4 - 2 * c * mm / md**3


def lift_by_hand(control: list[tuple[float, float]], treatment: list[tuple[float, float]],
                 ) -> tuple[float, float, tuple[float, float], float]:
    """The lift, its delta-method variance, its 95% Welch interval and p."""
    na, ra, va = by_hand(control)
    nb, rb, vb = by_hand(treatment)
    sa, sb = va / na, vb / nb
    lift = (rb - ra) / ra
    var = sb / ra**2 + sa * rb**2 / ra**4
    df = (sa + sb) ** 2 / (sa**2 / (na - 1) + sb**2 / (nb - 1))
    half = student.ppf(0.975, df) * math.sqrt(var)
    return lift, var, (lift - half, lift + half), 2 * student.sf(abs(lift) / math.sqrt(var), df)


def test_csat_and_ces_per_person_by_hand(ws):
    r = ws.analysis("experiment", experiment="calm_copy")
    t = r.table("metrics").set_index(["metric", "variant"])
    # Per person (satisfied, CSAT answers): control c1 (1, 2) c2 (1, 1) c3 (0, 1) c4 (0, 1):
    # 2 of 5 answers, 0.4; calm t1 (2, 2) t2 (1, 1) t3 (1, 1) t4 (0, 1): 4 of 5, 0.8. c2's
    # answer before exposure, c3's 9 (off the scale), t2's unlinked answer and m1 (both
    # variants) do not count; c5 answered nothing.
    control = [(1, 2), (1, 1), (0, 1), (0, 1)]
    calm = [(2, 2), (1, 1), (1, 1), (0, 1)]
    c, s = t.loc[("csat", "control")], t.loc[("csat", "calm")]
    assert (c.units, s.units) == (4, 4)
    assert (c.rate, s.rate) == (pytest.approx(0.4), pytest.approx(0.8))
    # The delta method's unit variances: control 1/3 ÷ 1.25² + 0.25 × 0.5² ÷ 1.25⁴
    # − 2 × 1/6 × 0.5 ÷ 1.25³ = 0.1536; calm 2/3 ÷ 1.25² + 0.25 ÷ 1.25⁴ − 2 × 1/3 ÷ 1.25³
    # = 0.18773; the lift's variance 0.18773/4 ÷ 0.4² + 0.1536/4 × 0.8² ÷ 0.4⁴ = 1.25333.
    lift, var, ci, p = lift_by_hand(control, calm)
    assert (lift, var) == (pytest.approx(1.0), pytest.approx(1.253333, abs=1e-6))
    assert s.lift == pytest.approx(1.0)
    assert s.lift_ci == [pytest.approx(ci[0]), pytest.approx(ci[1])]
    assert s.p == pytest.approx(p)
    assert s.verdict == "inconclusive" and s.role == "primary" and c.verdict == "control"
    assert math.isnan(s.score) and math.isnan(s.seconds)
    # CES per person (Σ answers, answers): control (5, 2) (3, 1) (2, 1) (2, 1): 12 of 5 = 2.4;
    # calm (13, 2) (6, 1) (7, 1, from the second survey) (6, 1): 32 of 5 = 6.4. The lift
    # 6.4 ÷ 2.4 − 1 = 1.667 with variance 0.054074 and 6 degrees of freedom: better, as a
    # higher CES is an easier moment.
    lift, var, ci, p = lift_by_hand([(5, 2), (3, 1), (2, 1), (2, 1)], [(13, 2), (6, 1), (7, 1), (6, 1)])
    ce, cs = t.loc[("ces", "control")], t.loc[("ces", "calm")]
    assert (ce.units, cs.units) == (4, 4)
    assert (ce.score, cs.score) == (pytest.approx(2.4), pytest.approx(6.4))
    assert math.isnan(cs.rate)
    assert (cs.lift, var) == (pytest.approx(5 / 3), pytest.approx(0.054074, abs=1e-6))
    assert cs.lift_ci == [pytest.approx(ci[0]), pytest.approx(ci[1])]
    assert cs.p == pytest.approx(p) and cs.p < 0.001
    assert cs.verdict == "better" and cs.chance_to_win > 0.99
    columns = {col.name: col for col in get("experiment").views[0].columns}
    assert cell(columns["score"], cs.to_dict()) == "6.4"
    assert cell(columns["rate"], s.to_dict()) == "80.0%"
    # The covariate: c2's answer before exposure is the only pre-exposure datum, so CUPED is
    # not applied, and the notice says what it would need.
    skipped = next(w for w in r.warnings if w.code == "cuped-not-applied")
    assert "csat, ces" in skipped.message and "answers linked to them" in skipped.message
    assert "control 1, calm 0" in skipped.message
    assert "no-survey-answers" not in {w.code for w in r.warnings}
    weeks = r.table("weeks").set_index(["metric", "variant"])
    assert weeks.loc[("csat", "calm")].units == 4 and weeks.loc[("csat", "calm")].control_units == 4
    assert weeks.loc[("csat", "calm")].lift == pytest.approx(1.0)


def test_persons_are_the_units_not_answers(ws):
    t = ws.analysis("experiment", experiment="calm_copy").table("metrics").set_index(
        ["metric", "variant"])
    # Five CSAT answers per arm, four persons: c1 and t1 answered twice and count once.
    assert t.loc[("csat", "control")].units == 4 and t.loc[("csat", "calm")].units == 4
    # Read as five independent answers the calm arm's variance would be 0.8 × 0.2 = 0.16;
    # per person it is the delta method's 0.18773 (the lift's interval above).
    assert by_hand([(2, 2), (1, 1), (1, 1), (0, 1)])[2] == pytest.approx(0.187733, abs=1e-6)


def test_the_verdict_direction_of_ces(ws):
    # A higher CES is easier (docs/surveys.md): neither survey metric is one to lower.
    assert not lower_is_better("ces") and not lower_is_better("csat")
    assert set(SURVEY_METRICS) == {"csat", "ces"} and set(SURVEY_METRICS) <= set(METRICS)
    # reverse: the calm persons are the control, so the other arm's CES is lower: harmful.
    r = ws.analysis("experiment", experiment="reverse")
    t = r.table("metrics").set_index(["metric", "variant"])
    hard = t.loc[("ces", "hard")]
    assert hard.role == "guardrail" and hard.lift == pytest.approx(2.4 / 6.4 - 1)
    assert hard.verdict == "harmful" and hard.chance_to_win < 0.01
    assert any(w.code == "guardrail-harmful" and w.where["metric"] == "ces" for w in r.warnings)
    assert t.loc[("csat", "hard")].lift == pytest.approx(-0.5)


def test_no_answers_gives_no_units_and_a_notice(ws, tmp_path):
    # quiet: its persons attempt but answer nothing.
    r = ws.analysis("experiment", experiment="quiet")
    t = r.table("metrics").set_index(["metric", "variant"])
    assert list(t.loc["ces"].units) == [0, 0] and list(t.loc["ces"].verdict) == ["control", "no data"]
    said = [w for w in r.warnings if w.code == "no-survey-answers"]
    assert len(said) == 1 and said[0].where == {"experiment": "quiet", "metric": "ces"}
    assert "no ces answer is linked" in said[0].message
    assert t.loc[("failure_rate", "quiet")].units == 2
    # A workspace with no survey at all.
    w = mj.init(tmp_path)
    (tmp_path / "microjourney.yaml").write_text(BARE_YAML)
    w.reload()
    rows = [exposure(who, "bare", v) for who, v in (("b1", "control"), ("b2", "other"))]
    rows += attempt(10, "b1", True, []) + attempt(10, "b2", False, [])
    w.ingest(write_events(tmp_path / "e.csv", rows))
    try:
        r = w.analysis("experiment", experiment="bare")
    finally:
        w.close()
    t = r.table("metrics").set_index(["metric", "variant"])
    assert list(t.loc["csat"].units) == [0, 0] and list(t.loc["ces"].units) == [0, 0]
    assert math.isnan(t.loc[("csat", "other")].rate) and math.isnan(t.loc[("ces", "other")].score)
    said = {w.where["metric"]: w.message for w in r.warnings if w.code == "no-survey-answers"}
    assert set(said) == {"csat", "ces"} and "no survey of card_payment asks a csat question" in said["csat"]
    assert t.loc[("failure_rate", "other")].units == 1


def test_daily_surveys_by_hand():
    day = datetime(2024, 3, 4, 10, tzinfo=UTC)
    next_day = datetime(2024, 3, 5, 9, tzinfo=UTC)
    schema = pa.schema([("moment", pa.string()), ("kind", pa.string()), ("value", pa.float64()),
                        ("satisfied", pa.int64()), ("answered_ts", pa.timestamp("us", "UTC")),
                        ("start_ts", pa.timestamp("us", "UTC"))])
    rows = [
        # m: two CSAT answers (5 satisfied, 2 not) and CES 6 and 3 about attempts of the 4th,
        # one CES 7 given the next day about an attempt of the 4th: day of the attempt.
        ("m", "csat", 5.0, 1, day, day), ("m", "csat", 2.0, 0, day, day),
        ("m", "ces", 6.0, 0, day, day), ("m", "ces", 3.0, 0, day, day),
        ("m", "ces", 7.0, 0, next_day, day),
        # An unlinked answer counts on the day it was given.
        ("m", "csat", 4.0, 1, next_day, None),
        # n: one CES 2; a survey of no moment is left out.
        ("n", "ces", 2.0, 0, day, day), (None, "csat", 5.0, 1, day, None),
    ]
    table = ibis.memtable(pa.Table.from_pylist([dict(zip(schema.names, r, strict=True)) for r in rows],
                                               schema=schema))
    got = daily_surveys(table).to_pandas()
    assert list(got.columns) == ["moment", "day", "csat_satisfied", "csat_answers", "ces_n", "ces_sum",
                                 "ces_sum2"]
    got["day"] = pd.to_datetime(got["day"]).dt.date
    assert got.to_dict("records") == [
        {"moment": "m", "day": date(2024, 3, 4), "csat_satisfied": 1, "csat_answers": 2, "ces_n": 3,
         "ces_sum": 16.0, "ces_sum2": 94.0},
        {"moment": "m", "day": date(2024, 3, 5), "csat_satisfied": 1, "csat_answers": 1, "ces_n": 0,
         "ces_sum": 0.0, "ces_sum2": 0.0},
        {"moment": "n", "day": date(2024, 3, 4), "csat_satisfied": 0, "csat_answers": 0, "ces_n": 1,
         "ces_sum": 2.0, "ces_sum2": 4.0},
    ]


def test_daily_surveys_on_the_workspace(ws):
    attempts, _ = ws.survey_attempts()
    answers = scored_answers(ws.survey_answers(), survey_questions(ws.spec.surveys), attempts)
    got = daily_surveys(answers).to_pandas()
    got["day"] = pd.to_datetime(got["day"]).dt.date
    by_day = got.set_index("day")
    # Every answer of the 1st (the 9 left out): CSAT c1 5 2, c2 4 and 1 (before exposure: the
    # daily sums are not the experiment's), c3 1, c4 3, t1 5 4, t2 4, t3 5, t4 2, m1 5: 12,
    # 7 of them 4 or 5. CES c1 2 3, c2 3, c3 2, c4 2, t1 6 7, t2 6, t3 7, t4 6, m1 7.
    ces = [2, 3, 3, 2, 2, 6, 7, 6, 7, 6, 7]
    first = by_day.loc[date(2024, 1, 1)]
    assert (first.moment, first.csat_satisfied, first.csat_answers) == ("card_payment", 7, 12)
    assert (first.ces_n, first.ces_sum, first.ces_sum2) == (11, sum(ces), sum(x * x for x in ces))
    # t2's answer 19 days later links to no attempt: the day it was given.
    late = by_day.loc[date(2024, 1, 20)]
    assert (late.csat_satisfied, late.csat_answers, late.ces_n) == (0, 1, 0)
