"""Synthetic micro-moment events for benchmarks: N events in one Parquet file, plus a workspace.

``generate(n_events, out_dir)`` writes ``events.parquet`` (exactly ``n_events`` rows) and a
matching ``microjourney.yaml`` with 10 moments in 7 journeys (3-5 funnel steps each, property
predicates, channel filters, fail and escalate matchers). Everything is vectorised with
numpy/pyarrow: 1M events take ~3 s, 10M ~30 s (peak RSS ~3.9 GB) on 2 cores, a fifth of it in
the Parquet writer (snappy, row groups of 256k rows, so DuckDB can read with every core).

What the data looks like:

* ~70% of the events belong to *attempts* at a moment; ~30% are other events: ~22% of all
  events are friction signals placed *inside* attempts, ~8% background noise (page views,
  clicks, searches...) at random times.
* An attempt starts at the moment's start event and walks its funnel; each step is reached
  with probability ~0.88, so attempts drop off along the way. An attempt that does not
  complete ends with the fail event (35%), the escalate event on an assisted channel
  (15%, for moments that have one) or nothing (abandoned). Steps are repeated now and then
  (retries), and ~8% of the events of steps with ``where: {valid: true}`` carry
  ``valid: false`` (they do not count as the step).
* Gaps within an attempt are log-normal (median 12 s); 2% are long (35 min-2 h), which
  breaks the attempt under a 30-minute timeout.
* Friction signals come in *episodes*, at most one per gap of 5 s-10 min between two
  consecutive events of an attempt (~30% of such gaps), strictly inside the gap, on the
  attempt's person and channel (web/app), so they fall between the attempt's start and its
  last event. Episodes: ``click`` then ``page_viewed`` (a click that navigates); a rage burst
  of 3-6 ``click`` events 100-700 ms apart within ~10 px on the moment's main button; a dead
  ``click`` followed by 3-12 s of silence; two ``page_viewed`` (A then B); a page U-turn
  A -> B -> A (B left after 1-12 s); ``error_shown`` (``message``, numeric ``code``,
  ``field``), mostly followed by the field edited again; ``field_edited`` (``field``,
  ``edits``, ``dwell_ms``; ~15% with 5-9 edits, ~12% with 30-120 s of dwell; a field is
  drawn from three of the moment's fields per attempt, so the same field often comes back
  at a later step); ``help_opened`` (``topic``); ``logged_in`` once, or twice 5-60 s apart;
  3-5 ``status_checked`` (refund request) or ``tracking_refreshed`` (order tracking) looks;
  and, in the gap before an escalation on ``voice``, ``agent_answered`` with
  ``hold_seconds`` (median ~40 s) and, for a third of them, ``call_transferred``. Clicks
  carry ``selector``, ``x`` and ``y`` (page pixels). Episodes longer than their gap are
  squeezed into it.
* Background noise: random persons and times, the noise vocabulary (``page_viewed`` with a
  ``page``...) and ~8% ``click`` events; it seldom lands inside an attempt.
* ~4 attempts per person (mildly skewed: some persons have many more). Every person has an
  ``anonymous_id``; 70% are logged-in users whose events carry ``user_id`` 85% of the time
  (server-side channels carry only ``user_id``), so identity linking has work to do.
* Timestamps cover 30 days from 2026-10-01 UTC with a daily cycle. The file is in *rough*
  time order, as logs arrive: sorted by time plus up to ~2 minutes of jitter, so nearby
  events are often out of order and nothing is sorted by person.
* ``event_id`` is a random UUID-like text (36 chars); ``properties`` and ``context`` are
  JSON text.

The workspace's ``frictions:`` section adds ``tracking_refreshed`` to the uncertainty
detector's events; every other detector runs with its defaults, which match the signals.

CLI: ``python benchmarks/generate.py --events 1000000 --out DIR``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

EPOCH_US = 1_790_812_800_000_000  # 2026-10-01T00:00:00Z
DAYS = 30
DAY_US = 86_400_000_000
NOISE_SHARE = 0.30
ASSISTED = ("chat", "voice", "agent", "email")
CHANNELS = ("web", "app", "chat", "voice", "agent", "email", "sms", "store", "other")

# Moments: journey, name, funnel events (start, steps..., complete), predicate per funnel
# position, fail event, escalate channels (None: no escalate matcher), timeout, sla, start channel.
# Predicates: ("valid", True) or ("income", "gt0").
MOMENTS: list[dict] = [
    dict(journey="payment", name="card_payment",
         funnel=["checkout_payment_opened", "payment_gateway_loaded", "card_details_entered",
                 "payment_succeeded"],
         where={2: "valid"}, fail="payment_failed", escalate=("chat", "voice", "agent"),
         timeout="30m", sla="90s", target=("completion_rate", 0.92)),
    dict(journey="access", name="login",
         funnel=["login_page_viewed", "credentials_submitted", "otp_verified", "login_succeeded"],
         where={1: "valid"}, fail="login_failed", escalate=("chat", "voice"),
         timeout="15m", sla="60s", target=("completion_rate", 0.95)),
    dict(journey="access", name="password_reset",
         funnel=["reset_requested", "reset_email_opened", "new_password_set", "reset_completed"],
         where={2: "valid"}, fail="reset_link_expired", escalate=None,
         timeout="1h", sla="5m", target=None),
    dict(journey="onboarding", name="signup",
         funnel=["signup_started", "details_entered", "identity_verified", "terms_accepted",
                 "account_created"],
         where={1: "valid"}, fail="identity_check_failed", escalate=("agent",),
         timeout="1h", sla="10m", target=("completion_rate", 0.7)),
    dict(journey="account", name="address_change",
         funnel=["address_form_opened", "address_entered", "address_saved"],
         where={1: "valid"}, fail="address_rejected", escalate=None,
         timeout="30m", sla="2m", target=None),
    dict(journey="cards", name="card_activation",
         funnel=["card_activation_started", "card_number_entered", "pin_set", "card_activated"],
         where={1: "valid"}, fail="activation_failed", escalate=("voice", "agent"),
         timeout="30m", sla="3m", target=("failure_rate", 0.05)),
    dict(journey="orders", name="order_tracking",
         funnel=["order_status_opened", "tracking_loaded", "delivery_shown"],
         where={}, fail="tracking_unavailable", escalate=("chat",),
         timeout="15m", sla="30s", target=None),
    dict(journey="orders", name="refund_request",
         funnel=["refund_started", "reason_selected", "refund_submitted", "refund_confirmed"],
         where={2: "valid"}, fail="refund_declined", escalate=("chat", "voice", "agent", "email"),
         timeout="1h", sla="5m", target=("escalation_rate", 0.1)),
    dict(journey="service", name="appointment_booking",
         funnel=["booking_opened", "slot_selected", "details_confirmed", "booking_confirmed"],
         where={2: "valid"}, fail="booking_failed", escalate=None, start_channel=("web", "app"),
         timeout="30m", sla="4m", target=None),
    dict(journey="lending", name="loan_application",
         funnel=["loan_started", "income_entered", "documents_uploaded", "decision_shown",
                 "loan_accepted"],
         where={1: "income"}, fail="loan_declined", escalate=("voice", "agent"),
         timeout="2h", sla="20m", target=("completion_rate", 0.5)),
]
MOMENT_WEIGHTS = np.array([18, 25, 6, 5, 4, 5, 14, 6, 7, 4], dtype=float)

NOISE_EVENTS = (
    "page_viewed", "screen_viewed", "button_clicked", "search_performed", "product_viewed",
    "banner_shown", "banner_clicked", "app_opened", "app_backgrounded", "notification_received",
    "notification_opened", "email_opened", "faq_viewed", "chat_widget_shown", "cookie_consent_given",
    "scroll_depth_reached", "video_played", "filter_applied", "recommendation_shown", "logout",
    "settings_viewed", "language_changed", "balance_viewed", "statement_downloaded", "offer_viewed",
)
# Friction signals. Per moment: its page, its main button (selector and desktop spot, page px)
# and the form fields a person fills in.
MOMENT_UI: dict[str, tuple[str, str, tuple[int, int], tuple[str, ...]]] = {
    "card_payment": ("/checkout/payment", "#pay-button", (1010, 690),
                     ("card_number", "expiry_date", "cvc", "cardholder_name")),
    "login": ("/login", "#login-button", (760, 520), ("email", "password", "otp")),
    "password_reset": ("/login/reset", "#reset-submit", (760, 610),
                       ("email", "new_password", "confirm_password")),
    "signup": ("/signup", "#continue", (880, 860),
               ("first_name", "last_name", "email", "date_of_birth", "phone")),
    "address_change": ("/account/address", "#save-address", (720, 760), ("street", "postcode", "city")),
    "card_activation": ("/cards/activate", "#activate-card", (720, 560),
                        ("card_number", "pin", "confirm_pin")),
    "order_tracking": ("/orders/track", "#track-order", (640, 420), ("order_number", "postcode", "email")),
    "refund_request": ("/orders/refund", "#submit-refund", (880, 900),
                       ("order_number", "reason", "iban", "comment")),
    "appointment_booking": ("/service/book", "#book-slot", (880, 640),
                            ("date", "time_slot", "phone", "notes")),
    "loan_application": ("/loans/apply", "#apply-now", (1010, 820),
                         ("income", "employer", "amount", "term", "iban")),
}
#: Controls clicked on the way (navigation), any page.
NAV_SELECTORS = ("nav .menu", "a.help-link", "button.back", ".tab-details", "#search-box", "a.logo",
                 ".card-list li", "footer a.contact")
ERRORS = ("This field is required", "Card number is invalid", "Session expired, please try again",
          "Something went wrong", "Incorrect password", "Service temporarily unavailable")
ERROR_CODES = np.array([400, 401, 403, 409, 422, 500, 503])
#: Episode kinds and their weights (status checks and calls are assigned separately).
EPISODES = ("click_nav", "rage", "dead", "pages", "u_turn", "error", "field", "help", "login",
            "relogin")
EPISODE_WEIGHTS = np.array([22, 5, 7, 12, 5, 6, 25, 4, 6, 3], dtype=float)
SIGNAL_SHARE = 0.70  # of the non-attempt events: signals inside attempts (the rest: background)
STATUS_EVENTS = {"refund_request": "status_checked", "order_tracking": "tracking_refreshed"}
SIGNAL_EVENTS = ("click", "page_viewed", "error_shown", "field_edited", "help_opened", "logged_in",
                 "status_checked", "tracking_refreshed", "agent_answered", "call_transferred")
CONTEXTS = tuple(
    f'{{"locale":"{loc}","os":"{os_}","app_version":"{ver}"}}'
    for loc in ("en-GB", "de-DE", "fr-FR", "nl-NL")
    for os_ in ("iOS", "Android", "Windows", "macOS")
    for ver in ("5.2.1", "5.3.0")
)
PAGES = ("/", "/home", "/account", "/cards", "/help", "/offers", "/search", "/orders", "/loans",
         "/settings", "/contact", "/statements")


def workspace_yaml() -> str:
    """The ``microjourney.yaml`` that matches :data:`MOMENTS`."""
    journeys: dict[str, list] = {}
    for m in MOMENTS:
        def matcher(pos: int, m: dict = m) -> dict:
            out: dict = {"event": m["funnel"][pos]}
            pred = m["where"].get(pos)
            if pred == "valid":
                out["where"] = {"valid": True}
            elif pred == "income":
                out["where"] = {"income": {"gt": 0}}
            if pos == 0 and m.get("start_channel"):
                out["channel"] = list(m["start_channel"])
            return out

        n = len(m["funnel"])
        spec: dict = {"name": m["name"], "intent": "act", "start": matcher(0)}
        if n > 2:
            spec["steps"] = [matcher(i) for i in range(1, n - 1)]
        spec["complete"] = matcher(n - 1)
        spec["fail"] = {"event": m["fail"]}
        if m["escalate"]:
            spec["escalate"] = {"event": "contact_started", "channel": list(m["escalate"])}
        spec["timeout"] = m["timeout"]
        spec["sla"] = m["sla"]
        spec["owner"] = f"{m['journey']}-team"
        if m["target"]:
            spec["target"] = {"metric": m["target"][0], "value": m["target"][1]}
        journeys.setdefault(m["journey"], []).append(spec)
    doc = {"name": "benchmark workspace",
           "journeys": [{"name": j, "moments": ms} for j, ms in journeys.items()],
           "frictions": {"uncertainty": {"events": sorted(set(STATUS_EVENTS.values()))}}}
    return "# Generated by benchmarks/generate.py\n" + yaml.safe_dump(doc, sort_keys=False, width=100)


def _strings(prefix: str, values: np.ndarray, suffix: str = "") -> pa.Array:
    """``prefix + str(value) + suffix`` for an integer array, vectorised in Arrow."""
    parts = [pa.scalar(prefix), pc.cast(pa.array(values), pa.string())]
    if suffix:
        parts.append(pa.scalar(suffix))
    return pc.binary_join_element_wise(*parts, "")


def _take(vocab: list[str] | tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(vocab)).cast(pa.string())


def _uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """Random UUID-v4-looking text (36 chars), built as one byte buffer."""
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # variant
    nib = np.empty((n, 32), dtype=np.uint8)
    nib[:, 0::2] = raw >> 4
    nib[:, 1::2] = raw & 0x0F
    hx = hexdigits[nib]
    chars = np.empty((n, 36), dtype=np.uint8)
    src = 0
    for dst, width in ((0, 8), (9, 4), (14, 4), (19, 4), (24, 12)):
        chars[:, dst:dst + width] = hx[:, src:src + width]
        src += width
        if dst + width < 36:
            chars[:, dst + width] = ord("-")
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.ravel()))


def _event_vocab() -> tuple[list[str], np.ndarray, int]:
    """Event names: funnel events, fail events, ``contact_started``, noise, then signal events;
    per moment the ids of its funnel positions, fail (5) and escalate (6) events; the number
    of moment event names."""
    maxlen = 5
    vocab: list[str] = []
    name_id = np.zeros((len(MOMENTS), maxlen + 2), dtype=np.int32)
    for i, m in enumerate(MOMENTS):
        for j, ev in enumerate(m["funnel"]):
            if ev not in vocab:
                vocab.append(ev)
            name_id[i, j] = vocab.index(ev)
        vocab.append(m["fail"])
        name_id[i, maxlen] = len(vocab) - 1
    vocab.append("contact_started")
    name_id[:, maxlen + 1] = len(vocab) - 1
    n_moment_vocab = len(vocab)
    vocab.extend(NOISE_EVENTS)
    vocab.extend(e for e in SIGNAL_EVENTS if e not in NOISE_EVENTS)
    return vocab, name_id, n_moment_vocab


#: Pieces of the ``properties`` JSON text; an event's text is t0 + n1 + t1 + n2 + t2 (n: numbers).
PIECES: list[str] = [""]


def _piece(text: str) -> int:
    if text not in PIECES:
        PIECES.append(text)
    return PIECES.index(text)


def _expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows for items with ``counts`` rows each: (item of each row, position within the item)."""
    item = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return item, np.arange(item.size) - np.repeat(first, counts)


