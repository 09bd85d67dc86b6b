"""Shop flows: card payment with 3-D Secure, then delivery tracking and delay notices.

Known structure worth finding in the data: the payment gateway is slow before the
change day (worse on phones) and loses customers while it loads; from the change
day gateway ``v2`` loads about three times faster and completion improves. A
carrier problem in week 6 multiplies delay notices and anxious tracking checks. In week 7
an incident: for five days the bank app does not hand Android customers back after a 3-D
Secure push, so their payments fail (``app_return_failed``) until a fix ships.

Friction signals: while a slow gateway loads, customers tap the pay button (dead
clicks) and rage-click it, most on phones before the change, and many then leave;
the card form sends a ``field_edited`` per field (more edits and time on phones),
invalid details show an error, some go back to the basket and return (a U-turn that
reloads the gateway), and a late parcel's status is reloaded again and again.
"""

from __future__ import annotations

import numpy as np

from . import signals, surveys
from .access import browse, enter
from .signals import SILENT
from .world import DAY, HOUR, MINUTE, SECOND, Batch, World, props, unique_hex

DECLINES = np.array(["card_declined", "insufficient_funds", "do_not_honour", "expired_card"],
                    dtype=object)
#: The card form in the order it is filled: field, median seconds in it on a desktop,
#: share who fight it (many edits), share who stop to fetch something (the card).
CARD_FORM = (("card_number", 10.0, 0.06, 0.05), ("expiry", 4.0, 0.02, 0.0),
             ("cvc", 3.5, 0.01, 0.0), ("cardholder_name", 6.0, 0.01, 0.0))
#: Fields a submission can be rejected for, their error codes, messages and retyping time.
FIELDS = np.array(["card_number", "expiry", "cvc"], dtype=object)
CARD_ERRORS = np.array(["invalid_card_number", "invalid_expiry", "invalid_cvc"], dtype=object)
CARD_MESSAGES = np.array(["Check your card number.", "Check the expiry date (MM/YY).",
                          "Enter the 3-digit security code from the back of your card."],
                         dtype=object)
FIELD_DWELL = np.array([8.0, 4.0, 3.5])
SLOTS = np.array(["morning", "evening", "saturday"], dtype=object)


def threeds(w: World, b: Batch) -> tuple[Batch, Batch]:
    """``three_ds_verification``: challenge → code entered (valid) → verified / failed.

    Returns (verified, failed); rows that walk away are neither.
    """
    n = len(b)
    push = (b.channel == "app") & w.chance(n, 0.7)
    kind = np.where(push, "app_push", "sms_otp").astype(object)
    w.log.emit(b, "threeds_challenge_shown", props(n, challenge_type=kind))
    wait = w.wait(n, np.where(push, 12, 28), 0.9)
    b.t = b.t + wait
    stays = w.chance(n, np.where(push, 0.96, 0.92)) & (wait < 5 * MINUTE)
    timeout = ~stays & (wait >= 5 * MINUTE)
    late = b.take(timeout)
    w.log.emit(late, "threeds_failed", props(len(late), reason="timeout"))
    # The incident: Android customers not handed back by the bank app wait, then fail.
    lost = stays & push & (b.t >= w.incident[0]) & (b.t < w.incident[1]) & android(b)
    lost &= w.incident_rng.random(n) < 0.8
    stranded = b.take(lost)
    stranded.t = stranded.t + (w.incident_rng.integers(30, 120, len(stranded)) * SECOND)
    w.log.emit(stranded, "threeds_failed", props(len(stranded), reason="app_return_failed"))
    late = Batch.concat(late, stranded)
    stays &= ~lost
    w.trouble(b.take(~stays & ~timeout), "three_ds_verification")
    b, kind = b.take(stays), kind[stays]
    wrong = (kind == "sms_otp") & w.chance(len(b), 0.12)
    w.log.emit(b.take(wrong), "threeds_code_entered",
               props(int(wrong.sum()), valid=False, method="sms_otp"))
    signals.error(w, b, "wrong_code", "That code is not right. Check the message and try again.",
                  wrong, field="otp_code")
    b.t = b.t + np.where(wrong, w.wait(len(b), 14, 0.5), 0)
    gives_up = wrong & w.chance(len(b), 0.3)
    bad = b.take(gives_up)
    w.log.emit(bad, "threeds_failed", props(len(bad), reason="wrong_code"))
    b, kind = b.take(~gives_up), kind[~gives_up]
    w.log.emit(b, "threeds_code_entered", props(len(b), valid=True, method=kind))
    b.t = b.t + w.wait(len(b), 1.5, 0.4)
    w.log.emit(b, "threeds_verified", props(len(b), challenge_type=kind))
    failed = Batch.concat(late, bad)
    w.trouble(failed.take(w.chance(len(failed), 0.5)), "three_ds_verification")
    return b, failed


