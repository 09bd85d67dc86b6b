"""Interventions measured against their holdout (the registered analysis ``interventions``;
docs/interventions.md, "Measured against the holdout"): what each arm's persons did after
their first decision, by hand and against statsmodels, their survey scores by hand and
against scipy, and a harmful rule named."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest
from scipy.stats import t as student
from scipy.stats import ttest_ind
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from microjourney.errors import QueryError

from .helpers import PAYMENT_YAML

RULES = """\
interventions:
  - {name: pay_help, moment: card_payment, when: {signal: failure, count: 2}, offer: help,
     text: Check the card's expiry date., holdout: 50}
  - {name: pay_chat, moment: card_payment, when: {signal: failure, count: 2}, offer: chat,
     text: Chat with us?, holdout: 50}
  - {name: refund_help, moment: refund_request, when: {signal: error_shown}, offer: help,
     text: Refunds take three days., holdout: 50}
"""
#: A second moment, and a survey of each: the payment's asks CSAT and CES, the refund's CSAT
#: only (so refund_help has a csat row and no ces row).
REFUND = """\
      - name: refund_request
        intent: act
        start: {event: refund_opened}
        complete: {event: refund_done}
"""
SURVEYS = """\
surveys:
  - name: pay_survey
    moment: card_payment
    questions:
      - {id: sat, type: csat, text: How satisfied are you?}
      - {id: effort, type: ces, text: How easy was it?, required: false}
  - name: refund_survey
    moment: refund_request
    questions:
      - {id: sat, type: csat, text: How satisfied are you?}
"""
#: pay_help's answers counted (within 24 hours after the decision, linked to a payment
#: attempt): per person its CSAT and CES answers. o2 answered CSAT twice (a ratio of 1 in 2);
#: o4 answered nothing; h4 answered only before its decision, h5's CSAT came a day late and
#: h1 also rated a refund (another moment): none of those count.
CSAT = {"offered": {"o0": [5], "o1": [4], "o2": [5, 2], "o3": [3], "o5": [4]},
        "held": {"h0": [2], "h1": [4], "h2": [1], "h3": [5]}}
CES = {"offered": {"o0": [6], "o1": [7], "o2": [5], "o3": [6], "o5": [4]},
       "held": {"h0": [3], "h1": [5], "h2": [2], "h3": [4], "h5": [3]}}
T0 = datetime(2024, 1, 1, 10)


def at(t: datetime, event: str, who: str, channel: str = "web", **props: object) -> dict:
    row = {"timestamp": t.isoformat() + "+00:00", "event": event, "user_id": who, "channel": channel}
    if props:
        row["properties"] = props
    return row


def answer(t: datetime, who: str, survey: str, question: str, value: int, n: int = 0) -> dict:
    return at(t, "survey_response", who, survey=survey, display=f"{who}-{question}-{n}",
              question=question, answer=value)


def escalation(t: datetime, who: str) -> list[dict]:
    """A payment attempt ended escalated two minutes on: a chat contact started within it."""
    return [at(t, "checkout_payment_opened", who),
            at(t + timedelta(minutes=2), "contact_started", who, "chat")]


def person(rule: str, who: str, held: bool, day: int, *, completes: bool = False, contacts: bool = False,
           completes_before: bool = False, completes_late: bool = False, again: bool = False,
           escalates: bool = False, escalates_before: bool = False) -> list[dict]:
    """A failed payment, the decision two minutes later, and what the person did next; their
    survey answers (:data:`CSAT`, :data:`CES`) half an hour on."""
    t = T0 + timedelta(days=day)
    rows = [at(t, "checkout_payment_opened", who), at(t + timedelta(minutes=1), "payment_failed", who),
            at(t + timedelta(minutes=2), "intervention_held" if held else "intervention_offered", who,
               intervention=rule, moment="card_payment", decision=f"{rule}-{who}")]
    if completes_before:
        rows += [at(t - timedelta(hours=2), "checkout_payment_opened", who),
                 at(t - timedelta(hours=2) + timedelta(minutes=1), "payment_succeeded", who)]
    if completes:
        rows += [at(t + timedelta(minutes=5), "checkout_payment_opened", who),
                 at(t + timedelta(minutes=6), "payment_succeeded", who)]
    if completes_late:  # two days on: outside the 24 hours read
        rows += [at(t + timedelta(days=2), "checkout_payment_opened", who),
                 at(t + timedelta(days=2, minutes=1), "payment_succeeded", who)]
    if contacts:  # a chat about the payment: an attempt begun in a conversation channel
        rows.append(at(t + timedelta(minutes=10), "checkout_payment_opened", who, "chat"))
    if again:  # and another chat about it three hours on: the first is a repeat contact
        rows.append(at(t + timedelta(hours=3), "checkout_payment_opened", who, "chat"))
    if escalates:  # an attempt that ends escalated 22 minutes after the failure (also a contact)
        rows += escalation(t + timedelta(minutes=20), who)
    if escalates_before:  # one that ended escalated an hour before the decision: not counted
        rows += escalation(t - timedelta(hours=1), who)
    if rule == "pay_help":
        arm = CSAT["held" if held else "offered"], CES["held" if held else "offered"]
        for question, values in zip(("sat", "effort"), (a.get(who, []) for a in arm), strict=True):
            rows += [answer(t + timedelta(minutes=30 + n), who, "pay_survey", question, v, n)
                     for n, v in enumerate(values)]
    return rows


def events() -> list[dict]:
    """pay_help: 6 offered (4 complete after, 1 contacts, 1 is escalated — so 2 contact; one
    decided twice), 6 held out (2 complete after, 2 contact, one of them twice, 2 are
    escalated — so 4 contact; one completed only before, one only two days later, one was
    escalated only before). Each contact after the failure also escalates the failed attempt,
    which ended before the decision: not counted. Their survey answers: :data:`CSAT`,
    :data:`CES`, and the ones that do not count.
    pay_chat: 60 offered of whom 6 complete and 30 are escalated, 60 held out of whom 30
    complete and 6 are escalated: a harmful rule; nobody answers a survey."""
    rows: list[dict] = []
    for i in range(6):
        rows += person("pay_help", f"o{i}", False, 0, completes=i < 4, contacts=i == 5, escalates=i == 4)
    rows.append(at(T0 + timedelta(hours=3), "intervention_offered", "o0", intervention="pay_help",
                   moment="card_payment", decision="again"))
    for i in range(6):
        rows += person("pay_help", f"h{i}", True, 0, completes=i < 2, contacts=i in (2, 3),
                       completes_before=i == 4, completes_late=i == 5, again=i == 3,
                       escalates=i in (4, 5), escalates_before=i == 0)
    decided = T0 + timedelta(minutes=2)
    rows += [answer(decided - timedelta(seconds=30), "h4", "pay_survey", "sat", 5),  # before
             answer(decided + timedelta(hours=25), "h5", "pay_survey", "sat", 2),  # a day late
             at(decided + timedelta(minutes=40), "refund_opened", "h1"),  # another moment
             at(decided + timedelta(minutes=41), "refund_done", "h1"),
             answer(decided + timedelta(minutes=45), "h1", "refund_survey", "sat", 1)]
    for i in range(60):
        rows += person("pay_chat", f"co{i}", False, 5, completes=i < 6, escalates=10 <= i < 40)
        rows += person("pay_chat", f"ch{i}", True, 5, completes=i < 30, escalates=30 <= i < 36)
    return rows


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from .helpers import workspace_of

    with workspace_of(tmp_path_factory.mktemp("effects"), PAYMENT_YAML + REFUND + SURVEYS + RULES,
                      events()) as w:
        yield w


COUNTED = ("completed", "contacted", "repeated", "escalated")


def welch(offered: list[float], held: list[float], estimate: float, var1: float, var0: float,
          ) -> tuple[float, tuple[float, float], float]:
    """Welch by hand: each arm's unit variance over its persons, the 95% interval and p."""
    s1, s0 = var1 / len(offered), var0 / len(held)
    dof = (s1 + s0) ** 2 / (s1**2 / (len(offered) - 1) + s0**2 / (len(held) - 1))
    se = math.sqrt(s1 + s0)
    half = student.ppf(0.975, dof) * se
    return estimate, (estimate - half, estimate + half), 2 * student.sf(abs(estimate) / se, dof)


def sample_var(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def csat_by_hand() -> tuple[float, tuple[float, float], float]:
    """pay_help's csat, offered − held out: per person (satisfied, answers), the delta method
    as the variance of each person's linearised value (num − R·den) ÷ mean den."""
    arms = []
    for arm in ("offered", "held"):
        per = [(sum(v >= 4 for v in said), len(said)) for said in CSAT[arm].values()]
        r = sum(k for k, _ in per) / sum(n for _, n in per)
        mean_den = sum(n for _, n in per) / len(per)
        arms.append((r, [(k - r * n) / mean_den for k, n in per]))
    (r1, z1), (r0, z0) = arms
    return welch(z1, z0, r1 - r0, sample_var(z1), sample_var(z0))


def ces_values() -> tuple[list[float], list[float]]:
    return ([v for said in CES["offered"].values() for v in said],
            [v for said in CES["held"].values() for v in said])


def test_each_arm_by_hand_and_against_statsmodels(ws):
    result = ws.analysis("interventions")
    rows = {(r["rule"], r["measure"]): r for r in result.to_dict()["tables"]["rules"]}
    help_done, help_contact = rows[("pay_help", "completed")], rows[("pay_help", "contacted")]
    assert (help_done["offered"], help_done["held"]) == (6, 6)  # o0 decided twice: one person
    assert help_done["rate_offered"] == pytest.approx(4 / 6)
    assert help_done["rate_held"] == pytest.approx(2 / 6)
    # o5 and o4 (a chat contact escalated its attempt) against h2–h5.
    assert help_contact["rate_offered"] == pytest.approx(2 / 6)
    assert help_contact["rate_held"] == pytest.approx(4 / 6)
    repeated = rows[("pay_help", "repeated")]
    assert (repeated["rate_offered"], repeated["rate_held"]) == (0.0, pytest.approx(1 / 6))
    ps = []
    for (rule, measure), r in sorted(rows.items()):
        if measure not in COUNTED or not (r["offered"] and r["held"]):
            continue
        k1, k0 = round(r["rate_offered"] * r["offered"]), round(r["rate_held"] * r["held"])
        if k1 + k0 == 0:  # nobody contacted in either arm: nothing can differ
            assert r["effect"] == 0 and r["p_value"] == 1.0 and r["verdict"] == "inconclusive"
            ps.append((r, 1.0))
            continue
        low, high = confint_proportions_2indep(k1, r["offered"], k0, r["held"], method="newcomb")
        assert r["effect_ci"] == pytest.approx([low, high], abs=1e-8), (rule, measure)
        ps.append((r, proportions_ztest([k1, k0], [r["offered"], r["held"]])[1]))
    # The survey rows join the Holm adjustment: pay_help's csat and ces (pay_chat's have no
    # answer, so no p).
    ps += [(rows[("pay_help", "csat")], csat_by_hand()[2]),
           (rows[("pay_help", "ces")], ttest_ind(*ces_values(), equal_var=False).pvalue)]
    assert len(ps) == 10 and sum(r["p_value"] is not None and r["p_value"] == r["p_value"]
                                 for r in rows.values()) == 10
    holm = multipletests([p for _, p in ps], method="holm")[1]
    for (r, _), q in zip(ps, holm, strict=True):
        assert r["p_adjusted"] == pytest.approx(q, rel=1e-9)
    assert help_done["verdict"] == "inconclusive"  # 6 a side: nothing is beyond chance
    chat = rows[("pay_chat", "completed")]
    assert (chat["rate_offered"], chat["rate_held"]) == (0.1, 0.5) and chat["verdict"] == "worse"
    codes = [(w.code, w.where.get("rule")) for w in result.warnings]
    assert ("intervention-harm", "pay_chat") in codes and ("too-few-units", "pay_help") in codes
    harm = {w.where["measure"]: w.message for w in result.warnings if w.code == "intervention-harm"}
    assert set(harm) == {"completed", "contacted", "escalated"}
    assert "completed the moment less" in harm["completed"] and "escalated more" in harm["escalated"]


def test_escalated_by_hand(ws):
    """An attempt of the moment that ended escalated after the decision counts (o4; h4 and
    h5); one that ended before it does not (h0's, an hour before; and the failed attempt
    every later contact escalates, which ended a minute before the decision)."""
    rows = {(r["rule"], r["measure"]): r for r in ws.analysis("interventions").to_dict()["tables"]["rules"]}
    help_esc = rows[("pay_help", "escalated")]
    assert (help_esc["offered"], help_esc["held"]) == (6, 6)
    assert (help_esc["rate_offered"], help_esc["rate_held"]) == (pytest.approx(1 / 6), pytest.approx(2 / 6))
    assert help_esc["effect"] == pytest.approx(-1 / 6) and help_esc["verdict"] == "inconclusive"
    chat_esc = rows[("pay_chat", "escalated")]
    assert (chat_esc["rate_offered"], chat_esc["rate_held"]) == (0.5, 0.1)
    assert chat_esc["verdict"] == "worse"  # fewer is better: 30 of 60 against 6 of 60
    low, high = confint_proportions_2indep(30, 60, 6, 60, method="newcomb")
    assert chat_esc["effect_ci"] == pytest.approx([low, high], abs=1e-8)


def test_survey_scores_by_hand_and_against_scipy(ws):
    """CSAT and CES of the persons with an answer counted, per person a ratio (the
    experiments' statistics): o2's two CSAT answers weigh as one person's 1 of 2; h4's answer
    before its decision, h5's CSAT a day late and h1's refund rating do not count."""
    result = ws.analysis("interventions")
    rows = {(r["rule"], r["measure"]): r for r in result.to_dict()["tables"]["rules"]}
    csat, ces = rows[("pay_help", "csat")], rows[("pay_help", "ces")]
    # CSAT: offered 4 satisfied of 6 answers by 5 persons; held out 2 of 4 by 4 (h0–h3).
    assert (csat["offered"], csat["held"]) == (5, 4)
    assert (csat["rate_offered"], csat["rate_held"]) == (pytest.approx(4 / 6), pytest.approx(2 / 4))
    effect, (low, high), p = csat_by_hand()
    assert csat["effect"] == pytest.approx(1 / 6) == pytest.approx(effect)
    assert csat["effect_ci"] == pytest.approx([low, high], abs=1e-8)
    assert csat["p_value"] == pytest.approx(p, rel=1e-9)
    assert csat["score_offered"] is None and csat["score_effect"] is None
    # CES, one answer a person: the delta method is Welch's t on the answers. Offered 6, 7,
    # 5, 6, 4 (5.6); held out 3, 5, 2, 4, 3 (3.4): +2.2.
    offered, held = ces_values()
    assert (ces["offered"], ces["held"]) == (5, 5)
    assert (ces["score_offered"], ces["score_held"]) == (pytest.approx(5.6), pytest.approx(3.4))
    assert ces["rate_offered"] is None and ces["effect"] is None
    test = ttest_ind(offered, held, equal_var=False)
    assert ces["p_value"] == pytest.approx(test.pvalue, rel=1e-9)
    effect, (low, high), p = welch(offered, held, 5.6 - 3.4, sample_var(offered), sample_var(held))
    assert p == pytest.approx(test.pvalue, rel=1e-9)
    assert ces["score_effect"] == pytest.approx(2.2)
    assert ces["score_effect_ci"] == pytest.approx([low, high], abs=1e-8)
    assert ces["verdict"] == "inconclusive"  # p 0.016, Holm-adjusted over 10 rows: 0.11
    # The CES effect reads in answer points, not as a percentage.
    from microjourney.fmt import cell
    from microjourney.registry import get

    columns = {c.name: c for c in get("interventions").views[0].columns}
    assert cell(columns["score_offered"], ces) == "5.6"
    assert cell(columns["score_effect"], ces).startswith("2.2 [0.5–3.9]")
    assert cell(columns["rate_offered"], csat) == "66.7%"
    # pay_chat: a survey asks, nobody answered: 0 persons, inconclusive, and a warning;
    # refund_help: its moment's survey asks CSAT only, so it has no ces row.
    for kind in ("csat", "ces"):
        row = rows[("pay_chat", kind)]
        assert (row["offered"], row["held"], row["verdict"]) == (0, 0, "inconclusive")
    said = {w.where["measure"]: w.message for w in result.warnings
            if w.code == "no-survey-answers" and w.where["rule"] == "pay_chat"}
    assert set(said) == {"csat", "ces"} and "card_payment" in said["ces"]
    assert ("refund_help", "csat") in rows and ("refund_help", "ces") not in rows


def test_one_rule_a_shorter_window_and_wrong_requests(ws):
    one = ws.analysis("interventions", rule="pay_help", within=0.05)  # 3 minutes
    rows = {r["measure"]: r for r in one.to_dict()["tables"]["rules"]}
    assert set(rows) == {"completed", "contacted", "repeated", "escalated", "csat", "ces"}
    assert {r["rule"] for r in rows.values()} == {"pay_help"}
    assert rows["completed"]["rate_held"] == 0  # nothing completes within 3 minutes
    assert rows["escalated"]["rate_offered"] == 0  # o4's attempt ended escalated 20 minutes on
    assert (rows["csat"]["offered"], rows["csat"]["held"]) == (0, 0)  # answered half an hour on
    assert {w.where.get("measure") for w in one.warnings if w.code == "no-survey-answers"} == {"csat", "ces"}
    later = {(r["rule"], r["measure"]): r for r in
             ws.analysis("interventions", since="2024-01-03").to_dict()["tables"]["rules"]}
    assert later[("pay_help", "completed")]["offered"] == 0  # its decisions were on the 1st
    assert later[("pay_chat", "completed")]["offered"] == 60
    rules = "pay_help, pay_chat, refund_help"
    with pytest.raises(QueryError, match=f"no intervention rule 'nope'; rules: {rules}"):
        ws.analysis("interventions", rule="nope")


def test_a_harmful_rule_is_an_alert(ws):
    """pay_chat does worse than its holdout: the alerts (and so their webhooks and the weekly
    review) name it, on its moment's completion and on its escalation, the holdout's rate as
    the baseline."""
    rows = [r for r in ws.analysis("alerts").to_dict()["tables"]["alerts"]
            if r["scope"].startswith("intervention ")]
    assert [(r["scope"], r["moment"], r["metric"]) for r in rows] == [
        ("intervention pay_chat", "card_payment", "completion_rate"),
        ("intervention pay_chat", "card_payment", "escalation_rate")]
    r, esc = rows
    assert (r["baseline"], r["observed"], r["start"]) == (0.5, 0.1, "2024-01-06")
    assert (esc["baseline"], esc["observed"], esc["start"]) == (0.1, 0.5, "2024-01-06")
    assert esc["size"] == pytest.approx(0.4) and esc["alert_id"] != r["alert_id"]
    again = [a for a in ws.analysis("alerts").to_dict()["tables"]["alerts"] if a["scope"] == r["scope"]]
    assert r["size"] == pytest.approx(-0.4)
    assert [a["alert_id"] for a in again] == [r["alert_id"], esc["alert_id"]]  # stable
    only = [a for a in ws.analysis("alerts", metric="escalation_rate").to_dict()["tables"]["alerts"]
            if a["scope"] == r["scope"]]
    assert [(a["metric"], a["alert_id"]) for a in only] == [("escalation_rate", esc["alert_id"])]
    assert not ws.analysis("alerts", metric="failure_rate").to_dict()["tables"]["alerts"]
