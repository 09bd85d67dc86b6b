"""Shop flows: card payment with 3-D Secure, then delivery tracking and delay notices.

Known structure worth finding in the data: the payment gateway is slow before the
change day (worse on phones) and loses customers while it loads; from the change
day gateway ``v2`` loads about three times faster and completion improves. A
carrier problem in week 6 multiplies delay notices and anxious tracking checks.
"""

from __future__ import annotations

import numpy as np

from .access import browse, enter
from .world import DAY, HOUR, MINUTE, SECOND, Batch, World, props, unique_hex

DECLINES = np.array(["card_declined", "insufficient_funds", "do_not_honour", "expired_card"],
                    dtype=object)
FIELDS = np.array(["card_number", "expiry", "cvc"], dtype=object)
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
    w.trouble(b.take(~stays & ~timeout), "three_ds_verification")
    b, kind = b.take(stays), kind[stays]
    wrong = (kind == "sms_otp") & w.chance(len(b), 0.12)
    w.log.emit(b.take(wrong), "threeds_code_entered",
               props(int(wrong.sum()), valid=False, method="sms_otp"))
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


def pay(w: World, b: Batch, attempt: int = 1) -> Batch:
    """``card_payment``; returns the successful payments (orders)."""
    n = len(b)
    v2 = b.t >= w.change
    amount = np.round(w.rng.lognormal(np.log(45), 0.9, n), 2)
    w.log.emit(b, "checkout_payment_opened",
               props(n, amount=amount, currency="EUR", attempt=attempt))
    # Gateway latency: the gateway change is the deliberate improvement of the period.
    load = w.wait(n, np.where(v2, 2.0, 6.0) * np.where(b.mobile, 1.5, 1.0), 0.7)
    timeout = load > 30 * SECOND
    b.t = b.t + np.minimum(load, 30 * SECOND)
    leaves = ~timeout & w.chance(n, 0.02 + np.minimum(0.3, load / (80 * SECOND)))
    gw_fail = b.take(timeout)
    w.log.emit(gw_fail, "payment_failed", props(len(gw_fail), reason="gateway_timeout"))
    w.trouble(b.take(leaves), "card_payment")
    ok = ~timeout & ~leaves
    b, amount, load, v2 = b.take(ok), amount[ok], load[ok], v2[ok]
    version = np.where(v2, "v2", "v1").astype(object)
    w.log.emit(b, "payment_gateway_loaded",
               props(len(b), gateway_version=version, load_ms=load))
    n = len(b)
    saved = w.chance(n, np.where(b.channel == "app", 0.5, np.where(b.user, 0.3, 0.0)))
    b.t = b.t + w.wait(n, np.where(saved, 6, np.where(b.mobile, 55, 40)), 0.5)
    # Typing mistakes: one, sometimes two invalid submissions before a valid one.
    wrong = ~saved & w.chance(n, np.where(b.mobile, 0.22, 0.14))
    for twice in (False, True):
        bad = b.take(wrong)
        w.log.emit(bad, "card_details_entered",
                   props(len(bad), valid=False, field=w.rng.choice(FIELDS, len(bad)),
                         error="invalid_format", saved_card=False))
        b.t = b.t + np.where(wrong, w.wait(n, 15, 0.6), 0)
        if not twice:
            wrong = wrong & w.chance(n, 0.25)
    stays = w.chance(n, np.where(wrong, 0.85, 0.97))
    w.trouble(b.take(~stays), "card_payment")
    b, amount, saved, version = b.take(stays), amount[stays], saved[stays], version[stays]
    w.log.emit(b, "card_details_entered", props(len(b), valid=True, saved_card=saved))
    n = len(b)
    sca = w.chance(n, np.where(b.channel == "app", 0.3, 0.55))
    b.row = np.arange(n)
    verified, failed_3ds = threeds(w, b.take(sca))
    w.log.emit(failed_3ds, "payment_failed", props(len(failed_3ds), reason="3ds_failed"))
    b = Batch.concat(b.take(~sca), verified)
    amount, version = amount[b.row], version[b.row]
    b.t = b.t + w.wait(len(b), 2.5, 0.5)
    declined = w.chance(len(b), 0.06)
    bad = b.take(declined)
    w.log.emit(bad, "payment_failed", props(len(bad), reason=w.rng.choice(DECLINES, len(bad))))
    good = b.take(~declined)
    w.log.emit(good, "payment_succeeded",
               props(len(good), amount=amount[~declined], gateway_version=version[~declined]))
    # After a failure many try again minutes later (a new attempt); others give up.
    failed = Batch.concat(gw_fail, bad, failed_3ds)
    retry = w.chance(len(failed), 0.45) & (attempt < 3)
    w.trouble(failed.take(~retry), "card_payment")
    again = failed.take(retry)
    again.t = again.t + w.wait(len(again), 100, 0.8)
    if len(again):
        good = Batch.concat(good, pay(w, again, attempt + 1))
    return good


def tracking(w: World, b: Batch, order: np.ndarray, delayed: np.ndarray) -> Batch:
    """``delivery_tracking``: opened → status loaded (refreshed when anxious) → ETA seen."""
    n = len(b)
    source = np.where(b.user, "account", "email_link").astype(object)
    w.log.emit(b, "tracking_opened", props(n, order_id=order, source=source))
    load = w.wait(n, np.where(b.mobile, 2.0, 1.2), 0.9)
    b.t = b.t + load
    error = w.chance(n, np.where(load > 8 * SECOND, 0.25, 0.02))
    err = b.take(error)
    w.log.emit(err, "tracking_error", props(len(err), error="carrier_api_timeout"))
    w.trouble(err, "delivery_tracking")
    b, order, delayed = b.take(~error), order[~error], delayed[~error]
    status = np.where(delayed, "delayed", "in_transit").astype(object)
    w.log.emit(b, "tracking_status_loaded", props(len(b), status=status, order_id=order))
    # Uncertainty: an anxious customer refreshes the status again and again.
    refresh = w.chance(len(b), np.where(delayed, 0.45, 0.15))
    for _ in range(3):
        again = b.take(refresh)
        again.t = again.t + w.wait(len(again), 25, 0.6)
        b.t[refresh] = again.t
        w.log.emit(again, "tracking_status_loaded",
                   props(len(again), status=status[refresh], order_id=order[refresh], refresh=True))
        refresh = refresh & w.chance(len(b), 0.4)
    stays = w.chance(len(b), 0.9)
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
    browse(w, b, mean_pages=1.5)
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