def android(b: Batch) -> np.ndarray:
    """Rows on an Android device."""
    return np.fromiter(('"os":"android"' in c for c in b.ctx), dtype=bool, count=len(b))


def impatience(w: World, b: Batch, opened: np.ndarray, ready: np.ndarray) -> np.ndarray:
    """Taps on the pay button while the gateway loads: a dead click, a rage burst.

    The longer the wait the likelier both (phones more: the page seems frozen). A dead
    click leaves the page silent for 2.6 s or more; a burst ends before the gateway
    shows. Returns the rows that rage-clicked.
    """
    n = len(b)
    secs = (ready - opened) / SECOND
    rage = w.chance(n, np.clip((secs - 8) / 15, 0, 0.6) * np.where(b.mobile, 1.0, 0.5))
    dead = w.chance(n, np.clip((secs - 3) / 10, 0, 0.5) * 0.5)
    clicks = w.rng.integers(3, 7, n)
    longest = (clicks - 1) * 600
    first = opened + 500
    room = ready - first - SILENT - np.where(rage, longest + 200, 0)
    dead &= room > 0
    tap = b.copy()
    tap.t = first + (w.rng.random(n) * np.maximum(room, 0)).astype(np.int64)
    signals.click(w, tap, "#pay-button", dead, dead=True)
    lo = np.where(dead, tap.t + SILENT, first)
    room = ready - 100 - longest - lo
    rage &= room > 0
    tap.t = lo + (w.rng.random(n) * np.maximum(room, 0)).astype(np.int64)
    signals.rage(w, tap, "#pay-button", clicks, rage)
    return rage


def card_form(w: World, b: Batch, saved: np.ndarray, rage: np.ndarray, amount: np.ndarray,
              version: np.ndarray, attempt: int) -> np.ndarray:
    """Typing the card details up to a valid submission, or leaving; a U-turn for some.

    A U-turn (payment, basket, payment within seconds) reopens the payment step: the
    gateway loads again and the card number is typed a second time. An invalid
    submission shows an error with the rejected step event; the customer fixes the
    field and presses pay again (a quarter get it wrong twice) or leaves right there,
    errors making that likelier. Returns who go on to submit valid details.
    """
    n = len(b)
    web = b.channel == "web"
    b.t = b.t + w.wait(n, 2.5, 0.5)  # reading the form
    # Some leave at the sight of the form (more of those who already rage-clicked),
    # some after a struggle with a field.
    left = ~saved & w.chance(n, np.where(rage, 0.06, 0.01))
    typed = ~saved & ~left
    uturn = typed & w.chance(n, np.where(web, 0.06, 0.035))
    signals.edit(w, b, "card_number", CARD_FORM[0][1], uturn, fumble=CARD_FORM[0][2])
    signals.later(w, b, 3, uturn, 0.5)
    w.log.where(b, uturn, "page_viewed", page="basket")
    b.t[uturn] += np.minimum(w.wait(n, 7, 0.5), 25 * SECOND)[uturn]
    w.log.where(b, uturn, "page_viewed", page="payment")
    b.t[uturn] += w.rng.integers(20, 150, n)[uturn]
    w.log.where(b, uturn, "checkout_payment_opened", amount=amount, currency="EUR",
                attempt=attempt)
    reload = np.minimum(w.wait(n, np.where(version == "v2", 1.5, 4.5), 0.5), 20 * SECOND)
    b.t[uturn] += reload[uturn]
    w.log.where(b, uturn, "payment_gateway_loaded", gateway_version=version, load_ms=reload)
    signals.later(w, b, 2.5, uturn, 0.5)
    for field, dwell, fumble, hunt in CARD_FORM:  # the app fills in the cardholder's name
        rows = typed & web if field == "cardholder_name" else typed
        hard = signals.edit(w, b, field, dwell, rows, edits=0.25, fumble=fumble, hunt=hunt,
                            pause_s=2)
        gone = hard & w.chance(n, 0.2)  # the card is not at hand, the field will not take it
        left |= gone
        typed &= ~gone
    signals.edit(w, b, "cvc", 2.5, saved & web & w.chance(n, 0.7))  # saved cards ask the code
    signals.press(w, b, "#pay-button", ~left)
    # Typing mistakes: one, sometimes two invalid submissions before a valid one.
    wrong = typed & w.chance(n, np.where(b.mobile, 0.22, 0.14))
    for quits, again in ((0.1, 0.25), (0.2, 0.0)):
        which = w.rng.integers(0, len(FIELDS), n)
        signals.error(w, b, CARD_ERRORS[which], CARD_MESSAGES[which], wrong, field=FIELDS[which],
                      after=(0, 60))
        b.t[wrong] += w.rng.integers(5, 40, n)[wrong]
        bad = b.take(wrong)
        w.log.emit(bad, "card_details_entered",
                   props(len(bad), valid=False, field=FIELDS[which][wrong],
                         error="invalid_format", saved_card=False))
        gone = wrong & w.chance(n, np.where(rage, quits + 0.1, quits))
        left |= gone
        wrong &= ~gone
        signals.edit(w, b, FIELDS[which], FIELD_DWELL[which], wrong, edits=1.0, fumble=0.12)
        signals.press(w, b, "#pay-button", wrong)
        wrong &= w.chance(n, again)
    return ~left


