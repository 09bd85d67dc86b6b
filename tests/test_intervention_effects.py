"""Interventions measured against their holdout (the registered analysis ``interventions``;
docs/interventions.md, "Measured against the holdout"): what each arm's persons did after
their first decision, by hand and against statsmodels, and a harmful rule named."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
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
"""
T0 = datetime(2024, 1, 1, 10)


def at(t: datetime, event: str, who: str, channel: str = "web", **props: object) -> dict:
    row = {"timestamp": t.isoformat() + "+00:00", "event": event, "user_id": who, "channel": channel}
    if props:
        row["properties"] = props
    return row


def person(rule: str, who: str, held: bool, day: int, *, completes: bool = False, contacts: bool = False,
           completes_before: bool = False, completes_late: bool = False, again: bool = False) -> list[dict]:
    """A failed payment, the decision two minutes later, and what the person did next."""
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
    return rows


def events() -> list[dict]:
    """pay_help: 6 offered (4 complete after, 1 contacts; one decided twice), 6 held out (2
    complete after, 2 contact, one of them twice; one completed only before, one only two
    days later).
    pay_chat: 60 offered of whom 6 complete, 60 held out of whom 30 do: a harmful rule."""
    rows: list[dict] = []
    for i in range(6):
        rows += person("pay_help", f"o{i}", False, 0, completes=i < 4, contacts=i == 5)
    rows.append(at(T0 + timedelta(hours=3), "intervention_offered", "o0", intervention="pay_help",
                   moment="card_payment", decision="again"))
    for i in range(6):
        rows += person("pay_help", f"h{i}", True, 0, completes=i < 2, contacts=i in (2, 3),
                       completes_before=i == 4, completes_late=i == 5, again=i == 3)
    for i in range(60):
        rows += person("pay_chat", f"co{i}", False, 5, completes=i < 6)
        rows += person("pay_chat", f"ch{i}", True, 5, completes=i < 30)
    return rows


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from .helpers import workspace_of

    with workspace_of(tmp_path_factory.mktemp("effects"), PAYMENT_YAML + RULES, events()) as w:
        yield w


def test_each_arm_by_hand_and_against_statsmodels(ws):
    result = ws.analysis("interventions")
    rows = {(r["rule"], r["measure"]): r for r in result.to_dict()["tables"]["rules"]}
    help_done, help_contact = rows[("pay_help", "completed")], rows[("pay_help", "contacted")]
    assert (help_done["offered"], help_done["held"]) == (6, 6)  # o0 decided twice: one person
    assert help_done["rate_offered"] == pytest.approx(4 / 6)
    assert help_done["rate_held"] == pytest.approx(2 / 6)
    assert help_contact["rate_offered"] == pytest.approx(1 / 6)
    assert help_contact["rate_held"] == pytest.approx(2 / 6)
    repeated = rows[("pay_help", "repeated")]
    assert (repeated["rate_offered"], repeated["rate_held"]) == (0.0, pytest.approx(1 / 6))
    ps = []
    for (rule, measure), r in sorted(rows.items()):
        k1, k0 = round(r["rate_offered"] * r["offered"]), round(r["rate_held"] * r["held"])
        if k1 + k0 == 0:  # nobody contacted in either arm: nothing can differ
            assert r["effect"] == 0 and r["p_value"] == 1.0 and r["verdict"] == "inconclusive"
            ps.append((r, 1.0))
            continue
        low, high = confint_proportions_2indep(k1, r["offered"], k0, r["held"], method="newcomb")
        assert r["effect_ci"] == pytest.approx([low, high], abs=1e-8), (rule, measure)
        ps.append((r, proportions_ztest([k1, k0], [r["offered"], r["held"]])[1]))
    holm = multipletests([p for _, p in ps], method="holm")[1]
    for (r, _), q in zip(ps, holm, strict=True):
        assert r["p_adjusted"] == pytest.approx(q, rel=1e-9)
    assert help_done["verdict"] == "inconclusive"  # 6 a side: nothing is beyond chance
    chat = rows[("pay_chat", "completed")]
    assert (chat["rate_offered"], chat["rate_held"]) == (0.1, 0.5) and chat["verdict"] == "worse"
    codes = [(w.code, w.where.get("rule")) for w in result.warnings]
    assert ("intervention-harm", "pay_chat") in codes and ("too-few-units", "pay_help") in codes


def test_one_rule_a_shorter_window_and_wrong_requests(ws):
    one = ws.analysis("interventions", rule="pay_help", within=0.05)  # 3 minutes
    rows = {r["measure"]: r for r in one.to_dict()["tables"]["rules"]}
    assert set(rows) == {"completed", "contacted", "repeated"}
    assert {r["rule"] for r in rows.values()} == {"pay_help"}
    assert rows["completed"]["rate_held"] == 0  # nothing completes within 3 minutes
    later = {(r["rule"], r["measure"]): r for r in
             ws.analysis("interventions", since="2024-01-03").to_dict()["tables"]["rules"]}
    assert later[("pay_help", "completed")]["offered"] == 0  # its decisions were on the 1st
    assert later[("pay_chat", "completed")]["offered"] == 60
    with pytest.raises(QueryError, match="no intervention rule 'nope'; rules: pay_help, pay_chat"):
        ws.analysis("interventions", rule="nope")


def test_a_harmful_rule_is_an_alert(ws):
    """pay_chat does worse than its holdout: the alerts (and so their webhooks and the weekly
    review) name it, on its moment's completion, the holdout's rate as the baseline."""
    rows = [r for r in ws.analysis("alerts").to_dict()["tables"]["alerts"]
            if r["scope"].startswith("intervention ")]
    assert [(r["scope"], r["moment"], r["metric"]) for r in rows] == [
        ("intervention pay_chat", "card_payment", "completion_rate")]
    r = rows[0]
    assert (r["baseline"], r["observed"], r["start"]) == (0.5, 0.1, "2024-01-06")
    again = [a for a in ws.analysis("alerts").to_dict()["tables"]["alerts"] if a["scope"] == r["scope"]]
    assert r["size"] == pytest.approx(-0.4) and again[0]["alert_id"] == r["alert_id"]  # stable
    assert not ws.analysis("alerts", metric="failure_rate").to_dict()["tables"]["alerts"]
