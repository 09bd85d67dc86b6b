"""Synthetic micro-moment events for benchmarks: N events in one Parquet file, plus a workspace.

``generate(n_events, out_dir)`` writes ``events.parquet`` (exactly ``n_events`` rows) and a
matching ``microjourney.yaml`` with 10 moments in 7 journeys (3-5 funnel steps each, property
predicates, channel filters, fail and escalate matchers). Everything is vectorised with
numpy/pyarrow: 1M events take ~3 s, 10M ~25 s (peak RSS ~3.4 GB) on 2 cores, a fifth of it in
the Parquet writer (snappy, row groups of 256k rows, so DuckDB can read with every core).

What the data looks like:

* ~70% of the events belong to *attempts* at a moment; ~30% are noise (page views, clicks,
  searches...) that match no moment.
* An attempt starts at the moment's start event and walks its funnel; each step is reached
  with probability ~0.88, so attempts drop off along the way. An attempt that does not
  complete ends with the fail event (35%), the escalate event on an assisted channel
  (15%, for moments that have one) or nothing (abandoned). Steps are repeated now and then
  (retries), and ~8% of the events of steps with ``where: {valid: true}`` carry
  ``valid: false`` (they do not count as the step).
* Gaps within an attempt are log-normal (median 12 s); 2% are long (35 min-2 h), which
  breaks the attempt under a 30-minute timeout.
* ~4 attempts per person (mildly skewed: some persons have many more). Every person has an
  ``anonymous_id``; 70% are logged-in users whose events carry ``user_id`` 85% of the time
  (server-side channels carry only ``user_id``), so identity linking has work to do.
* Timestamps cover 30 days from 2026-10-01 UTC with a daily cycle. The file is in *rough*
  time order, as logs arrive: sorted by time plus up to ~2 minutes of jitter, so nearby
  events are often out of order and nothing is sorted by person.
* ``event_id`` is a random UUID-like text (36 chars); ``properties`` and ``context`` are
  JSON text.

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
           "journeys": [{"name": j, "moments": ms} for j, ms in journeys.items()]}
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
    vocab: list[str] = []
    name_id = np.zeros((n_m, maxlen + 2), dtype=np.int32)  # positions, fail (5), escalate (6)
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
    tmpl_m = np.where(kind_m == 1, np.where(r < 0.08, 1, 0), np.where(kind_m == 2, 2, 3))
    num_m = np.where(kind_m == 2, np.where(r < 0.10, 0, rng.integers(800, 9000, n_ev_m)),
                     np.where(kind_m == 1, slot, rng.integers(50, 5000, n_ev_m)))

    # -- noise -----------------------------------------------------------------------------------
    n_noise = n_events - n_ev_m
    person_n = np.minimum((n_persons * rng.random(n_noise) ** 1.4).astype(np.int64), n_persons - 1)
    hour_n = rng.choice(24, size=n_noise, p=hour_w / hour_w.sum())
    ts_n = (EPOCH_US + rng.integers(0, DAYS, n_noise) * DAY_US + hour_n * 3_600_000_000
            + rng.integers(0, 3_600_000_000, n_noise))
    name_n = (n_moment_vocab + rng.integers(0, len(NOISE_EVENTS), n_noise)).astype(np.int32)
    ch_n = rng.choice(len(CHANNELS), size=n_noise,
                      p=[0.45, 0.35, 0.03, 0.02, 0.01, 0.08, 0.03, 0.02, 0.01]).astype(np.int32)
    tmpl_n = 4 + rng.integers(0, len(PAGES), n_noise)  # '{"page":"/x","ms":'
    num_n = rng.integers(10, 60_000, n_noise)

    # -- assemble, in rough time order ----------------------------------------------------------
    person = np.concatenate([person_a[a_idx], person_n])
    ts = np.concatenate([ts_m, ts_n])
    name = np.concatenate([name_m, name_n])
    ch = np.concatenate([ch_m, ch_n])
    tmpl = np.concatenate([tmpl_m, tmpl_n])
    num = np.concatenate([num_m, num_n])
    del person_a, a_idx, ts_m, ts_n, name_m, name_n, ch_m, ch_n, tmpl_m, tmpl_n, num_m, num_n
    order = np.argsort(ts + rng.integers(0, 120_000_000, n_events), kind="stable")
    person, ts, name, ch, tmpl, num = (x[order] for x in (person, ts, name, ch, tmpl, num))
    del order

    # Identity: every person has an anonymous id; 70% are users, whose events carry user_id 85%
    # of the time; server-side channels (voice, agent, email, sms, store) carry only user_id.
    is_user = (person * 2654435761 % 100) < 70
    server = np.isin(ch, [CHANNELS.index(c) for c in ("voice", "agent", "email", "sms", "store")])
    has_uid = is_user & (server | (rng.random(n_events) < 0.85))
    has_anon = ~(is_user & server)
    day = (ts - EPOCH_US) // DAY_US
    templates = (['{"valid":true,"n":', '{"valid":false,"n":', '{"income":', '{"ms":']
                 + [f'{{"page":"{p}","ms":' for p in PAGES])
    table = pa.table({
        "event_id": _uuids(rng, n_events),
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "event": _take(vocab, name),
        "anonymous_id": pc.if_else(pa.array(has_anon), _strings("anon-", person), None),
        "user_id": pc.if_else(pa.array(has_uid), _strings("user-", person), None),
        "channel": _take(CHANNELS, ch),
        "session_id": pc.binary_join_element_wise(_strings("s", person), _strings("-", day), ""),
        "properties": pc.binary_join_element_wise(_take(templates, tmpl), _strings("", num, "}"), ""),
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
