"""The demo workspace: Northwind Bank & Shop's journeys and moments, and its YAML file.

The definitions match the events that the flows in this package emit; the
generator test checks that every event named here occurs in the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .surveys import SURVEYS

ASSISTED = ["chat", "voice", "agent"]
DIGITAL = ["web", "app"]


class _Flow(dict):  # type: ignore[type-arg]
    """A mapping written in YAML flow style (``{event: x}``), as people write matchers."""


class _Dumper(yaml.SafeDumper):
    """Indents lists under their key and never writes anchors (``&id001``)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(
    _Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True))


def on(event: str | list[str], where: dict[str, Any] | None = None,
       channel: str | list[str] | None = None, name: str | None = None,
       sla: str | None = None) -> _Flow:
    """A matcher (or a named step): event name(s), property predicates, channel(s), and
    for a step the longest it should take after the one before (``sla``)."""
    m = _Flow({"name": name} if name else {})
    m["event"] = event
    if where:
        m["where"] = _Flow(where)
    if channel:
        m["channel"] = channel
    if sla:
        m["sla"] = sla
    return m


def escalation(topic: str) -> _Flow:
    return on("contact_started", {"topic": topic}, ASSISTED)


def moment(name: str, title: str, intent: str, start: _Flow, steps: list[_Flow],
           complete: _Flow, fail: _Flow | None, *, timeout: str, sla: str, owner: str,
           problem: str, target: float, costs: tuple[float, float, float],
           escalate: _Flow | None = None, description: str | None = None) -> dict[str, Any]:
    """One moment in the workspace's key order; ``costs`` = failure, contact, lifetime."""
    m: dict[str, Any] = {"name": name, "title": title}
    if description:
        m["description"] = description
    m |= {"intent": intent, "start": start, "steps": steps, "complete": complete}
    if fail is not None:
        m["fail"] = fail
    if escalate is not None:
        m["escalate"] = escalate
    m |= {"timeout": timeout, "sla": sla, "owner": owner, "problem": problem,
          "target": _Flow(metric="completion_rate", value=target),
          "failure_cost": costs[0], "contact_cost": costs[1], "lifetime_value": costs[2]}
    return m


