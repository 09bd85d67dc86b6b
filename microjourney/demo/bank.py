"""Bank flows: blocking a card in the app, and opening an account with an ID check.

Known structure: a core-banking incident on day 17 (08:00-20:00 UTC) makes card
blocking fail for almost half of the customers; document uploads from Android
phones and desktop webcams are rejected for quality more often, and the
``auto_capture`` upload variant halves those rejections.
"""

from __future__ import annotations

import numpy as np

from .access import enter
from .world import ANDROID, DAY, DESKTOP, HOUR, Batch, World, props

REASONS = np.array(["lost", "stolen", "damaged", "suspected_fraud"], dtype=object)
ISSUES = np.array(["blurry", "glare", "cropped", "expired_document"], dtype=object)
DOCUMENTS = np.array(["passport", "id_card", "driving_licence"], dtype=object)


def card_block(w: World) -> None:
    """``card_block``: opened → card selected → reason chosen → card_blocked / failed."""
    n = w.size(0.07)
    b = w.digital(w.pick(n), w.starts(n), app_share=0.8, logged_in=(0.5, 0.9))
    b = enter(w, b)
    n = len(b)
    entry = np.where(b.channel == "app", "cards_tab", "menu").astype(object)
    w.log.emit(b, "card_block_opened", props(n, entry=entry))
    b.t = b.t + w.wait(n, 4, 0.5)
    stays = w.chance(n, 0.97)
    w.trouble(b.take(~stays), "card_block")
    b = b.take(stays)
    w.log.emit(b, "card_selected", props(len(b), card=w.choose(["debit", "credit"], len(b))))
    b.t = b.t + w.wait(len(b), 5, 0.6)
    reason = w.rng.choice(REASONS, len(b), p=[0.5, 0.2, 0.15, 0.15])
    w.log.emit(b, "block_reason_chosen", props(len(b), reason=reason))
    b.t = b.t + w.wait(len(b), 1.5, 0.8)
    incident = (b.t >= w.start + 17 * DAY + 8 * HOUR) & (b.t < w.start + 17 * DAY + 20 * HOUR)
    fails = w.chance(len(b), np.where(incident, 0.45, 0.03))
    bad = b.take(fails)
    w.log.emit(bad, "card_block_failed", props(len(bad), reason="core_banking_unavailable"))
    w.trouble(bad, "card_block")  # a lost card cannot wait: most of these will call
    good = b.take(~fails)
    w.log.emit(good, "card_blocked", props(len(good), reason=reason[~fails]))
    replace = good.take(w.chance(len(good), 0.7))
    replace.t = replace.t + w.wait(len(replace), 12, 0.5)
    w.log.emit(replace, "card_replacement_ordered", props(len(replace)))


