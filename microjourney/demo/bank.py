"""Bank flows: blocking a card in the app, and opening an account with an ID check.

Known structure: a core-banking incident on day 17 (08:00-20:00 UTC) makes card
blocking fail for almost half of the customers (the confirm button hangs: dead and
rage clicks); document uploads from Android phones and desktop webcams are rejected
for quality more often, and the ``auto_capture`` upload variant halves those
rejections. The application form is long (tax number, address: help and long
dwell), asks the address again at the ID check for passports and the email again
at the terms; sessions that expire mid-task make people log in again.
"""

from __future__ import annotations

import numpy as np

from . import signals
from .access import enter, reauth
from .world import ANDROID, DAY, DESKTOP, HOUR, SECOND, Batch, World, props

REASONS = np.array(["lost", "stolen", "damaged", "suspected_fraud"], dtype=object)
ISSUES = np.array(["blurry", "glare", "cropped", "expired_document"], dtype=object)
ISSUE_CODES = np.array(["document_blurry", "document_glare", "document_cropped",
                        "document_expired"], dtype=object)
ISSUE_MESSAGES = np.array([
    "Your photo is blurry. Hold the document still and try again.",
    "There is glare on your document. Move away from the light and try again.",
    "Part of the document is cut off. Fit all four corners in the frame.",
    "This document has expired. Use a valid passport, ID card or driving licence."],
    dtype=object)
DOCUMENTS = np.array(["passport", "id_card", "driving_licence"], dtype=object)
#: The application form in order: field, median seconds in it on a desktop, share who
#: fight it (many edits), share who stop to look something up.
FORM = (("first_name", 4.0, 0.0, 0.0), ("last_name", 4.0, 0.0, 0.0),
        ("date_of_birth", 7.0, 0.08, 0.0), ("mobile_number", 8.0, 0.03, 0.0),
        ("address", 12.0, 0.04, 0.1), ("employment_status", 5.0, 0.0, 0.0),
        ("annual_income", 8.0, 0.02, 0.05), ("tax_id", 10.0, 0.04, 0.25))
#: Fields checked as they are left: error code, message, share refused.
CHECKS = {"date_of_birth": ("invalid_date", "Enter your date of birth as DD/MM/YYYY.", 0.08),
          "mobile_number": ("invalid_phone", "Enter a mobile number with the country code.", 0.05),
          "tax_id": ("invalid_tax_id", "This tax number is not valid. It has 11 digits.", 0.07)}
#: Fields people open the help for, and how many of them do.
HELP = {"annual_income": 0.05, "tax_id": 0.12}
SESSION = "Your session has expired. Log in again to continue."