def pay(w: World, b: Batch, attempt: int = 1) -> Batch:
    """``card_payment``; returns the successful payments (orders)."""
    n = len(b)
    v2 = b.t >= w.change
    amount = np.round(w.rng.lognormal(np.log(45), 0.9, n), 2)
    w.log.emit(b, "checkout_payment_opened",
               props(n, amount=amount, currency="EUR", attempt=attempt))
    opened = b.t.copy()
    b.t = b.t + w.rng.integers(20, 150, n)
    w.log.emit(b, "page_viewed", props(n, page="payment"))
    # Gateway latency: the gateway change is the deliberate improvement of the period.
    load = w.wait(n, np.where(v2, 2.0, 6.0) * np.where(b.mobile, 1.5, 1.0), 0.7)
    timeout = load > 30 * SECOND
    ready = opened + np.minimum(load, 30 * SECOND)
    rage = impatience(w, b, opened, ready)
    b.t = ready
    # Those who rage-clicked stay to see the page load (and many leave then).
    leaves = ~timeout & ~rage & w.chance(n, 0.02 + np.minimum(0.3, load / (80 * SECOND)))
    gw_fail = b.take(timeout)
    signals.error(w, gw_fail, "gateway_timeout", "The payment page could not be loaded. "
                  "Please try again.", after=(0, 1))
    gw_fail.t = gw_fail.t + w.rng.integers(50, 400, len(gw_fail))
    w.log.emit(gw_fail, "payment_failed", props(len(gw_fail), reason="gateway_timeout"))
    surveys.payment(w, gw_fail, "failed", np.ones(len(gw_fail), bool), np.zeros(len(gw_fail), bool))
    w.trouble(b.take(leaves), "card_payment")
    surveys.payment(w, b.take(leaves), "abandoned", load[leaves] > 8 * SECOND, rage[leaves])
    ok = ~timeout & ~leaves
    b, amount, load, v2, rage = b.take(ok), amount[ok], load[ok], v2[ok], rage[ok]
    version = np.where(v2, "v2", "v1").astype(object)
    w.log.emit(b, "payment_gateway_loaded",
               props(len(b), gateway_version=version, load_ms=load))
    fed_up = rage & w.chance(len(b), 0.3)
    quit_ = b.take(fed_up)
    quit_.t = quit_.t + w.wait(len(quit_), 4, 0.5)
    w.trouble(quit_, "card_payment")
    surveys.payment(w, quit_, "abandoned", load[fed_up] > 8 * SECOND, rage[fed_up])
    keep = ~fed_up
    b, amount, version, rage = b.take(keep), amount[keep], version[keep], rage[keep]
    slow = load[keep] > 8 * SECOND  # what the payment survey hears about
    n = len(b)
    saved = w.chance(n, np.where(b.channel == "app", 0.5, np.where(b.user, 0.3, 0.0)))
    stays = card_form(w, b, saved, rage, amount, version, attempt)
    w.trouble(b.take(~stays), "card_payment")
    surveys.payment(w, b.take(~stays), "abandoned", slow[~stays], rage[~stays])
    b, amount, saved, version = b.take(stays), amount[stays], saved[stays], version[stays]
    slow, rage = slow[stays], rage[stays]
    w.log.emit(b, "card_details_entered", props(len(b), valid=True, saved_card=saved))
    n = len(b)
    sca = w.chance(n, np.where(b.channel == "app", 0.3, 0.55))
    b.row = np.arange(n)
    verified, failed_3ds = threeds(w, b.take(sca))
    w.log.emit(failed_3ds, "payment_failed", props(len(failed_3ds), reason="3ds_failed"))
    surveys.payment(w, failed_3ds, "failed", slow[failed_3ds.row], rage[failed_3ds.row])
    b = Batch.concat(b.take(~sca), verified)
    amount, version, slow, rage = amount[b.row], version[b.row], slow[b.row], rage[b.row]
    b.t = b.t + w.wait(len(b), 2.5, 0.5)
    declined = w.chance(len(b), 0.06)
    bad = b.take(declined)
    signals.error(w, bad, "payment_declined", "Your bank declined the payment. Try another "
                  "card or contact your bank.", after=(0, 1))
    bad.t = bad.t + w.rng.integers(20, 200, len(bad))
    w.log.emit(bad, "payment_failed", props(len(bad), reason=w.rng.choice(DECLINES, len(bad))))
    surveys.payment(w, bad, "failed", slow[declined], rage[declined])
    good = b.take(~declined)
    w.log.emit(good, "payment_succeeded",
               props(len(good), amount=amount[~declined], gateway_version=version[~declined]))
    surveys.payment(w, good, "completed", slow[~declined], rage[~declined])
    # After a failure many try again minutes later (a new attempt); others give up.
    failed = Batch.concat(gw_fail, bad, failed_3ds)
    retry = w.chance(len(failed), 0.45) & (attempt < 3)
    if attempt == 1:  # a failed payment: the payment help intervention (one a day)
        retry |= helped(w, failed) & (attempt < 3)
    w.trouble(failed.take(~retry), "card_payment")
    again = failed.take(retry)
    again.t = again.t + w.wait(len(again), 100, 0.8)
    if len(again):
        good = Batch.concat(good, pay(w, again, attempt + 1))
    return good