def id_verification(w: World, b: Batch) -> tuple[Batch, Batch]:
    """``id_verification``: started → document uploaded (good) → selfie → verified / failed.

    Returns (verified, not verified); the second group includes those who gave up.
    """
    n = len(b)
    auto = w.people.coin[b.pid] >= 0.5
    variant = np.where(auto, "auto_capture", "manual_photo").astype(object)
    w.log.emit(b, "id_check_started",
               props(n, document_type=w.rng.choice(DOCUMENTS, n, p=[0.45, 0.4, 0.15]),
                     step_variant=variant))
    p = w.people
    os_ = np.where(b.device == DESKTOP, p.desktop_os[b.pid], p.mobile_os[b.pid])
    bad_p = np.where(b.device == DESKTOP, 0.38, np.where(os_ == ANDROID, 0.4, 0.25))
    bad_p = bad_p * np.where(auto, 0.5, 1.0)
    done = np.zeros(n, dtype=bool)
    gone = np.zeros(n, dtype=bool)
    for attempt in (1, 2, 3):
        live = ~done & ~gone
        b.t = b.t + np.where(live, w.wait(n, 50 * np.where(os_ == ANDROID, 1.3, 1.0), 0.6), 0)
        ok = live & ~w.chance(n, bad_p)
        rejected = live & ~ok
        w.log.where(b, rejected, "document_uploaded", quality_ok=False,
                    issue=w.choose(ISSUES, n), upload_attempt=attempt, step_variant=variant)
        w.log.where(b, ok, "document_uploaded", quality_ok=True, upload_attempt=attempt,
                    step_variant=variant)
        done |= ok
        gone |= rejected & w.chance(n, 0.12)
    unreadable = ~done & ~gone
    failed = b.take(unreadable)
    w.log.emit(failed, "id_check_failed", props(len(failed), reason="document_unreadable"))
    quit_ = b.take(gone)
    b = b.take(done)
    b.t = b.t + w.wait(len(b), 25, 0.6)
    selfie = w.chance(len(b), 0.96)
    quit_ = Batch.concat(quit_, b.take(~selfie))
    b = b.take(selfie)
    w.log.emit(b, "selfie_captured", props(len(b), liveness_ok=True))
    b.t = b.t + w.wait(len(b), 20, 1.0)
    live = w.chance(len(b), 0.95)
    fail2 = b.take(~live)
    w.log.emit(fail2, "id_check_failed", props(len(fail2), reason="liveness_check"))
    ok = b.take(live)
    w.log.emit(ok, "id_verified", props(len(ok), method="automatic"))
    lost = Batch.concat(failed, fail2, quit_)
    w.trouble(lost, "id_verification")
    return ok, lost


def onboarding(w: World) -> None:
    """``account_opening`` by prospects: details → ID check → terms → account_opened."""
    p = w.people
    pid = np.flatnonzero(p.prospect)
    b = w.digital(pid, w.starts(len(pid)), app_share=0.6, logged_in=(0.0, 0.0))
    n = len(b)
    w.log.emit(b, "page_viewed", props(n, page="open_an_account"))
    b.t = b.t + w.wait(n, 30, 0.8)
    product = np.where(p.segment[b.pid] == 2, "business_account",
                       w.rng.choice(["current_account", "savings_account"], n, p=[0.8, 0.2]))
    w.log.emit(b, "application_started", props(n, product=product.astype(object)))
    b.t = b.t + w.wait(n, 240, 0.5)
    # Some stop at the long form and come back a day or two later in a new session.
    stop = w.chance(n, 0.2)
    back = stop & w.chance(n, 0.35)
    w.trouble(b.take(stop & ~back & w.chance(n, 0.2)), "account_opening")
    b.t = b.t + np.where(back, w.rng.integers(DAY // 2, 2 * DAY, n), 0)
    b.session = np.where(back, w.sessions(n, "s-"), b.session)
    w.log.emit(b.take(back), "application_resumed", props(int(back.sum())))
    b = b.take(~stop | back)
    w.log.emit(b, "personal_details_submitted", props(len(b)))
    b.t = b.t + w.wait(len(b), 20, 0.5)
    ok, _lost = id_verification(w, b)
    ok.t = ok.t + w.wait(len(ok), 40, 0.6)
    terms = w.chance(len(ok), 0.97)
    ok = ok.take(terms)
    w.log.emit(ok, "terms_accepted", props(len(ok)))
    ok.t = ok.t + w.wait(len(ok), 8, 1.0)
    rejected = w.chance(len(ok), 0.06)
    no = ok.take(rejected)
    w.log.emit(no, "application_rejected", props(len(no), reason="credit_check"))
    yes = ok.take(~rejected)
    yes.user = np.ones(len(yes), dtype=bool)  # the new customer id, linked to the device
    w.log.emit(yes, "account_opened", props(len(yes), via="digital"))
    yes.t = yes.t + w.wait(len(yes), 30, 0.5)
    w.notify(yes, "welcome_email_sent", "email", props(len(yes)))


def run(w: World) -> None:
    card_block(w)
    onboarding(w)
