"""Support texts: short customer messages, call notes and help-centre searches per topic.

Each contact in the simulation may leave a text in its channel (the first chat
message, a call-transcript line, an agent's note), and some self-service troubles
leave a help-centre search. Templates have slots and the framing varies, so intent
mining has something realistic to cluster. No real personal data: amounts, order
numbers and merchants are made up.
"""

from __future__ import annotations

import numpy as np

TEMPLATES: dict[str, list[str]] = {
    "card_payment": [
        "my card payment of {amount} keeps failing at checkout",
        "the payment page just spins and never loads",
        "tried to pay {amount} three times and it says payment failed",
        "why was my card declined? there is money on the account",
        "checkout stuck on the payment screen on my {device}",
        "I entered my card details and it said invalid card number but it is correct",
        "payment failed but I think the money left my account",
        "can't complete my order, card payment error",
        "the card form keeps rejecting my expiry date",
        "paying for order {order} does not work",
        "payment timed out, do I have to order again?",
        "is there a problem with card payments today?",
    ],
    "three_ds_verification": [
        "I never got the code to confirm my payment",
        "the verification code by sms arrives after it has expired",
        "3d secure keeps saying wrong code",
        "the app notification to approve the payment did not show up",
        "stuck on 'confirm your payment' screen",
        "code came {minutes} minutes late so payment failed",
        "why do I need to verify every payment now?",
        "approve payment screen closes before I can type the code",
        "secure code failed and now the shop cancelled my order",
        "verification failed on my {device}",
    ],
    "login": [
        "I can't log in, it says my account is locked",
        "locked out after typing my password wrong",
        "the login code by text never arrives",
        "face id login stopped working in the app",
        "can't get into online banking since this morning",
        "it says wrong password but I am sure it is right",
        "how do I unlock my account?",
        "login page keeps asking for the code again",
        "app logs me out and then I can't log back in",
        "account blocked after 3 attempts, please help",
    ],
    "password_reset": [
        "the password reset email never arrived",
        "I clicked resend {count} times and still no email",
        "reset link says it has expired",
        "new password not accepted, says too weak",
        "the reset code did not come by sms",
        "how long does the reset email take?",
        "I reset my password and still can't log in",
        "reset email went to spam and now the link is expired",
        "forgot my password, the reset page does not work",
        "password reset keeps failing on my {device}",
    ],
    "delivery_tracking": [
        "where is my order {order}?",
        "tracking page says in transit for {days} days",
        "tracking does not load, just an error",
        "my parcel has not moved since {days} days",
        "when will order {order} arrive?",
        "the tracking status hasn't changed, is it lost?",
        "the carrier site shows nothing for my parcel",
        "delivery was due yesterday, nothing yet",
        "can you tell me where my package is",
        "tracking link in the email does not work",
    ],
    "delivery_delay_notice": [
        "got an email that my delivery is delayed, what now?",
        "my order {order} is delayed again, I need it by friday",
        "I want to cancel because of the delay",
        "can I choose a new delivery day?",
        "delay notice says {days} more days, that is too long",
        "text says delivery delayed but gives no new date",
        "why was my delivery postponed?",
        "can I pick up the parcel myself instead?",
        "delayed delivery, I want a refund of the shipping cost",
        "the new delivery slot does not suit me",
    ],
    "card_block": [
        "I lost my card, please block it",
        "my card was stolen, the app won't let me block it",
        "blocking the card in the app shows an error",
        "I think someone used my card, I need to freeze it now",
        "card block failed, is my card still active?",
        "urgent: stolen wallet, block my {card}",
        "how do I get a replacement card?",
        "can't find my card, want to block it temporarily",
        "the block card button does nothing",
        "I blocked my card by mistake, can I unblock it?",
    ],
    "id_verification": [
        "my passport photo keeps getting rejected",
        "it says the picture is blurry but it is not",
        "id check failed {count} times, what can I do?",
        "the selfie step doesn't work on my {device}",
        "upload of my id card says glare, tried everything",
        "do I have to come to a branch to verify my identity?",
        "my driving licence is not accepted",
        "verification failed and the app tells me to visit a branch",
        "camera doesn't focus on the document",
        "how long does the identity check take?",
    ],
    "account_opening": [
        "I started opening an account but can't continue",
        "application for a current account is stuck",
        "why was my application rejected?",
        "how long until my account is open?",
        "the form keeps losing what I typed",
        "I want to open a business account",
        "can I open an account without a passport?",
        "I didn't get a confirmation after applying",
        "application says pending since {days} days",
        "where do I continue my application?",
    ],
    "card_dispute": [
        "there is a payment of {amount} to {merchant} I don't recognise",
        "I was charged twice by {merchant}",
        "I paid {amount} but never received the goods",
        "I want to dispute a transaction",
        "what happened with my dispute about {merchant}?",
        "I sent the evidence, why was my dispute rejected?",
        "where do I upload the documents for my claim?",
        "refund from {merchant} never arrived",
        "unknown card payment abroad, {amount}",
        "I never got the email asking for evidence",
    ],
    "general_enquiry": [
        "what are your opening hours?",
        "how do I change my address?",
        "can I increase my daily limit?",
        "I want to add my partner to my account",
        "how do I set up a standing order?",
        "is the branch in the city centre open on saturday?",
        "can I order a new pin?",
        "how do I close my savings account?",
    ],
    "fees_question": [
        "why was I charged a fee of {amount}?",
        "what is this monthly account fee?",
        "I was charged for a foreign transaction, why?",
        "can you refund the overdraft fee?",
        "how much does a premium account cost?",
        "fee for card replacement seems too high",
    ],
    "statement_request": [
        "I need a statement for the last {count} months",
        "how do I download my statements?",
        "need a bank statement for my mortgage application",
        "statement pdf doesn't open",
        "can you send me an annual statement?",
    ],
    "mortgage_enquiry": [
        "I'd like to talk to someone about a mortgage",
        "what are your current mortgage rates?",
        "can I pay off my mortgage early?",
        "how do I book a mortgage appointment?",
        "I want to move my mortgage to you",
    ],
}