PAYMENT = [
    moment("card_payment", "Pay by card at checkout", "act",
           on("checkout_payment_opened", channel=DIGITAL),
           [on("payment_gateway_loaded", name="gateway_loaded", sla="3s"),
            on("card_details_entered", {"valid": True}, name="card_details_valid")],
           on("payment_succeeded"), on("payment_failed"),
           escalate=escalation("card_payment"), timeout="30m", sla="90s", owner="payments-team",
           problem="Customers wait for the payment gateway, especially on phones, and "
                   "re-type card details; a failed payment loses the basket.",
           target=0.9, costs=(38.0, 6.5, 420.0),
           description="From opening the payment step to the payment result. Gateway v2 "
                       "goes live on day 28."),
    moment("three_ds_verification", "Confirm a payment with 3-D Secure", "act",
           on("threeds_challenge_shown"),
           [on("threeds_code_entered", {"valid": True}, name="code_entered")],
           on("threeds_verified"), on("threeds_failed"),
           escalate=escalation("three_ds_verification"), timeout="10m", sla="60s",
           owner="fraud-and-risk", target=0.93, costs=(38.0, 6.5, 420.0),
           problem="SMS codes arrive late or are mistyped; the bank's strong "
                   "authentication costs sales."),
]
ACCESS = [
    moment("login", "Log in to online banking", "act", on("login_started", channel=DIGITAL),
           [on("credentials_submitted", {"valid": True}, name="credentials_ok")],
           on("logged_in"), on("login_failed"), escalate=escalation("login"),
           timeout="10m", sla="30s", owner="identity-team", target=0.95,
           costs=(4.0, 6.5, 900.0),
           problem="Wrong passwords on phone keyboards lock accounts; locked customers "
                   "call or reset their password."),
    moment("password_reset", "Reset a forgotten password", "act",
           on("password_reset_requested"),
           [on(["reset_email_sent", "reset_code_sent"], channel=["email", "sms"], name="code_sent",
               sla="1m"),
            on(["reset_link_opened", "reset_code_entered"], name="code_used"),
            on("new_password_set", {"valid": True}, name="new_password")],
           on("password_reset_completed"), on("reset_link_expired"),
           escalate=escalation("password_reset"), timeout="2h", sla="5m",
           owner="identity-team", target=0.85, costs=(6.0, 6.5, 900.0),
           problem="Reset emails arrive late, people press resend and links expire. "
                   "Experiment reset_by_sms tests an SMS code (step_variant).",
           description="Spans web/app, email and SMS."),
]
DELIVERY = [
    moment("delivery_tracking", "Check where my parcel is", "learn",
           on("tracking_opened", channel=DIGITAL),
           [on("tracking_status_loaded", name="status_loaded", sla="5s")],
           on("delivery_eta_viewed"), on("tracking_error"),
           escalate=escalation("delivery_tracking"), timeout="15m", sla="20s",
           owner="logistics-digital", target=0.9, costs=(2.0, 5.5, 300.0),
           problem="Customers refresh the tracking page again and again when a parcel "
                   "is late, then contact us: 'where is my order'."),
    moment("delivery_delay_notice", "React to a delivery-delay notice", "decide",
           on("delay_notice_sent", channel=["email", "sms"]),
           [on("delay_notice_opened", name="notice_opened"),
            on("tracking_opened", channel=DIGITAL, name="tracking_checked")],
           on("delivery_slot_confirmed"), on("order_cancelled"),
           escalate=escalation("delivery_delay_notice"), timeout="2d", sla="4h",
           owner="logistics-cx", target=0.6, costs=(45.0, 5.5, 300.0),
           problem="Delay emails are opened late and do not offer a new slot directly; "
                   "a carrier problem in week 6 multiplies them."),
]
SUPPORT = [
    moment("chat_wait", "Get an answer in chat", "act", on("chat_requested", channel="chat"),
           [on("agent_joined", name="agent_joined", sla="2m")],
           on("chat_resolved"), on("chat_closed_unresolved"), timeout="1h", sla="10m",
           owner="contact-centre-chat", target=0.8, costs=(6.5, 6.5, 600.0),
           problem="Evening and Monday queues are long; people leave the chat before an "
                   "agent joins and contact us again."),
    moment("call_transfer", "Reach the right person by phone", "act",
           on("call_started", channel="voice"),
           [on("ivr_choice", name="ivr_choice"), on("agent_answered", name="agent_answered", sla="2m"),
            on("call_transferred", name="transferred")],
           on("call_resolved"), on("call_dropped"), timeout="1h", sla="15m",
           owner="contact-centre-voice", target=0.8, costs=(9.0, 9.0, 600.0),
           problem="The IVR menu sends callers to the wrong queue; transfers mean a second "
                   "hold and repeating security questions."),
]
ONBOARDING = [
    moment("account_opening", "Open an account online", "act",
           on("application_started", channel=DIGITAL),
           [on("personal_details_submitted", name="details"),
            on("id_verified", name="identity_verified"), on("terms_accepted", name="terms")],
           on("account_opened"), on("application_rejected"),
           escalate=escalation("account_opening"), timeout="7d", sla="20m",
           owner="onboarding-team", target=0.65, costs=(120.0, 8.0, 1500.0),
           problem="Applicants stop at the long form and at the ID check; those who fail "
                   "the upload have to visit a branch."),
    moment("id_verification", "Verify my identity", "act", on("id_check_started"),
           [on("document_uploaded", {"quality_ok": True}, name="document_ok"),
            on("selfie_captured", name="selfie")],
           on("id_verified"), on("id_check_failed"), escalate=escalation("id_verification"),
           timeout="1d", sla="5m", owner="kyc-team", target=0.8, costs=(120.0, 8.0, 1500.0),
           problem="Document photos are rejected for blur and glare (Android, webcams); "
                   "the auto_capture variant is being tested."),
]
CARDS = [
    moment("card_block", "Block a lost or stolen card", "act",
           on("card_block_opened", channel=DIGITAL),
           [on("card_selected", name="card_selected"), on("block_reason_chosen", name="reason")],
           on("card_blocked"), on("card_block_failed"), escalate=escalation("card_block"),
           timeout="10m", sla="45s", owner="cards-team", target=0.95,
           costs=(60.0, 9.0, 900.0),
           problem="When blocking fails the customer is anxious and phones the card line; "
                   "the day-17 core banking incident shows it."),
    moment("card_dispute", "Dispute a card transaction", "act",
           on("dispute_opened", channel=["agent", "voice"]),
           [on("evidence_requested", channel="email", name="evidence_requested"),
            on("evidence_uploaded", channel=DIGITAL, name="evidence_uploaded")],
           on("dispute_resolved"), on("dispute_rejected"), timeout="21d", sla="7d",
           owner="disputes-team", target=0.75, costs=(80.0, 9.0, 900.0),
           problem="Customers miss the evidence request email; disputes without evidence "
                   "are rejected after ten days."),
]

