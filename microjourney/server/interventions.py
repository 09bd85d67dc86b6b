"""Which intervention to show now: the rules of ``GET /v1/decide``'s ``intervention``
(docs/interventions.md), on the signals the live state sees (:mod:`.live`) and the
decisions made before (:class:`Ledger`).

Each rule whose signal is seen in the person's attempt, and that was not decided in that
attempt yet, is checked in the order the workspace lists the rules; the first to pass every
check is offered, the others are named with the check they failed:

1. ``window`` — today (UTC) lies between the rule's ``start`` and ``end``;
2. ``channel`` — the event's channel is one of the rule's ``channels`` (any when none);
3. ``quiet`` — now (UTC) is outside the rule's ``quiet_hours``;
4. ``consent`` — where the workspace requires consent, the decide carries it;
5. ``person_cap`` — fewer than ``cap.person`` decisions for the person within ``cap.within``;
6. ``moment_cap`` — fewer than ``cap.moment_day`` decisions of the moment today (UTC);
7. ``holdout`` — the person is outside the rule's ``holdout`` share (a hash of the rule and
   the person): a person inside it is never offered the rule; the decision is recorded as
   held out (it counts towards the caps as one offered would) and the next rule is checked.

A decision's id is a hash of the rule, the person and the attempt, so a decide asked again
(or after a restart) names the same decision, and its event is stored once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from ..spec.interventions import Intervention
from ..spec.model import Workspace as Spec
from .decide import Ask, share
from .live import Fired, Live

OFFERED, HELD = "intervention_offered", "intervention_held"
#: Decisions remembered per identifier (beyond a cap's window they are dropped anyway).
MAX_PER_ID = 1_000
#: The columns read of the decision events.
_READ = ("anonymous_id, user_id, epoch_ms(timestamp), json_extract_string(properties, '/moment'), "
         "json_extract_string(properties, '/decision')")


class Ledger:
    """The decisions made (offered and held out), for the caps: by identifier, with when,
    and by moment and UTC day. Read from the store's decision events at start (those recent
    enough for a cap), then kept up to date by every decide."""

    def __init__(self, memory: float) -> None:
        self.lock = threading.RLock()
        #: how long a decision matters (the longest cap window, at least a day), seconds
        self.memory = memory
        self._by_id: dict[str, deque[tuple[int, str]]] = {}
        self._by_day: dict[tuple[str, str], set[str]] = {}

    def load(self, source: duckdb.DuckDBPyRelation, now_ms: int) -> Ledger:
        col, const = duckdb.ColumnExpression, duckdb.ConstantExpression
        since = datetime.fromtimestamp((now_ms - int(self.memory * 1000)) / 1000, UTC)
        found = source.filter(col("event").isin(const(OFFERED), const(HELD)))
        found = found.filter(col("timestamp") >= const(since)).order("timestamp").project(_READ)
        for anonymous_id, user_id, ms, moment, decision in found.fetchall():
            if moment and decision:
                self.record([i for i in (anonymous_id, user_id) if i], moment, decision, ms)
        return self

    def record(self, ids: Iterable[str], moment: str, decision: str, ms: int) -> None:
        with self.lock:
            for i in ids:
                kept = self._by_id.setdefault(i, deque(maxlen=MAX_PER_ID))
                if all(d != decision for _, d in kept):
                    kept.append((ms, decision))
            self._by_day.setdefault((moment, _day(ms)), set()).add(decision)

    def unrecord(self, ids: Iterable[str], moment: str, decision: str, ms: int) -> None:
        with self.lock:
            for i in ids:
                kept = self._by_id.get(i)
                if kept is not None:
                    for item in [x for x in kept if x[1] == decision]:
                        kept.remove(item)
            self._by_day.get((moment, _day(ms)), set()).discard(decision)

    def for_person(self, ids: Iterable[str], since_ms: int) -> int:
        """Decisions for anyone of ``ids`` since ``since_ms``."""
        return len({d for i in ids for ms, d in self._by_id.get(i, ()) if ms >= since_ms})

    def for_moment(self, moment: str, ms: int) -> int:
        return len(self._by_day.get((moment, _day(ms)), ()))

    def prune(self, now_ms: int) -> None:
        """Forget what no cap reads any more (older than :attr:`memory`)."""
        since, today = now_ms - int(self.memory * 1000), _day(now_ms)
        with self.lock:
            for i in [i for i, kept in self._by_id.items() if not kept or kept[-1][0] < since]:
                del self._by_id[i]
            for key in [k for k in self._by_day if k[1] < today]:
                del self._by_day[key]

    def drop(self, ids: Iterable[str]) -> None:
        with self.lock:
            for i in ids:
                self._by_id.pop(i, None)

    def __len__(self) -> int:
        return len(self._by_id)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()


@dataclass(frozen=True)
class Made:
    """A decision: the rule's ``fired`` signal, its id, whether the person is held out, and
    whether it was made for the same event before (``again``: nothing new to record)."""

    fired: Fired
    decision: str
    held: bool
    again: bool = False

    @property
    def rule(self) -> Intervention:
        return self.fired.rule


@dataclass
class Verdict:
    """The intervention to offer (None: none), the held-out decisions made on the way, and
    why each rule seen was not offered."""

    offered: Made | None = None
    held: list[Made] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def made(self) -> list[Made]:
        return [*self.held, *([self.offered] if self.offered else [])]

    def take(self, made: Made) -> bool:
        """``made`` held out (the rule refused as ``holdout``) or offered; True when offered
        (no other rule is looked at then)."""
        if made.held:
            self.held.append(made)
            self.refused[made.rule.name] = "holdout"
            return False
        self.offered = made
        return True


class Intervener:
    """The rules of one workspace over the live state and the ledger (module doc)."""

    def __init__(self, spec: Spec, live: Live, ledger: Ledger) -> None:
        self.spec, self.live, self.ledger = spec, live, ledger

    def decide(self, ask: Ask, consent: bool, now: datetime | None = None, *,
               survey_free: bool = True) -> Verdict:
        """The intervention for ``ask`` now (``survey_free``: no survey is shown by this
        decide, so a survey offer may be); decisions made are recorded in the ledger and the
        live state (:meth:`take_back` undoes them when they cannot be stored)."""
        now = now or datetime.now(UTC)
        ms = int(now.timestamp() * 1000)
        out = Verdict()
        if not self.spec.interventions or not ask.ids:
            return out
        ids = tuple(i for i in (ask.user_id, ask.anonymous_id) if i)  # the user id first
        if ask.event and ask.event_id:  # the event just tracked, should its batch come later
            self.live.feed(ids, ask.event, ask.channel, ask.properties, now.timestamp(),
                           ask.event_id, now.timestamp())
        with self.ledger.lock:
            for f in self.live.fired(ids, now.timestamp(), ask.event_id):
                r = f.rule
                decision = "i" + hashlib.sha256("\x00".join((r.name, ask.person, f.attempt.id))
                                                .encode()).hexdigest()[:31]
                held = r.holdout > 0 and share("holdout", r.name, ask.person) < r.holdout
                if f.again is not None:
                    if out.take(Made(f, f.again, held, again=True)):
                        return out
                    continue
                reason = "survey" if r.offer == "survey" and not survey_free else \
                    self._refusal(r, ask, consent, now, ms)
                if reason is not None:
                    out.refused[r.name] = reason
                    continue
                self.ledger.record(ask.ids, r.moment, decision, ms)
                self.live.decided(f, decision, ask.event_id)
                if out.take(Made(f, decision, held)):
                    return out
        return out

    def _refusal(self, r: Intervention, ask: Ask, consent: bool, now: datetime, ms: int) -> str | None:
        today = now.date()
        if (r.start is not None and today < r.start) or (r.end is not None and today > r.end):
            return "window"
        if r.channels and ask.channel not in r.channels:
            return "channel"
        if r.quiet(now):
            return "quiet"
        if self.spec.privacy.consent_required and not consent:
            return "consent"
        if r.cap.person is not None and \
                self.ledger.for_person(ask.ids, ms - int(r.cap.within * 1000)) >= r.cap.person:
            return "person_cap"
        if r.cap.moment_day is not None and self.ledger.for_moment(r.moment, ms) >= r.cap.moment_day:
            return "moment_cap"
        return None

    def take_back(self, ask: Ask, made: Iterable[Made], now: datetime) -> None:
        """Forget decisions that were not stored after all (withheld, refused)."""
        ms = int(now.timestamp() * 1000)
        for m in made:
            if not m.again:
                self.ledger.unrecord(ask.ids, m.rule.moment, m.decision, ms)
                self.live.undecided(m.fired)


def decision_call(ask: Ask, made: Made, consent: bool, now: datetime) -> dict[str, Any]:
    """The ``intervention_offered`` (or ``intervention_held``) track call of a decision; one
    id per decision, so a decide asked again stores nothing twice."""
    r = made.rule
    props: dict[str, Any] = {"intervention": r.name, "decision": made.decision, "offer": r.offer,
                             "moment": r.moment, "signal": r.when.signal, "holdout": made.held}
    if ask.attempt:
        props["attempt"] = ask.attempt
    event = HELD if made.held else OFFERED
    return {"type": "track", "event": event, "event_id": f"mj-{event}-{made.decision}",
            "timestamp": now.isoformat(), "anonymous_id": ask.anonymous_id, "user_id": ask.user_id,
            "channel": ask.channel, "properties": props,
            "context": {"consent": {"analytics": True}} if consent else {}}


def payload(made: Made, language: str | None) -> dict[str, Any]:
    """The intervention as ``GET /v1/decide`` answers it (docs/interventions.md)."""
    r = made.rule
    chosen, text = r.texts(language)
    return {"name": r.name, "offer": r.offer, "text": text, "language": chosen,
            "decision": made.decision, "moment": r.moment, "signal": r.when.signal}