def card_block(w: World) -> None:
    """``card_block``: opened → card selected → reason chosen → card_blocked / failed.

    Customers who are not logged in often use the *lost or stolen card?* shortcut on
    the login screen, which asks who they are inside the attempt. The app locks itself
    while some look for the card (the web session expires), and they prove who they are
    again: a second login inside the attempt for those who came by the shortcut.
    """
    n = w.size(0.07)
    b = w.digital(w.pick(n), w.starts(n), app_share=0.8, logged_in=(0.35, 0.5))
    quick = ~b.user & w.chance(n, np.where(b.channel == "app", 0.7, 0.5))
    fast, slow = b.split(quick)
    slow = enter(w, slow)
    app = fast.channel == "app"
    k = len(fast)
    w.log.emit(fast, np.where(app, "app_opened", "page_viewed"),
               props(k, page=np.where(app, "login", "home")))
    fast.t = fast.t + w.wait(k, 3, 0.6)
    w.log.emit(fast, "card_block_opened", props(k, entry="login_screen"))
    fast.t = fast.t + w.wait(k, 2, 0.5)
    reauth(w, fast, np.ones(k, dtype=bool), "card_block_shortcut")
    entry = np.where(slow.channel == "app", "cards_tab", "menu").astype(object)
    w.log.emit(slow, "card_block_opened", props(len(slow), entry=entry))
    b = Batch.concat(slow, fast)
    n = len(b)
    b.t = b.t + w.wait(n, 4, 0.5)
    stays = w.chance(n, 0.97)
    w.trouble(b.take(~stays), "card_block")
    b = b.take(stays)
    n = len(b)
    w.log.emit(b, "card_selected", props(n, card=w.choose(["debit", "credit"], n)))
    b.t = b.t + w.wait(n, 5, 0.6)
    # Looking for the card in a wallet: the app locks itself, the web session expires.
    relock = w.chance(n, np.where(b.channel == "app", 0.07, 0.04))
    signals.later(w, b, 40, relock, 0.5)
    signals.error(w, b, "session_expired", SESSION, relock & (b.channel == "web"), after=(0, 1))
    reauth(w, b, relock, "session_expired")
    reason = w.rng.choice(REASONS, n, p=[0.5, 0.2, 0.15, 0.15])
    signals.later(w, b, 1, relock, 0.5)
    w.log.emit(b, "block_reason_chosen", props(n, reason=reason))
    incident = (b.t >= w.start + 17 * DAY + 8 * HOUR) & (b.t < w.start + 17 * DAY + 20 * HOUR)
    fails = w.chance(n, np.where(incident, 0.45, 0.03))
    # During the incident the confirm button hangs: a dead click, often a rage burst,
    # then the request times out.
    hangs = fails & incident
    signals.press(w, b, "#confirm-block", ~hangs)
    b.t[~hangs] += w.wait(n, 0.8, 0.5)[~hangs]
    b.t[hangs] += w.rng.integers(400, 2_500, n)[hangs]
    signals.click(w, b, "#confirm-block", hangs, dead=True)
    b.t[hangs] += w.rng.integers(signals.SILENT, 5 * SECOND, n)[hangs]
    signals.rage(w, b, "#confirm-block", w.rng.integers(3, 7, n), hangs & w.chance(n, 0.6))
    b.t[hangs] += w.wait(n, 12, 0.4)[hangs]
    signals.error(w, b, "core_banking_unavailable", "We couldn't block your card right now. "
                  "Please call us on the card line.", fails, after=(0, 1))
    b.t[fails] += w.rng.integers(20, 200, n)[fails]
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

    A rejected photo shows its reason (some open the photo tips); a passport has no
    address, so the address is asked again; the session expires for a few, who log
    in again. Returns (verified, not verified); the second group includes those who
    gave up.
    """
    n = len(b)
    auto = w.people.coin[b.pid] >= 0.5
    variant = np.where(auto, "auto_capture", "manual_photo").astype(object)
    document = w.rng.choice(DOCUMENTS, n, p=[0.45, 0.4, 0.15])
    w.log.emit(b, "experiment_exposure", props(n, experiment="auto_capture", variant=variant))
    w.log.emit(b, "id_check_started", props(n, document_type=document, step_variant=variant))
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
        issue = w.rng.integers(0, len(ISSUES), n)
        signals.error(w, b, ISSUE_CODES[issue], ISSUE_MESSAGES[issue], rejected,
                      after=(0, 1))
        b.t[rejected] += w.rng.integers(5, 40, n)[rejected]
        w.log.where(b, rejected, "document_uploaded", quality_ok=False, issue=ISSUES[issue],
                    upload_attempt=attempt, step_variant=variant)
        w.log.where(b, ok, "document_uploaded", quality_ok=True, upload_attempt=attempt,
                    step_variant=variant)
        done |= ok
        gone |= rejected & w.chance(n, 0.12)
        signals.help_opened(w, b, "document_photo_tips",
                            rejected & ~gone & w.chance(n, 0.25), read_s=20)
    unreadable = ~done & ~gone
    failed = b.take(unreadable)
    w.log.emit(failed, "id_check_failed", props(len(failed), reason="document_unreadable"))
    quit_ = b.take(gone)
    b, document = b.take(done), document[done]
    n = len(b)
    selfie = w.chance(n, 0.96)
    quit_ = Batch.concat(quit_, b.take(~selfie))
    b, document = b.take(selfie), document[selfie]
    n = len(b)
    # Redundant input: a passport shows no address, so the form asks it again.
    signals.edit(w, b, "address", 10, document == "passport", edits=0.3)
    expires = w.chance(n, 0.06)
    signals.later(w, b, 20, expires, 0.5)
    signals.error(w, b, "session_expired", SESSION, expires, after=(0, 1))
    reauth(w, b, expires, "session_expired")
    b.t = b.t + w.wait(n, 20, 0.6)
    w.log.emit(b, "selfie_captured", props(n, liveness_ok=True))
    b.t = b.t + w.wait(n, 20, 1.0)
    live = w.chance(n, 0.95)
    fail2 = b.take(~live)
    w.log.emit(fail2, "id_check_failed", props(len(fail2), reason="liveness_check"))
    ok = b.take(live)
    w.log.emit(ok, "id_verified", props(len(ok), method="automatic"))
    lost = Batch.concat(failed, fail2, quit_)
    w.trouble(lost, "id_verification")
    return ok, lost


def application_form(w: World, b: Batch) -> np.ndarray:
    """The long form, field by field; returns who stopped for good.

    Fields are checked as they are left (an error, then the field again); some open
    the help first. People stop along the way, more often right after an error, a
    struggle with a field or a look at the help; under a third of them come back a day
    or two later in a new session, log in again and go on from there.
    """
    n = len(b)
    active = np.ones(n, dtype=bool)
    resumed = np.zeros(n, dtype=bool)
    for i, (field, dwell, fumble, hunt) in enumerate(FORM):
        helped = active & w.chance(n, HELP.get(field, 0.0))
        signals.help_opened(w, b, field, helped)
        hard = signals.edit(w, b, field, dwell, active, edits=0.3, fumble=fumble, hunt=hunt,
                            pause_s=8)
        code, message, share = CHECKS.get(field, ("", "", 0.0))
        wrong = active & w.chance(n, np.where(b.mobile, 1.5 * share, share))
        signals.error(w, b, code, message, wrong, field=field, after=(100, 400))
        stop = active & w.chance(n, (0.006 if i else 0.0) + 0.35 * wrong + 0.1 * hard
                                 + 0.12 * helped)
        back = stop & ~resumed & w.chance(n, 0.25)
        b.t[back] += w.rng.integers(DAY // 2, 2 * DAY, n)[back]
        b.session = np.where(back, w.sessions(n, "s-"), b.session)
        reauth(w, b, back, "resume_application")
        b.t[back] += w.wait(n, 3, 0.5)[back]
        w.log.where(b, back, "application_resumed")
        active &= ~stop | back
        resumed |= back
        signals.edit(w, b, field, dwell, wrong & active, edits=1.0, fumble=0.1)
    return ~active


def onboarding(w: World) -> None:
    """``account_opening`` by prospects: details → ID check → terms → account_opened.

    The application starts by creating a login (email and password), so that it can be
    resumed: prospects are known by their new customer id from there on.
    """
    p = w.people
    pid = np.flatnonzero(p.prospect)
    b = w.digital(pid, w.starts(len(pid)), app_share=0.6, logged_in=(0.0, 0.0))
    n = len(b)
    w.log.emit(b, "page_viewed", props(n, page="open_an_account"))
    b.t = b.t + w.wait(n, 30, 0.8)
    product = np.where(p.segment[b.pid] == 2, "business_account",
                       w.rng.choice(["current_account", "savings_account"], n, p=[0.8, 0.2]))
    w.log.emit(b, "application_started", props(n, product=product.astype(object)))
    signals.edit(w, b, "email", 6, edits=0.2, pause_s=4)
    signals.edit(w, b, "password", 9, edits=0.4, fumble=0.04)
    signals.press(w, b, "#create-login")
    b.user = np.ones(n, dtype=bool)  # the new customer id, linked to the device
    w.log.emit(b, "logged_in", props(n, method="new_application"))
    stopped = application_form(w, b)
    w.trouble(b.take(stopped & w.chance(n, 0.2)), "account_opening")
    b = b.take(~stopped)
    signals.press(w, b, "#continue")
    w.log.emit(b, "personal_details_submitted", props(len(b)))
    b.t = b.t + w.wait(len(b), 20, 0.5)
    ok, _lost = id_verification(w, b)
    terms = w.chance(len(ok), 0.97)
    ok = ok.take(terms)
    # Redundant input: the contract page asks for the email address once more.
    ok.t = ok.t + w.wait(len(ok), 25, 0.6)
    signals.edit(w, ok, "email", 6, edits=0.2)
    signals.press(w, ok, "#accept-terms")
    w.log.emit(ok, "terms_accepted", props(len(ok)))
    ok.t = ok.t + w.wait(len(ok), 8, 1.0)
    rejected = w.chance(len(ok), 0.06)
    no = ok.take(rejected)
    w.log.emit(no, "application_rejected", props(len(no), reason="credit_check"))
    yes = ok.take(~rejected)
    w.log.emit(yes, "account_opened", props(len(yes), via="digital"))
    yes.t = yes.t + w.wait(len(yes), 30, 0.5)
    w.notify(yes, "welcome_email_sent", "email", props(len(yes)))


def run(w: World) -> None:
    card_block(w)
    onboarding(w)
