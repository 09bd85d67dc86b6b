"""Account access flows: browsing sessions, login and password reset.

Web and app events carry the device's anonymous id; the user id appears from
``logged_in`` on (that event carries both and links them), so a realistic share of
each session is anonymous before login.
"""

from __future__ import annotations

import numpy as np

from .world import SECOND, Batch, World, props

PAGES = np.array(["home", "offers", "products", "help", "account_overview", "statements",
                  "savings", "mortgages"], dtype=object)


def enter(w: World, b: Batch, login_share: float = 1.0) -> Batch:
    """Land in a session, then log in where needed; returns the rows that go on."""
    app = b.channel == "app"
    w.log.emit(b, np.where(app, "app_opened", "page_viewed"),
               props(len(b), page=np.where(app, "launch", "home")))
    b.t = b.t + w.wait(len(b), 4, 0.8)
    need = ~b.user & w.chance(len(b), login_share)
    stay, log_in = b.split(~need)
    return Batch.concat(stay, login(w, log_in))


def browse(w: World, b: Batch, mean_pages: float = 2.0) -> None:
    """A few page views that match no moment (the noise every real site has)."""
    alive = b
    for _ in range(6):
        alive = alive.take(w.chance(len(alive), mean_pages / (1 + mean_pages)))
        alive.t = alive.t + w.wait(len(alive), 18, 0.9)
        w.log.emit(alive, "page_viewed", props(len(alive), page=w.rng.choice(PAGES, len(alive))))


def login(w: World, b: Batch) -> Batch:
    """``login``: login_started → credentials_submitted (valid) → logged_in / login_failed."""
    n = len(b)
    app = b.channel == "app"
    method = np.where(app & w.chance(n, 0.55), "biometric", "password").astype(object)
    w.log.emit(b, "login_started", props(n, method=method))
    going = w.chance(n, 0.96)
    w.trouble(b.take(~going & w.chance(n, 0.3)), "login")
    b, method = b.take(going), method[going]
    b.t = b.t + w.wait(len(b), np.where(method == "biometric", 2, 9), 0.5)
    # Wrong passwords: each try fails more often on a phone keyboard; 3 strikes lock.
    tries = np.zeros(len(b), dtype=int)
    wrong = (method == "password") & w.chance(len(b), np.where(b.mobile, 0.2, 0.14))
    while wrong.any():
        bad = b.take(wrong)
        w.log.emit(bad, "credentials_submitted",
                   props(len(bad), valid=False, error="wrong_password", method="password"))
        tries[wrong] += 1
        b.t[wrong] += w.wait(int(wrong.sum()), 8, 0.6)
        wrong = wrong & (tries < 3) & w.chance(len(b), 0.45)
    locked = tries >= 3
    gone = ~locked & (tries > 0) & w.chance(len(b), 0.1)
    lock = b.take(locked)
    w.log.emit(lock, "login_failed", props(len(lock), reason="account_locked"))
    w.trouble(b.take(gone), "login")
    # Locked out: about half go straight to a password reset, some call instead.
    resets = w.chance(len(lock), 0.55)
    reset, rest = lock.split(resets)
    w.trouble(rest.take(w.chance(len(rest), 0.45)), "login")
    reset.t = reset.t + w.wait(len(reset), 90, 0.7)
    reset.session = w.sessions(len(reset), "s-")
    password_reset(w, reset)
    ok = ~locked & ~gone
    b, method = b.take(ok), method[ok]
    w.log.emit(b, "credentials_submitted", props(len(b), valid=True, method=method))
    # Web logins ask for a one-time code by SMS; a few codes never arrive.
    otp = (b.channel == "web") & w.chance(len(b), 0.4)
    coded = b.take(otp)
    coded.t = coded.t + w.wait(len(coded), 4, 0.9)
    w.notify(coded, "otp_sms_sent", "sms", props(len(coded), purpose="login"))
    arrived = w.chance(len(coded), 0.96)
    w.trouble(coded.take(~arrived), "login")
    coded = coded.take(arrived)
    coded.t = coded.t + w.wait(len(coded), 20, 0.8)
    w.log.emit(coded, "otp_entered", props(len(coded), valid=True))
    b = Batch.concat(b.take(~otp), coded)
    method = np.concatenate([method[~otp], method[otp][arrived]])
    b.t = b.t + w.wait(len(b), 1.2, 0.4)
    b.user = np.ones(len(b), dtype=bool)
    w.log.emit(b, "logged_in", props(len(b), method=method))
    return b


