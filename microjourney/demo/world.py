"""Simulation primitives of the demo: the population, attempt batches and the event log.

Every flow works on a :class:`Batch` — the attempts of one moment that are still
going, one row each — and advances all rows at once with NumPy, so the default
workspace (hundreds of thousands of events) is generated in seconds. Rows that drop
off are split away; rows that fail or stop mid-way are handed to
:meth:`World.trouble` so that the contact centre can pick some of them up as
escalations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

SEGMENTS: tuple[str, ...] = ("retail", "premium", "business")
DEVICES: tuple[str, ...] = ("desktop", "mobile", "tablet")
OSES: tuple[str, ...] = ("windows", "macos", "ios", "android")
KINDS: tuple[str, ...] = ("web", "app", "other")
DESKTOP, MOBILE, TABLET = 0, 1, 2
ANDROID = 3
SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000

#: Relative traffic per weekday, Monday first: banking dips at the weekend, the
#: contact centre much more (short opening hours), Monday catches up the weekend.
DIGITAL_WEEK = np.array([1.06, 1.0, 0.98, 1.0, 0.95, 0.78, 0.84])
CONTACT_WEEK = np.array([1.3, 1.05, 1.0, 0.97, 0.92, 0.5, 0.3])
#: Relative traffic per UTC hour: a lunch peak and an evening peak online, office
#: hours on the phone.
DIGITAL_HOURS = np.array([0.3, 0.2, 0.12, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 1.7, 1.8, 1.9,
                          2.1, 2.0, 1.8, 1.7, 1.7, 1.8, 2.0, 2.3, 2.5, 2.2, 1.5, 0.8])
CONTACT_HOURS = np.array([0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.9, 2.0, 2.6, 2.6, 2.4,
                          2.2, 2.3, 2.3, 2.2, 2.0, 1.8, 1.4, 1.1, 0.8, 0.5, 0.3, 0.15])


def unique_hex(rng: np.random.Generator, n: int, digits: int, prefix: str = "") -> np.ndarray:
    """``n`` distinct random hexadecimal ids of ``digits`` (even) characters."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = n - len(out)
        text = rng.bytes(k * digits // 2).hex()
        for i in range(k):
            ident = prefix + text[i * digits:(i + 1) * digits]
            if ident not in seen:  # a collision is astronomically rare, but ids must be unique
                seen.add(ident)
                out.append(ident)
    return np.array(out, dtype=object)


def props(n: int, **values: Any) -> np.ndarray:
    """``n`` JSON object texts; each value is a scalar or an array of length ``n``."""
    if not values:
        return np.full(n, "{}", dtype=object)
    cols = [v.tolist() if isinstance(v, np.ndarray) else [v] * n for v in values.values()]
    keys = list(values)
    dump = json.JSONEncoder(separators=(",", ":")).encode
    rows = zip(*cols, strict=True)
    return np.array([dump(dict(zip(keys, row, strict=True))) for row in rows], dtype=object)


def _context_table() -> np.ndarray:
    """JSON context per (kind, device, os, segment), so events just index into it."""
    table = np.empty((len(KINDS), len(DEVICES), len(OSES), len(SEGMENTS)), dtype=object)
    for k, kind in enumerate(KINDS):
        for d, device in enumerate(DEVICES):
            for o, os_ in enumerate(OSES):
                for s, seg in enumerate(SEGMENTS):
                    ctx: dict[str, str] = {"segment": seg}
                    if kind != "other":
                        ctx = {"device": device, "os": os_, **ctx}
                    if kind == "app":
                        ctx["app_version"] = "5.13.2"
                    table[k, d, o, s] = json.dumps(ctx, separators=(",", ":"))
    return table


CONTEXT = _context_table()


@dataclass
class People:
    """The simulated customers: segment, devices, identifiers, activity."""

    segment: np.ndarray      # index into SEGMENTS
    mobile_os: np.ndarray    # index into OSES (ios or android)
    desktop_os: np.ndarray   # index into OSES (windows or macos), used if has_desktop
    has_desktop: np.ndarray
    user_id: np.ndarray      # the bank's customer id (given to prospects on opening)
    anon_web: np.ndarray     # browser cookie id
    anon_app: np.ndarray     # app install id
    phone: np.ndarray        # hashed caller id, how the phone system knows a person
    prospect: np.ndarray     # not a customer yet: only seen in onboarding
    coin: np.ndarray         # uniform draw for stable per-person assignments (variants)
    weight: np.ndarray       # activity: how often a person shows up

    @classmethod
    def create(cls, rng: np.random.Generator, n: int) -> People:
        prospect = np.zeros(n, dtype=bool)
        prospect[rng.choice(n, size=max(20, n // 20), replace=False)] = True
        weight = np.where(prospect, 0.0, rng.gamma(1.3, 1.0, n))
        return cls(
            segment=rng.choice(3, size=n, p=[0.8, 0.12, 0.08]),
            mobile_os=np.where(rng.random(n) < 0.55, 2, ANDROID),
            desktop_os=np.where(rng.random(n) < 0.7, 0, 1),
            has_desktop=rng.random(n) < 0.6,
            user_id=unique_hex(rng, n, 10, "cus_"),
            anon_web=unique_hex(rng, n, 16, "web-"),
            anon_app=unique_hex(rng, n, 16, "app-"),
            phone=unique_hex(rng, n, 12, "tel-"),
            prospect=prospect,
            coin=rng.random(n),
            weight=weight / weight.sum(),
        )

    def __len__(self) -> int:
        return len(self.segment)


@dataclass
class Batch:
    """Attempts in progress, one row each; ``t`` is each row's clock (ms, UTC)."""

    pid: np.ndarray
    t: np.ndarray
    channel: np.ndarray   # web / app / chat / voice / agent
    session: np.ndarray
    device: np.ndarray    # index into DEVICES
    ctx: np.ndarray       # JSON context text
    anon: np.ndarray      # anonymous id or None
    user: np.ndarray      # whether events carry the user id
    row: np.ndarray       # free row label, so a flow can find its own columns again

    def __len__(self) -> int:
        return len(self.pid)

    def take(self, mask: np.ndarray) -> Batch:
        return Batch(*(getattr(self, f.name)[mask] for f in fields(self)))

    def split(self, keep: np.ndarray) -> tuple[Batch, Batch]:
        return self.take(keep), self.take(~keep)

    @staticmethod
    def concat(*parts: Batch) -> Batch:
        return Batch(*(np.concatenate([getattr(p, f.name) for p in parts])
                       for f in fields(Batch)))

    def copy(self) -> Batch:
        return replace(self, t=self.t.copy())

    @property
    def mobile(self) -> np.ndarray:
        return self.device != DESKTOP


BATCH_COLUMNS = frozenset({"t", "pid", "channel", "session", "ctx", "anon", "user"})


class Log:
    """Columnar event accumulator: one list of arrays per event field."""

    COLUMNS = ("t", "pid", "event", "channel", "session", "props", "ctx", "anon", "user")

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {c: [] for c in self.COLUMNS}

    def emit(self, b: Batch, event: str | np.ndarray, values: np.ndarray | None = None,
             **over: Any) -> None:
        """Record one event per row of ``b`` at its clock; ``over`` replaces columns.

        Columns taken from ``b`` are copied: a flow may change them in place afterwards.
        """
        n = len(b)
        if n == 0:
            return
        cols = {"t": b.t, "pid": b.pid, "event": event, "channel": b.channel,
                "session": b.session, "props": "{}" if values is None else values,
                "ctx": b.ctx, "anon": b.anon, "user": b.user} | over
        for name, value in cols.items():
            if not isinstance(value, np.ndarray):
                value = np.full(n, value, dtype=bool if name == "user" else object)
            elif name in BATCH_COLUMNS:
                value = value.copy()  # the flow may move or relabel its rows in place later
            if len(value) != n:
                raise ValueError(f"{event!r}: column {name} has {len(value)} rows, not {n}")
            self.parts[name].append(value)

    def where(self, b: Batch, mask: np.ndarray, event: str, **values: Any) -> Batch:
        """Record ``event`` for the rows of ``b`` in ``mask``; array values are full-length."""
        sub = b.take(mask)
        picked = {k: v[mask] if isinstance(v, np.ndarray) else v for k, v in values.items()}
        self.emit(sub, event, props(len(sub), **picked))
        return sub

    def columns(self) -> dict[str, np.ndarray]:
        return {c: np.concatenate(v) for c, v in self.parts.items()}


@dataclass
class Answers:
    """Survey answers a phone system keeps apart from the events (exported as a file)."""

    t: list[np.ndarray] = field(default_factory=list)
    pid: list[np.ndarray] = field(default_factory=list)
    score: list[np.ndarray] = field(default_factory=list)
    known: list[np.ndarray] = field(default_factory=list)


class World:
    """Everything a flow needs: random numbers, people, the clock window, the log.

    ``survey_rng``: the surveys' own random stream, so that asking them leaves every
    other event as it was."""

    def __init__(self, rng: np.random.Generator, people: People, start_ms: int, days: int,
                 survey_seed: int = 0):
        self.rng = rng
        self.survey_rng = np.random.default_rng(survey_seed)
        self.ivr = Answers()
        self.people = people
        self.start = start_ms
        self.days = days
        self.end = start_ms + days * DAY
        #: The deliberate change: a faster payment gateway from day 28.
        self.change = start_ms + min(28, days // 2) * DAY
        #: The incident: from day 44 (of 56) the bank app no longer hands Android customers
        #: back after a 3-D Secure push, until the fix ships on day 49. Its own random stream
        #: decides who is hit, so the rest of the world draws as it would have.
        self.incident = (start_ms + days * 44 // 56 * DAY, start_ms + days * 49 // 56 * DAY)
        self.incident_rng = np.random.default_rng(survey_seed + 1_000)
        #: The payment help intervention's own stream: who is held out, who takes the offer.
        self.offer_rng = np.random.default_rng(survey_seed + 2_000)
        self.log = Log()
        self.troubles: list[tuple[Batch, str]] = []
        # A little day-to-day noise so the daily series is not perfectly smooth.
        self._daily = rng.lognormal(0.0, 0.06, days)

    def size(self, rate: float, floor: int = 40) -> int:
        """Attempts of a flow: ``rate`` per person, with a floor so small demos cover it."""
        return max(floor, round(rate * len(self.people)))

    def starts(self, n: int, week: np.ndarray = DIGITAL_WEEK,
               hours: np.ndarray = DIGITAL_HOURS) -> np.ndarray:
        """Start times (ms) following the weekly and daily rhythm and a slow growth."""
        day = np.arange(self.days)
        weekday = (self.start // DAY + day + 3) % 7  # 1970-01-01 was a Thursday
        w = week[weekday] * (1 + 0.004 * day) * self._daily
        d = self.rng.choice(self.days, size=n, p=w / w.sum())
        h = self.rng.choice(24, size=n, p=hours / hours.sum())
        return self.start + d * DAY + h * HOUR + self.rng.integers(0, HOUR, n)

    def pick(self, n: int) -> np.ndarray:
        """``n`` existing customers, active ones more often (several attempts each)."""
        return self.rng.choice(len(self.people), size=n, p=self.people.weight)

    def wait(self, n: int, median_s: float | np.ndarray,
             sigma: float | np.ndarray = 0.6) -> np.ndarray:
        """Long-tailed (lognormal) durations in ms around a median in seconds."""
        return (np.asarray(median_s) * SECOND * self.rng.lognormal(0.0, sigma, n)).astype(np.int64)

    def choose(self, options: list[str] | np.ndarray, n: int,
               p: list[float] | None = None) -> np.ndarray:
        """``n`` random picks from ``options`` as an object array (JSON-ready)."""
        return np.asarray(self.rng.choice(np.asarray(options, dtype=object), n, p=p), dtype=object)

    def chance(self, n: int, p: float | np.ndarray) -> np.ndarray:
        return self.rng.random(n) < p

    def sessions(self, n: int, prefix: str) -> np.ndarray:
        return unique_hex(self.rng, n, 12, prefix)

    def digital(self, pid: np.ndarray, t: np.ndarray, app_share: float,
                logged_in: tuple[float, float] = (0.5, 0.85)) -> Batch:
        """New web/app sessions; ``logged_in`` is the (web, app) share already signed in."""
        p, n = self.people, len(pid)
        app = self.chance(n, app_share)
        desktop = ~app & p.has_desktop[pid] & self.chance(n, 0.65)
        tablet = ~desktop & self.chance(n, 0.08)
        device = np.where(desktop, DESKTOP, np.where(tablet, TABLET, MOBILE))
        os_ = np.where(desktop, p.desktop_os[pid], p.mobile_os[pid])
        ctx = CONTEXT[app.astype(int), device, os_, p.segment[pid]]
        user = self.chance(n, np.where(app, logged_in[1], logged_in[0])) & ~p.prospect[pid]
        return Batch(pid=pid, t=t.astype(np.int64),
                     channel=np.where(app, "app", "web").astype(object),
                     session=self.sessions(n, "s-"), device=device, ctx=ctx,
                     anon=np.where(app, p.anon_app[pid], p.anon_web[pid]), user=user,
                     row=np.arange(n))

    def plain(self, b: Batch) -> np.ndarray:
        """Context for non-digital channels: the segment only."""
        return self.plain_for(b.pid)

    def plain_for(self, pid: np.ndarray) -> np.ndarray:
        return CONTEXT[2, 0, 0, self.people.segment[pid]]

    def notify(self, b: Batch, event: str | np.ndarray, channel: str | np.ndarray,
               values: np.ndarray | None = None) -> None:
        """An email/SMS the company sends: known by user id, outside any session."""
        self.log.emit(b, event, values, channel=channel, session=None, anon=None, user=True,
                      ctx=self.plain(b))

    def trouble(self, b: Batch, topic: str) -> None:
        """Remember attempts that failed or stopped: candidates for an escalation."""
        if len(b):
            self.troubles.append((b.copy(), topic))