class _Rows:
    """Signal rows, added kind by kind: episode, offset (us) in it, name, channel, properties."""

    COLS = ("ep", "off", "name", "ch", "t0", "n1", "t1", "n2", "t2", "k")

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = vocab
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in self.COLS}

    def add(self, ep: np.ndarray, off: np.ndarray | int, event: str, t0: np.ndarray | int, *,
            n1: np.ndarray | None = None, t1: np.ndarray | int = 0, n2: np.ndarray | None = None,
            t2: np.ndarray | int = 0, ch: int = -1) -> None:
        vals = {"ep": ep, "off": off, "name": self.vocab.index(event), "ch": ch, "t0": t0,
                "n1": 0 if n1 is None else n1, "t1": t1, "n2": 0 if n2 is None else n2, "t2": t2,
                "k": (n1 is not None) + (n2 is not None)}
        for c, v in vals.items():
            self.parts[c].append(np.broadcast_to(np.asarray(v, dtype=np.int64), (len(ep),)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {c: np.concatenate(v) if v else np.zeros(0, np.int64) for c, v in self.parts.items()}


def _signals(rng: np.random.Generator, budget: int, vocab: list[str], a_idx: np.ndarray,
             ts_m: np.ndarray, moment: np.ndarray, ch_m: np.ndarray, is_esc: np.ndarray,
             channel_a: np.ndarray) -> dict[str, np.ndarray]:
    """Friction-signal events inside attempts (see the module docstring): at most ``budget``
    rows, with the moment event index (``slot``) each one follows, its time, name, channel and
    property pieces."""
    sec = 1_000_000
    same = a_idx[1:] == a_idx[:-1]
    gap = ts_m[1:] - ts_m[:-1]
    usable = same & (gap >= 5 * sec) & (gap <= 600 * sec)
    voice_ch = CHANNELS.index("voice")
    voice = usable & is_esc[1:] & (ch_m[1:] == voice_ch)
    cand = np.flatnonzero(usable)
    mean_rows = 1.75  # rows per episode, roughly
    p = min(1.0, budget * SIGNAL_SHARE / mean_rows / max(len(cand), 1))
    chosen = np.flatnonzero(usable & ((rng.random(len(usable)) < p) | voice))
    n_ep = len(chosen)
    mom = moment[a_idx[chosen]]
    att = a_idx[chosen]
    kind = rng.choice(len(EPISODES), size=n_ep, p=EPISODE_WEIGHTS / EPISODE_WEIGHTS.sum())
    status_m = np.array([MOMENTS[i]["name"] in STATUS_EVENTS for i in range(len(MOMENTS))])
    kind = np.where(status_m[mom] & (rng.random(n_ep) < 0.2), len(EPISODES), kind)  # status checks
    kind = np.where(voice[chosen], len(EPISODES) + 1, kind)  # the call before a voice escalation
    names = [m["name"] for m in MOMENTS]
    ui = [MOMENT_UI[nm] for nm in names]

    # Per moment: page, main button and its spot, fields (ids of their property pieces).
    page_a = np.array([_piece(f'{{"page":"{u[0]}"}}') for u in ui])
    page_b = np.array([_piece(f'{{"page":"{p}"}}') for p in PAGES])
    button = np.array([_piece(f'{{"selector":"{u[1]}","x":') for u in ui])
    spot = np.array([u[2] for u in ui], dtype=np.int64)
    nav = np.array([_piece(f'{{"selector":"{s}","x":') for s in NAV_SELECTORS])
    n_fields = np.array([len(u[3]) for u in ui])
    width = int(n_fields.max())
    field_edit = np.zeros((len(ui), width), np.int64)
    field_err = np.zeros((len(ui), width), np.int64)
    for i, u in enumerate(ui):
        for j in range(width):
            f = u[3][j % len(u[3])]
            field_edit[i, j] = _piece(f'{{"field":"{f}","edits":')
            field_err[i, j] = _piece(f',"field":"{f}"}}')
    # A person fills in three of the moment's fields per attempt (some come back at a later step).
    field_of = (att * 7 + rng.integers(0, 3, n_ep)) % n_fields[mom]
    y_key, close, dwell_key = _piece(',"y":'), _piece("}"), _piece(',"dwell_ms":')
    layout = rng.integers(-40, 41, (n_ep, 2))  # where the button is for this person (scroll, window)

    rows = _Rows(vocab)
    end_anchored = np.zeros(n_ep, dtype=bool)

    def of(k: int) -> np.ndarray:
        return np.flatnonzero(kind == k)

    def field_rows(ep: np.ndarray, off: np.ndarray | int, hard: bool) -> None:
        n = len(ep)
        edits = 1 + rng.binomial(2, 0.4, n)
        dwell = np.clip(np.exp(rng.normal(np.log(6000), 0.8, n)), 400, 25_000).astype(np.int64)
        if hard:
            edits = np.where(rng.random(n) < 0.15, rng.integers(5, 10, n), edits)
            dwell = np.where(rng.random(n) < 0.12, rng.integers(30_000, 120_000, n), dwell)
        rows.add(ep, off, "field_edited", field_edit[mom[ep], field_of[ep]], n1=edits, t1=dwell_key,
                 n2=dwell, t2=close)

    # click then the page it opens
    ep = of(0)
    n = len(ep)
    rows.add(ep, 0, "click", nav[rng.integers(0, len(nav), n)], n1=rng.integers(0, 1440, n), t1=y_key,
             n2=rng.integers(0, 2400, n), t2=close)
    rows.add(ep, rng.integers(150_000, 900_000, n), "page_viewed", page_b[rng.integers(0, len(PAGES), n)])
    # rage burst: 3-6 clicks 100-700 ms apart within ~10 px on the moment's button
    ep = of(1)
    item, pos = _expand(rng.integers(3, 7, len(ep)))
    e = ep[item]
    step = np.where(pos == 0, 0, rng.integers(100_000, 700_001, len(e)))
    csum = np.cumsum(step)
    off = csum - csum[np.flatnonzero(pos == 0)][item]
    xy = spot[mom[e]] + layout[e] + rng.integers(-5, 6, (len(e), 2))
    rows.add(e, off, "click", button[mom[e]], n1=xy[:, 0], t1=y_key, n2=xy[:, 1], t2=close)
    # dead click: the button, then 3-12 s of silence until the attempt's next event
    ep = of(2)
    end_anchored[ep] = True
    xy = spot[mom[ep]] + layout[ep]
    rows.add(ep, 0, "click", button[mom[ep]], n1=xy[:, 0], t1=y_key, n2=xy[:, 1], t2=close)
    # two pages: the moment's page, then another
    ep = of(3)
    n = len(ep)
    rows.add(ep, 0, "page_viewed", page_a[mom[ep]])
    rows.add(ep, rng.integers(3 * sec, 40 * sec, n), "page_viewed", page_b[rng.integers(0, len(PAGES), n)])
    # U-turn: the moment's page, another, back after 1-12 s
    ep = of(4)
    n = len(ep)
    d1 = rng.integers(2 * sec, 15 * sec, n)
    rows.add(ep, 0, "page_viewed", page_a[mom[ep]])
    rows.add(ep, d1, "page_viewed", page_b[rng.integers(0, len(PAGES), n)])
    rows.add(ep, d1 + rng.integers(1 * sec, 12 * sec, n), "page_viewed", page_a[mom[ep]])
    # error shown on a field, mostly followed by the field edited again
    ep = of(5)
    n = len(ep)
    msg = np.array([_piece(f'{{"message":"{m}","code":') for m in ERRORS])
    rows.add(ep, 0, "error_shown", msg[rng.integers(0, len(ERRORS), n)],
             n1=ERROR_CODES[rng.integers(0, len(ERROR_CODES), n)], t1=field_err[mom[ep], field_of[ep]])
    again = ep[rng.random(n) < 0.6]
    field_rows(again, rng.integers(2 * sec, 8 * sec, len(again)), hard=False)
    # a field edited
    field_rows(of(6), 0, hard=True)
    # help opened on the journey's topic
    ep = of(7)
    topic = np.array([_piece(f'{{"topic":"{m["journey"]}"}}') for m in MOMENTS])
    rows.add(ep, 0, "help_opened", topic[mom[ep]])
    # logged in once, or twice 5-60 s apart
    method = np.array([_piece('{"method":"password"}'), _piece('{"method":"biometric"}')])
    ep = of(8)
    rows.add(ep, 0, "logged_in", method[rng.integers(0, 2, len(ep))])
    ep = of(9)
    n = len(ep)
    rows.add(ep, 0, "logged_in", method[rng.integers(0, 2, n)])
    rows.add(ep, rng.integers(5 * sec, 60 * sec, n), "logged_in", method[rng.integers(0, 2, n)])
    # status checks: 3-5 looks 10-90 s apart
    ep = of(len(EPISODES))
    item, pos = _expand(rng.integers(3, 6, len(ep)))
    e = ep[item]
    step = np.where(pos == 0, 0, rng.integers(10 * sec, 90 * sec, len(e)))
    csum = np.cumsum(step)
    off = csum - csum[np.flatnonzero(pos == 0)][item]
    status = np.array([_piece(f'{{"status":"{s}"}}') for s in ("pending", "in_transit", "processing")])
    for i, nm in enumerate(names):
        if nm in STATUS_EVENTS:
            sel = mom[e] == i
            rows.add(e[sel], off[sel], STATUS_EVENTS[nm], status[rng.integers(0, 3, int(sel.sum()))])
    # the call before a voice escalation: answered after a hold, a third transferred
    ep = of(len(EPISODES) + 1)
    n = len(ep)
    hold = np.clip(np.exp(rng.normal(np.log(40), 0.9, n)), 0, 900).astype(np.int64)
    queue = np.array([_piece(f',"queue":"{m["journey"]}"}}') for m in MOMENTS])
    rows.add(ep, 0, "agent_answered", _piece('{"hold_seconds":'), n1=hold, t1=queue[mom[ep]], ch=voice_ch)
    moved = ep[rng.random(n) < 0.35]
    m2 = len(moved)
    rows.add(moved, rng.integers(20 * sec, 120 * sec, m2), "call_transferred", _piece('{"hold_seconds":'),
             n1=np.clip(np.exp(rng.normal(np.log(30), 0.9, m2)), 0, 900).astype(np.int64),
             t1=queue[mom[moved]], ch=voice_ch)

    r = rows.arrays()
    # Place each episode inside its gap, squeezed into it when longer (300 ms margins).
    margin = 300_000
    dur = np.zeros(n_ep, np.int64)
    np.maximum.at(dur, r["ep"], r["off"])
    g = gap[chosen]
    free = g - 2 * margin
    scale = np.where(dur > free, free / np.maximum(dur, 1), 1.0)
    dur = np.minimum(dur, free)
    silence = np.minimum(rng.integers(3 * sec, 12 * sec, n_ep), g - margin)
    start = np.where(end_anchored, ts_m[chosen] + g - silence,
                     ts_m[chosen] + margin + (rng.random(n_ep) * (free - dur)).astype(np.int64))
    ts = start[r["ep"]] + (r["off"] * scale[r["ep"]]).astype(np.int64)
    ch = np.where(r["ch"] < 0, channel_a[att][r["ep"]], r["ch"])
    out = {"slot": chosen[r["ep"]], "ts": ts, "name": r["name"], "ch": ch, "t0": r["t0"], "n1": r["n1"],
           "t1": r["t1"], "n2": r["n2"], "t2": r["t2"], "k": r["k"]}
    if len(ts) > budget:  # tiny logs: keep within the non-attempt share
        out = {c: v[:budget] for c, v in out.items()}
    return out


def generate(n_events: int, path: str | Path, seed: int = 1) -> Path:
    """Write ``n_events`` synthetic events to ``path`` (a .parquet file, or a directory for
    ``events.parquet``) and ``microjourney.yaml`` next to it; return the Parquet path."""
    path = Path(path)
    if path.suffix != ".parquet":
        path = path / "events.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    # -- attempts ------------------------------------------------------------------------------
    n_moment = int(round(n_events * (1 - NOISE_SHARE)))
    n_attempts = max(1, int(n_moment / 3.75))  # ~3.75 events per attempt
    n_persons = max(1, n_attempts // 4)
    n_m = len(MOMENTS)
    moment = rng.choice(n_m, size=n_attempts, p=MOMENT_WEIGHTS / MOMENT_WEIGHTS.sum())
    length = np.array([len(m["funnel"]) for m in MOMENTS])[moment]  # funnel positions 3..5
    # Steps reached: each further step with probability 0.88.
    reached = np.minimum(rng.geometric(0.12, size=n_attempts), length)
    completed = reached == length
    has_esc = np.array([m["escalate"] is not None for m in MOMENTS])[moment]
    u = rng.random(n_attempts)
    fail = ~completed & (u < 0.35)
    esc = ~completed & has_esc & (u >= 0.35) & (u < 0.50)
    # Events per funnel position (0..4) and one outcome column (5): retries on non-final steps.
    maxlen = 5
    pos = np.arange(maxlen)
    counts = (pos[None, :] < reached[:, None]).astype(np.int64)
    retry = rng.binomial(2, 0.07, size=(n_attempts, maxlen))
    retry[pos[None, :] == (length[:, None] - 1)] = 0
    counts += counts * retry
    counts = np.concatenate([counts, (fail | esc).astype(np.int64)[:, None]], axis=1)
    per_attempt = counts.sum(axis=1)
    # Trim or pad so that the noise share makes the total exactly n_events.
    total = int(per_attempt.sum())
    if total > n_events:
        keep = int(np.searchsorted(np.cumsum(per_attempt), n_events, side="right"))
        moment, length, reached, fail, esc, counts = (x[:keep] for x in
                                                      (moment, length, reached, fail, esc, counts))
        per_attempt = counts.sum(axis=1)
        n_attempts = keep
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    a_idx = flat // (maxlen + 1)
    slot = flat % (maxlen + 1)
    n_ev_m = len(a_idx)

    # Who and when: persons mildly skewed; start times with a daily cycle.
    person_a = np.minimum((n_persons * rng.random(n_attempts) ** 1.4).astype(np.int64), n_persons - 1)
    hour_w = np.array([1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3.5, 4.5, 5, 5, 5, 4.8, 4.6, 4.5, 4.6, 5,
                       5.5, 6, 5.5, 4, 3, 2])
    hour = rng.choice(24, size=n_attempts, p=hour_w / hour_w.sum())
    start_us = (EPOCH_US + rng.integers(0, DAYS, n_attempts) * DAY_US + hour * 3_600_000_000
                + rng.integers(0, 3_600_000_000, n_attempts))
    channel_a = rng.choice(2, size=n_attempts, p=[0.55, 0.45])  # web / app

    # Gaps: log-normal (median 12 s), 2% long (35 min-2 h); the first event of an attempt: 0.
    gap = np.exp(rng.normal(np.log(12.0), 1.0, n_ev_m)) * 1e6
    long_gap = rng.random(n_ev_m) < 0.02
    gap[long_gap] = rng.uniform(35 * 60e6, 120 * 60e6, int(long_gap.sum()))
    first = np.ones(n_ev_m, dtype=bool)
    first[1:] = a_idx[1:] != a_idx[:-1]
    gap[first] = 0
    csum = np.cumsum(gap)
    base = np.maximum.accumulate(np.where(first, csum, 0))
    ts_m = start_us[a_idx] + (csum - base).astype(np.int64)

    # Event names: vocabulary = funnel events, fail events, contact_started, then noise events.
    vocab, name_id, n_moment_vocab = _event_vocab()
    mom_e = moment[a_idx]
    outcome_col = np.where(esc[a_idx], maxlen + 1, maxlen)
    name_m = name_id[mom_e, np.where(slot == maxlen, outcome_col, slot)]

    # Channels: the attempt's web/app; escalations on one of the moment's assisted channels.
    ch_m = channel_a[a_idx].astype(np.int32)
    is_esc = (slot == maxlen) & esc[a_idx]
    if is_esc.any():
        esc_ch = [[CHANNELS.index(c) for c in (m["escalate"] or ("chat",))] for m in MOMENTS]
        esc_choices = np.array([[chs[i % len(chs)] for i in range(4)] for chs in esc_ch])
        ch_m = np.where(is_esc, esc_choices[mom_e, rng.integers(0, 4, n_ev_m)], ch_m)

    # Properties: predicate steps carry valid true/false (8% false) or income (10% zero).
    pred_kind = np.zeros((n_m, maxlen + 1), dtype=np.int8)  # 0 none, 1 valid, 2 income
    for i, m in enumerate(MOMENTS):
        for p, kind in m["where"].items():
            pred_kind[i, p] = 1 if kind == "valid" else 2
    kind_m = np.where(slot < maxlen, pred_kind[mom_e, slot], 0)
    r = rng.random(n_ev_m)
    # Template ids: 0 '{"valid":true,"n":', 1 '{"valid":false,"n":', 2 '{"income":', 3 '{"ms":'
    moment_t0 = np.array([_piece(p) for p in ('{"valid":true,"n":', '{"valid":false,"n":', '{"income":',
                                              '{"ms":')])
    tmpl_m = np.where(kind_m == 1, np.where(r < 0.08, 1, 0), np.where(kind_m == 2, 2, 3))
    num_m = np.where(kind_m == 2, np.where(r < 0.10, 0, rng.integers(800, 9000, n_ev_m)),
                     np.where(kind_m == 1, slot, rng.integers(50, 5000, n_ev_m)))

    # -- friction signals inside attempts ----------------------------------------------------------
    n_noise = n_events - n_ev_m
    sig = _signals(rng, n_noise, vocab, a_idx, ts_m, moment, ch_m, is_esc, channel_a)
    n_sig = len(sig["ts"])
    person_s = person_a[a_idx[sig.pop("slot")]]

    # -- background noise ----------------------------------------------------------------------
    n_bg = n_noise - n_sig
    person_n = np.minimum((n_persons * rng.random(n_bg) ** 1.4).astype(np.int64), n_persons - 1)
    hour_n = rng.choice(24, size=n_bg, p=hour_w / hour_w.sum())
    ts_n = (EPOCH_US + rng.integers(0, DAYS, n_bg) * DAY_US + hour_n * 3_600_000_000
            + rng.integers(0, 3_600_000_000, n_bg))
    is_click = rng.random(n_bg) < 0.08
    name_n = np.where(is_click, vocab.index("click"),
                      n_moment_vocab + rng.integers(0, len(NOISE_EVENTS), n_bg))
    ch_n = rng.choice(len(CHANNELS), size=n_bg,
                      p=[0.45, 0.35, 0.03, 0.02, 0.01, 0.08, 0.03, 0.02, 0.01]).astype(np.int32)
    page_t0 = np.array([_piece(f'{{"page":"{p}","ms":') for p in PAGES])
    nav_t0 = np.array([_piece(f'{{"selector":"{s}","x":') for s in NAV_SELECTORS])
    t0_n = np.where(is_click, nav_t0[rng.integers(0, len(NAV_SELECTORS), n_bg)],
                    page_t0[rng.integers(0, len(PAGES), n_bg)])
    n1_n = np.where(is_click, rng.integers(0, 1440, n_bg), rng.integers(10, 60_000, n_bg))
    n2_n = rng.integers(0, 2400, n_bg)
    t1_n = np.where(is_click, _piece(',"y":'), _piece("}"))
    t2_n = np.where(is_click, _piece("}"), 0)
    k_n = np.where(is_click, 2, 1)

    # -- assemble, in rough time order ----------------------------------------------------------
    end_id = _piece("}")
    person = np.concatenate([person_a[a_idx], person_s, person_n])
    ts = np.concatenate([ts_m, sig["ts"], ts_n])
    name = np.concatenate([name_m, sig["name"], name_n]).astype(np.int32)
    ch = np.concatenate([ch_m, sig["ch"], ch_n]).astype(np.int32)
    t0 = np.concatenate([moment_t0[tmpl_m], sig["t0"], t0_n]).astype(np.int32)
    n1 = np.concatenate([num_m, sig["n1"], n1_n])
    t1 = np.concatenate([np.full(n_ev_m, end_id), sig["t1"], t1_n]).astype(np.int32)
    n2 = np.concatenate([np.zeros(n_ev_m, np.int64), sig["n2"], n2_n])
    t2 = np.concatenate([np.zeros(n_ev_m, np.int32), sig["t2"], t2_n]).astype(np.int32)
    k = np.concatenate([np.ones(n_ev_m, np.int8), sig["k"], k_n]).astype(np.int8)
    del person_a, a_idx, ts_m, ts_n, name_m, name_n, ch_m, ch_n, tmpl_m, num_m, sig, person_s, person_n
    order = np.argsort(ts + rng.integers(0, 120_000_000, n_events), kind="stable")
    person, ts, name, ch, t0, n1, t1, n2, t2, k = (
        x[order] for x in (person, ts, name, ch, t0, n1, t1, n2, t2, k))
    del order

    # Identity: every person has an anonymous id; 70% are users, whose events carry user_id 85%
    # of the time; server-side channels (voice, agent, email, sms, store) carry only user_id.
    is_user = (person * 2654435761 % 100) < 70
    server = np.isin(ch, [CHANNELS.index(c) for c in ("voice", "agent", "email", "sms", "store")])
    has_uid = is_user & (server | (rng.random(n_events) < 0.85))
    has_anon = ~(is_user & server)
    day = (ts - EPOCH_US) // DAY_US
    # properties = t0 + n1 + t1 + n2 + t2, the numbers only where the row has them (k).
    empty = pa.scalar("")
    props = pc.binary_join_element_wise(
        _take(PIECES, t0), pc.if_else(pa.array(k >= 1), _strings("", n1), empty),
        _take(PIECES, t1), pc.if_else(pa.array(k >= 2), _strings("", n2), empty),
        _take(PIECES, t2), "")
    del t0, n1, t1, n2, t2, k
    table = pa.table({
        "event_id": _uuids(rng, n_events),
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "event": _take(vocab, name),
        "anonymous_id": pc.if_else(pa.array(has_anon), _strings("anon-", person), None),
        "user_id": pc.if_else(pa.array(has_uid), _strings("user-", person), None),
        "channel": _take(CHANNELS, ch),
        "session_id": pc.binary_join_element_wise(_strings("s", person), _strings("-", day), ""),
        "properties": props,
        "context": _take(CONTEXTS, (person * 40503 % len(CONTEXTS)).astype(np.int32)),
    })
    pq.write_table(table, path, compression="snappy", row_group_size=262_144)
    (path.parent / "microjourney.yaml").write_text(workspace_yaml(), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="number of events (default 1M)")
    ap.add_argument("--out", required=True, help="directory for events.parquet and microjourney.yaml")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = generate(args.events, args.out, seed=args.seed)
    print(f"{args.events:,} events -> {path} ({path.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
