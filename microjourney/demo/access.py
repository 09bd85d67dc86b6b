"""Account access flows: browsing sessions, login and password reset.

Web and app events carry the device's anonymous id; the user id appears from
``logged_in`` on (that event carries both and links them), so a realistic share of
each session is anonymous before login.

Friction signals: typed fields send ``field_edited`` (the email, the password, codes),
the web login button is clicked, and a wrong password, code or weak new password
shows an error before the rejected step event. :func:`reauth` is the re-login in the
middle of another task (an expired session, a locked app).
"""

from __future__ import annotations

import numpy as np

from . import signals
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
    """A few page views that match no moment (the noise every real site has); the rows'
    clocks move on to their last page, so what follows comes after the browsing."""
    alive = b.copy()
    alive.row = np.arange(len(b))
    for _ in range(6):
        alive = alive.take(w.chance(len(alive), mean_pages / (1 + mean_pages)))
        alive.t = alive.t + w.wait(len(alive), 18, 0.9)
        w.log.emit(alive, "page_viewed", props(len(alive), page=w.rng.choice(PAGES, len(alive))))
        b.t[alive.row] = alive.t


def login(w: World, b: Batch) -> Batch:
    """``login``: login_started → credentials_submitted (valid) → logged_in / login_failed.

    Password logins type the email (unless the browser remembers it) and the password;
    a wrong password shows an error and is typed again, three strikes lock.
    """
    n = len(b)
    app = b.channel == "app"
    method = np.where(app & w.chance(n, 0.55), "biometric", "password").astype(object)
    w.log.emit(b, "login_started", props(n, method=method))
    going = w.chance(n, 0.96)
    w.trouble(b.take(~going & w.chance(n, 0.3)), "login")
    b, method = b.take(going), method[going]
    n = len(b)
    web = b.channel == "web"
    typed = method == "password"
    b.t[~typed] += w.wait(n, 2, 0.5)[~typed]
    signals.edit(w, b, "email", 5, typed & web & w.chance(n, 0.3), edits=0.2)
    signals.edit(w, b, "password", 3.5, typed, edits=0.3, fumble=0.03)
    submit(w, b, typed, web)
    # Wrong passwords: each try fails more often on a phone keyboard; 3 strikes lock.
    tries = np.zeros(n, dtype=int)
    gone = np.zeros(n, dtype=bool)
    wrong = typed & w.chance(n, np.where(b.mobile, 0.2, 0.14))
    while wrong.any():
        signals.error(w, b, "wrong_password", "Email or password is incorrect.", wrong,
                      field="password", after=(0, 60))
        b.t[wrong] += w.rng.integers(5, 40, n)[wrong]
        bad = b.take(wrong)
        w.log.emit(bad, "credentials_submitted",
                   props(len(bad), valid=False, error="wrong_password", method="password"))
        tries[wrong] += 1
        quits = wrong & (tries < 3) & w.chance(n, 0.07)
        gone |= quits
        again = wrong & (tries < 3) & ~quits
        signals.edit(w, b, "password", 4, again, edits=0.8, fumble=0.08)
        submit(w, b, again, web)
        wrong = again & w.chance(n, 0.45)
    locked = tries >= 3
    lock = b.take(locked)
    signals.error(w, lock, "account_locked", "Too many attempts: your account is locked for "
                  "30 minutes. Reset your password to unlock it.", after=(0, 1))
    lock.t = lock.t + w.rng.integers(20, 200, len(lock))
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
    coded.t = coded.t + w.wait(len(coded), 10, 0.8)
    signals.edit(w, coded, "otp_code", 5, edits=0.2)  # the sixth digit submits the code
    w.log.emit(coded, "otp_entered", props(len(coded), valid=True))
    b = Batch.concat(b.take(~otp), coded)
    method = np.concatenate([method[~otp], method[otp][arrived]])
    b.t = b.t + w.wait(len(b), 1.2, 0.4)
    b.user = np.ones(len(b), dtype=bool)
    w.log.emit(b, "logged_in", props(len(b), method=method))
    return b


def submit(w: World, b: Batch, rows: np.ndarray, web: np.ndarray) -> None:
    """Send the login form: the button on the web, the keyboard's *go* key in the app."""
    signals.press(w, b, "#login-button", rows & web)
    b.t[rows & ~web] += w.rng.integers(300, 1_500, len(b))[rows & ~web]