def password_reset(w: World, b: Batch) -> None:
    """``password_reset`` with an experiment: an email link (control) or an SMS code.

    Slow reset emails make people press *resend*, so the attempt repeats
    ``reset_email_sent``; links opened after an hour have expired (the failure).
    """
    n = len(b)
    sms = w.people.coin[b.pid] < 0.5
    variant = np.where(sms, "sms_code", "email_link").astype(object)
    w.log.emit(b, "password_reset_requested",
               props(n, step_variant=variant, experiment="reset_by_sms"))
    delay = w.wait(n, np.where(sms, 6, 25), np.where(sms, 0.8, 1.4))
    sent = b.copy()
    sent.t = b.t + delay
    w.notify(sent, np.where(sms, "reset_code_sent", "reset_email_sent"),
             np.where(sms, "sms", "email").astype(object), props(n, step_variant=variant))
    # Impatient customers ask again when nothing arrives within a minute or two.
    resend = (delay > 100 * SECOND) & w.chance(n, 0.65)
    again = b.take(resend)
    again.t = again.t + 60 * SECOND + w.rng.integers(0, 40 * SECOND, len(again))
    w.log.emit(again, "password_reset_resend_clicked",
               props(len(again), step_variant=variant[resend]))
    again.t = again.t + w.wait(len(again), np.where(sms[resend], 5, 12), 0.6)
    w.notify(again, np.where(sms[resend], "reset_code_sent", "reset_email_sent"),
             np.where(sms[resend], "sms", "email").astype(object),
             props(len(again), step_variant=variant[resend], resend=True))
    arrival = sent.t.copy()
    arrival[resend] = np.minimum(arrival[resend], again.t)
    # Emails end up in spam or are left for later; SMS codes are read at once.
    opens = w.chance(n, np.where(sms, 0.93, 0.84))
    w.trouble(b.take(~opens & w.chance(n, 0.5)), "password_reset")
    b, sms, arrival = b.take(opens), sms[opens], arrival[opens]
    b.t = arrival + w.wait(len(b), np.where(sms, 25, 150), np.where(sms, 0.5, 1.6))
    link = b.take(~sms)
    link.session = w.sessions(len(link), "s-")  # the link opens a new browser session
    w.log.emit(link, "reset_link_opened", props(len(link), step_variant="email_link"))
    expired = link.t - arrival[~sms] > 3_600 * SECOND
    w.log.emit(link.take(expired), "reset_link_expired", props(int(expired.sum()), age_minutes=60))
    w.trouble(link.take(expired), "password_reset")
    code = b.take(sms)
    wrong = w.chance(len(code), 0.1)
    w.log.emit(code.take(wrong), "reset_code_entered",
               props(int(wrong.sum()), valid=False, step_variant="sms_code"))
    code.t = code.t + np.where(wrong, w.wait(len(code), 15), 0)
    w.log.emit(code, "reset_code_entered", props(len(code), valid=True, step_variant="sms_code"))
    b = Batch.concat(link.take(~expired), code)
    b.t = b.t + w.wait(len(b), 30, 0.6)
    weak = w.chance(len(b), 0.3)
    w.log.emit(b.take(weak), "new_password_set",
               props(int(weak.sum()), valid=False, error="too_weak"))
    b.t = b.t + np.where(weak, w.wait(len(b), 20, 0.5), 0)
    done = w.chance(len(b), np.where(weak, 0.93, 0.98))
    w.trouble(b.take(~done), "password_reset")
    b = b.take(done)
    w.log.emit(b, "new_password_set", props(len(b), valid=True))
    b.t = b.t + w.wait(len(b), 1.5, 0.3)
    b.user = np.ones(len(b), dtype=bool)  # the reset signs the person in: links the ids
    w.log.emit(b, "password_reset_completed", props(len(b)))


def run(w: World) -> None:
    """Browsing-only sessions (some with a login) and spontaneous password resets."""
    n = w.size(1.1)
    b = w.digital(w.pick(n), w.starts(n), app_share=0.5)
    b = enter(w, b, login_share=0.55)
    browse(w, b, mean_pages=2.5)
    m = w.size(0.05)
    r = w.digital(w.pick(m), w.starts(m), app_share=0.4, logged_in=(0.0, 0.0))
    w.log.emit(r, "page_viewed", props(m, page="login"))
    r.t = r.t + w.wait(m, 6, 0.6)
    password_reset(w, r)