#: What each moment's owner says customers write when they need it (intents map to the
#: moment whose phrases and keywords they are nearest): keywords, then example phrases.
PHRASES: dict[str, tuple[list[str], list[str]]] = {
    "card_payment": (["checkout", "declined"], ["my card payment failed at checkout",
                                                "the payment page does not load", "card declined"]),
    "three_ds_verification": (["verification", "3d"], ["the code to approve my payment never came",
                                                       "3-D Secure verification failed"]),
    "login": (["login", "locked"], ["I cannot log in to online banking", "my account is locked"]),
    "password_reset": (["password"], ["I need to reset my password",
                                      "the password reset email did not arrive"]),
    "delivery_tracking": (["tracking", "parcel"], ["where is my parcel",
                                                   "the tracking page shows nothing"]),
    "delivery_delay_notice": (["delayed"], ["my delivery is delayed", "change my delivery date"]),
    "card_block": (["stolen", "block"], ["block my lost card", "my card was stolen"]),
    "id_verification": (["selfie", "identity"], ["my ID photo was rejected",
                                                 "I cannot verify my identity"]),
    "account_opening": (["application"], ["I want to open an account",
                                          "what is the status of my application"]),
    "card_dispute": (["dispute"], ["I want to dispute a card transaction",
                                   "I was charged for something I did not buy"]),
}
for _m in (*PAYMENT, *ACCESS, *DELIVERY, *SUPPORT, *ONBOARDING, *CARDS):
    if _m["name"] in PHRASES:
        _m["keywords"], _m["phrases"] = PHRASES[_m["name"]]

#: Friction detectors tuned to this data: every event named here occurs in it.
FRICTIONS: dict[str, Any] = {
    "rage_click": _Flow(events=["click"], clicks=3, within="1s", distance=30),
    "dead_click": _Flow(events=["click"], within="2.5s", flag="dead"),
    "error_shown": _Flow(events=["error_shown"], invalid=_Flow(valid=False)),
    "u_turn": _Flow(page_events=["page_viewed"], page_key="page", dwell="30s"),
    "uncertainty": _Flow(events=["tracking_status_loaded"], checks=3, within="5m"),
    "cognitive_load": _Flow(field_events=["field_edited"], edits=5, dwell="30s",
                            help_events=["help_opened"]),
    "redundant_input": _Flow(field_events=["field_edited"]),
    "repeated_auth": _Flow(events=["logged_in", "caller_identified"]),
    "transfer_hold": _Flow(transfer_events=["call_transferred"], hold_keys=["hold_seconds"],
                           hold_allowance="1m", answer_events=["agent_answered", "agent_joined"],
                           answer_sla="2m"),
}

WORKSPACE: dict[str, Any] = {
    "name": "Northwind Bank & Shop (demo)",
    "description": "A retail bank with an online shop: payments, account access, delivery, "
                   "contact centre, onboarding and card services. Generated by "
                   "microjourney.demo; every number is synthetic.",
    "journeys": [
        {"name": "payment", "moments": PAYMENT},
        {"name": "account_access", "moments": ACCESS},
        {"name": "delivery", "moments": DELIVERY},
        {"name": "support", "moments": SUPPORT},
        {"name": "onboarding", "moments": ONBOARDING},
        {"name": "card_services", "moments": CARDS},
    ],
    "frictions": FRICTIONS,
    "surveys": SURVEYS,
    "survey_cooldown": "3d",
    # After a failed card payment the payment page offers help (once a day); a fifth of those
    # customers are held out, so its effect is measured (microjourney interventions).
    "interventions": [
        {"name": "payment_help", "moment": "card_payment",
         "when": {"signal": "failure", "count": 1, "seconds": "30m"}, "offer": "help",
         "text": "Payment failed? Check the card's expiry date and security code, or pay with "
                 "another card.",
         "channels": ["web", "app"], "holdout": 20},
    ],
    # Regressions are ranked by channel and by the device's operating system too.
    "alerts": {"segments": ["os"]},
    # The two experiments running in the demo's data. Their pages assign by a coin of their
    # own and log each exposure (experiment_exposure), which is what the analysis reads.
    "experiments": [
        {"name": "reset_by_sms", "moment": "password_reset",
         "title": "A code by SMS instead of a link by e-mail",
         "variants": [{"name": "email_link"}, {"name": "sms_code"}],
         "metric": "completion_rate", "secondary": ["duration"],
         "guardrails": ["escalation_rate", "failure_rate"]},
        {"name": "auto_capture", "moment": "id_verification",
         "title": "The camera takes the document photo when it is sharp",
         "variants": [{"name": "manual_photo"}, {"name": "auto_capture"}],
         "metric": "completion_rate", "secondary": ["friction_seconds"],
         "guardrails": ["escalation_rate"]},
    ],
}


def write_workspace(path: Path) -> Path:
    """Write ``microjourney.yaml`` (the product's workspace file) to ``path``."""
    text = yaml.dump(WORKSPACE, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    path.write_text("# Demo workspace generated by microjourney.demo\n" + text, encoding="utf-8")
    return path