def reauth(w: World, b: Batch, rows: np.ndarray, reason: str) -> None:
    """Prove who one is again in the middle of a task (session expired, app locked,
    resuming, the lost-card shortcut): the app's fingerprint prompt or the password,
    then ``logged_in``. Not a ``login`` attempt of its own: the task it interrupts owns
    it. ``b.user`` is set for the rows.
    """
    n = len(b)
    web = b.channel == "web"
    bio = ~web & w.chance(n, 0.55)
    b.t[rows & bio] += w.wait(n, 2, 0.5)[rows & bio]
    signals.edit(w, b, "password", 3.5, rows & ~bio, edits=0.3, fumble=0.03)
    submit(w, b, rows & ~bio, web)
    b.t[rows] += w.wait(n, 1.2, 0.4)[rows]
    b.user = b.user | rows
    w.log.where(b, rows, "logged_in", method=np.where(bio, "biometric", "password"),
                reason=reason)


def password_reset(w: World, b: Batch) -> None:
    """``password_reset`` with an experiment: an email link (control) or an SMS code.

    Slow reset emails make people press *resend*, so the attempt repeats
    ``reset_email_sent``; links opened after an hour have expired (the failure).
    """
    n = len(b)
    sms = w.people.coin[b.pid] < 0.5
    variant = np.where(sms, "sms_code", "email_link").astype(object)
    # The page logs the variant it shows (the experiment's exposure), then the request.
    w.log.emit(b, "experiment_exposure", props(n, experiment="reset_by_sms", variant=variant))
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
    stale = link.take(expired)
    signals.error(w, stale, "link_expired", "This link has expired. Request a new one.",
                  after=(300, 1_200))
    stale.t = stale.t + w.rng.integers(20, 200, len(stale))
    w.log.emit(stale, "reset_link_expired", props(len(stale), age_minutes=60))
    w.trouble(stale, "password_reset")
    code = b.take(sms)
    k = len(code)
    signals.edit(w, code, "reset_code", 5, edits=0.2)  # the sixth digit submits the code
    wrong = w.chance(k, 0.1)
    signals.error(w, code, "wrong_code", "That code is not right. Check the SMS and try again.",
                  wrong, field="reset_code", after=(0, 60))
    code.t[wrong] += w.rng.integers(5, 40, k)[wrong]
    w.log.where(code, wrong, "reset_code_entered", valid=False, step_variant="sms_code")
    gives_up = wrong & w.chance(k, 0.15)
    w.trouble(code.take(gives_up), "password_reset")
    code = code.take(~gives_up)
    wrong = wrong[~gives_up]
    signals.edit(w, code, "reset_code", 6, wrong, edits=0.5)
    w.log.emit(code, "reset_code_entered", props(len(code), valid=True, step_variant="sms_code"))
    b = Batch.concat(link.take(~expired), code)
    # The new password, twice; a weak one is refused and typed again (or the customer
    # leaves right there). Those who leave without an error leave before typing.
    n = len(b)
    weak = w.chance(n, 0.3)
    done = w.chance(n, np.where(weak, 0.85, 0.98))
    typing = weak | done
    signals.later(w, b, 8, typing)
    new_password(w, b, typing)
    signals.error(w, b, "password_too_weak", "Use at least 10 characters with a number and a "
                  "symbol.", weak, field="new_password", after=(0, 60))
    b.t[weak] += w.rng.integers(5, 40, n)[weak]
    w.log.where(b, weak, "new_password_set", valid=False, error="too_weak")
    new_password(w, b, weak & done)
    w.trouble(b.take(~done), "password_reset")
    b = b.take(done)
    w.log.emit(b, "new_password_set", props(len(b), valid=True))
    b.t = b.t + w.wait(len(b), 1.5, 0.3)
    b.user = np.ones(len(b), dtype=bool)  # the reset signs the person in: links the ids
    w.log.emit(b, "password_reset_completed", props(len(b)))


def new_password(w: World, b: Batch, rows: np.ndarray) -> None:
    """The new password and its confirmation typed, then *save* pressed."""
    signals.edit(w, b, "new_password", 9, rows, edits=0.4, fumble=0.05)
    signals.edit(w, b, "confirm_password", 6, rows, edits=0.3, fumble=0.03)
    signals.press(w, b, "#save-password", rows)


def run(w: World) -> None:
    """Browsing-only sessions (some with a login) and spontaneous password resets."""
    n = w.size(1.1)
    b = w.digital(w.pick(n), w.starts(n), app_share=0.5)
    b = enter(w, b, login_share=0.55)
    browse(w, b, mean_pages=2.0)
    m = w.size(0.05)
    r = w.digital(w.pick(m), w.starts(m), app_share=0.4, logged_in=(0.0, 0.0))
    w.log.emit(r, "page_viewed", props(m, page="login"))
    r.t = r.t + w.wait(m, 6, 0.6)
    password_reset(w, r)