#: The payment help intervention (demo/moments.py declares it; offered at most once a day, on
#: the first failure of a checkout): its holdout share, and how
#: much more often those offered it try again (45% without it).
HOLDOUT, RETRY_HELPED = 0.2, 0.65


def helped(w: World, failed: Batch) -> np.ndarray:
    """The server's decision after a failed payment: a fifth are held out
    (``intervention_held``), the others are offered help (``intervention_offered``; the page
    shows it, most accept it). Returns who, helped, tries again beyond the 45% who would
    have anyway: the help makes a retry likelier. Draws from its own stream."""
    n = len(failed)
    rng = w.offer_rng
    if n == 0:
        return np.zeros(0, bool)
    held = rng.random(n) < HOLDOUT
    decided = failed.copy()
    decided.t = decided.t + rng.integers(300, 1500, n)
    ids = unique_hex(rng, n, 16, "dec-")
    about = dict(intervention="payment_help", moment="card_payment", offer="help", signal="failure")
    for mask, event in ((held, "intervention_held"), (~held, "intervention_offered")):
        part = decided.take(mask)
        w.log.emit(part, event, props(len(part), decision=ids[mask], holdout=bool(event.endswith("held")),
                                      **about))
    shown = decided.take(~held)
    shown.t = shown.t + 200
    w.log.emit(shown, "intervention_shown", props(len(shown), decision=ids[~held], **about))
    took = rng.random(len(shown)) < 0.6
    shown.t = shown.t + rng.integers(2, 15, len(shown)) * SECOND
    for mask, event in ((took, "intervention_accepted"), (~took, "intervention_dismissed")):
        part = shown.take(mask)
        w.log.emit(part, event, props(len(part), decision=ids[~held][mask], **about))
    extra = np.zeros(n, bool)
    extra[~held] = rng.random(int((~held).sum())) < (RETRY_HELPED - 0.45) / (1 - 0.45)
    return extra


def tracking(w: World, b: Batch, order: np.ndarray, delayed: np.ndarray) -> Batch:
    """``delivery_tracking``: opened → status loaded (refreshed when anxious) → ETA seen."""
    n = len(b)
    source = np.where(b.user, "account", "email_link").astype(object)
    w.log.emit(b, "tracking_opened", props(n, order_id=order, source=source))
    load = w.wait(n, np.where(b.mobile, 2.0, 1.2), 0.9)
    b.t = b.t + load
    error = w.chance(n, np.where(load > 8 * SECOND, 0.25, 0.02))
    err = b.take(error)
    signals.error(w, err, "carrier_api_timeout", "We can't show your parcel's status right now.",
                  after=(0, 1))
    err.t = err.t + w.rng.integers(20, 200, len(err))
    w.log.emit(err, "tracking_error", props(len(err), error="carrier_api_timeout"))
    w.trouble(err, "delivery_tracking")
    b, order, delayed = b.take(~error), order[~error], delayed[~error]
    status = np.where(delayed, "delayed", "in_transit").astype(object)
    w.log.emit(b, "tracking_status_loaded", props(len(b), status=status, order_id=order))
    # Uncertainty: a late parcel makes people reload the status again and again,
    # seconds apart; each reload makes a contact likelier than the answer.
    n = len(b)
    refresh = w.chance(n, np.where(delayed, 0.6, 0.12))
    reloads = np.zeros(n, dtype=np.int64)
    for _ in range(5):
        signals.later(w, b, 20, refresh)
        w.log.where(b, refresh, "tracking_status_loaded", status=status, order_id=order,
                    refresh=True)
        reloads += refresh
        refresh = refresh & w.chance(n, np.where(delayed, 0.6, 0.3))
    stays = w.chance(n, 0.93 - 0.06 * reloads)
    w.trouble(b.take(~stays), "delivery_tracking")
    b, order = b.take(stays), order[stays]
    b.t = b.t + w.wait(len(b), 3, 0.6)
    w.log.emit(b, "delivery_eta_viewed", props(len(b), order_id=order))
    return b