SEARCHES: dict[str, list[str]] = {
    "card_payment": ["payment failed", "card declined", "checkout error", "payment not working"],
    "three_ds_verification": ["3d secure code", "verification code not received",
                              "approve payment"],
    "login": ["account locked", "can't log in", "unlock account", "login code"],
    "password_reset": ["reset password", "reset email not received", "reset link expired"],
    "delivery_tracking": ["where is my order", "track parcel", "tracking not working"],
    "delivery_delay_notice": ["delivery delayed", "change delivery date", "cancel order delay"],
    "card_block": ["block card", "lost card", "stolen card", "freeze card"],
    "id_verification": ["id photo rejected", "verify identity", "selfie not working"],
    "account_opening": ["open account", "application status", "account application"],
}

OPEN = ["", "", "Hi, ", "Hello, ", "hi ", "Good morning, ", "Hey - ", "Hello there. "]
CLOSE = ["", "", "", " Thanks.", " thanks", " Please help.", "!!", " asap please", " ?",
         " Thank you"]
MERCHANTS = ["CityMart", "Gamma Electronics", "TravelNow", "Bistro 21", "StreamPlus",
             "QuickRide", "Online Books Ltd", "FreshBox"]
DEVICES = ["iPhone", "Android phone", "laptop", "tablet", "phone"]
CARDS = ["debit card", "credit card", "card"]


def _fill(template: str, rng: np.random.Generator) -> str:
    return template.format(
        amount=f"€{rng.lognormal(np.log(45), 0.8):.2f}",
        order=f"NW-{rng.integers(0, 16**8):08x}",
        minutes=int(rng.integers(3, 15)), days=int(rng.integers(2, 8)),
        count=int(rng.integers(2, 5)), merchant=rng.choice(MERCHANTS),
        device=rng.choice(DEVICES), card=rng.choice(CARDS))


def compose(topic: str, channel: str, rng: np.random.Generator) -> str:
    """One message about ``topic`` framed as it would appear in ``channel``."""
    if channel == "web":
        return str(rng.choice(SEARCHES.get(topic, ["contact us"])))
    body = _fill(str(rng.choice(TEMPLATES[topic])), rng)
    if channel == "voice":  # a speech-to-text line: lower case, no punctuation
        return "caller: " + body.lower().replace("?", "").replace(",", "").replace("!", "")
    if channel == "agent":
        return str(rng.choice(["Customer in branch: ", "Note - cust says: ", "Visit: "])) + body
    opener = str(rng.choice(OPEN))
    text = (opener or body[0].upper()) + (body if opener else body[1:]) + str(rng.choice(CLOSE))
    return text if rng.random() > 0.2 else text.lower()