def delay_notice(w: World, o: Batch, order: np.ndarray, eta: np.ndarray) -> None:
    """``delivery_delay_notice``: notice → opened → tracking → slot confirmed / cancelled."""
    n = len(o)
    sms = w.chance(n, 0.4)
    channel = np.where(sms, "sms", "email").astype(object)
    o.t = eta - 6 * HOUR - w.rng.integers(0, 14 * HOUR, n)
    w.notify(o, "delay_notice_sent", channel,
             props(n, order_id=order, new_eta_days=w.rng.integers(1, 4, n)))
    opens = w.chance(n, np.where(sms, 0.85, 0.65))
    seen = o.take(opens)
    seen.t = seen.t + w.wait(len(seen), np.where(sms[opens], 600, 2700), 1.1)
    w.notify(seen, "delay_notice_opened", channel[opens], props(len(seen), order_id=order[opens]))
    clicks = w.chance(len(seen), 0.85)
    b = w.digital(seen.pid[clicks], seen.t[clicks] + w.wait(int(clicks.sum()), 60, 0.8), 0.45)
    b = tracking(w, b, order[opens][clicks], np.ones(len(b), dtype=bool))
    b.t = b.t + w.wait(len(b), 25, 0.7)
    outcome = w.rng.random(len(b))
    slot = b.take(outcome < 0.85)
    w.log.emit(slot, "delivery_slot_confirmed",
               props(len(slot), slot=w.rng.choice(SLOTS, len(slot))))
    cancel = b.take((outcome >= 0.85) & (outcome < 0.93))
    w.log.emit(cancel, "order_cancelled", props(len(cancel), reason="delivery_delay"))
    w.trouble(Batch.concat(cancel, b.take(outcome >= 0.93)), "delivery_delay_notice")
    w.trouble(o.take(~opens & w.chance(n, 0.1)), "delivery_delay_notice")


def run(w: World) -> None:
    """Shopping sessions ending in a card payment; shop orders then get delivered."""
    n = w.size(0.9)
    b = w.digital(w.pick(n), w.starts(n), app_share=0.4, logged_in=(0.45, 0.9))
    guest = (b.channel == "web") & ~b.user & w.chance(n, 0.25)  # guest checkout stays anonymous
    b = Batch.concat(b.take(guest), enter(w, b.take(~guest)))
    browse(w, b, mean_pages=1.3)
    b.t = b.t + w.wait(len(b), 40, 0.8)
    w.log.emit(b, "basket_viewed", props(len(b)))
    b.t = b.t + w.wait(len(b), 20, 0.7)
    orders = pay(w, b)
    w.log.emit(orders, "order_confirmation_viewed", props(len(orders)))
    shop = orders.take(w.chance(len(orders), 0.65))  # the rest are bank bill payments
    k = len(shop)
    order = unique_hex(w.rng, k, 8, "NW-")
    eta = shop.t + DAY * w.rng.integers(2, 5, k)
    week6 = (shop.t >= w.start + 35 * DAY) & (shop.t < w.start + 42 * DAY)
    delayed = w.chance(k, np.where(week6, 0.35, 0.1))
    delay_notice(w, shop.take(delayed), order[delayed], eta[delayed])
    checks = w.rng.poisson(np.where(delayed, 1.6, 0.6))
    idx = np.repeat(np.arange(k), checks)
    when = shop.t[idx] + (w.rng.random(len(idx)) * (eta[idx] - shop.t[idx])).astype(np.int64)
    b = w.digital(shop.pid[idx], when, app_share=0.45, logged_in=(0.4, 0.8))
    tracking(w, b, order[idx], delayed[idx])
