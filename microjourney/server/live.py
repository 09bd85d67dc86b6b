"""The open attempts of each person, followed live for the interventions
(docs/interventions.md, "What is evaluated live").

Fed event by event, as the collector accepts them (:class:`Watched`) and as ``GET /v1/decide``
names the event just tracked (with its ``event_id``: an event fed twice counts once), never
by a scan of the store. Only the moments that have a rule are followed, by their own
matchers read as the engine reads them (:mod:`..spec.matching`): a ``start`` opens an
attempt (or repeats step 0 of the open one), a step is reached (or repeated), an outcome
ends it, and an attempt with no event of its own within the moment's ``timeout`` is over
(abandoned). Any other event of the person (clicks, errors, status checks) belongs to the
open attempt that started last, as in the engine (docs/frictions.md). Each rule keeps a few
numbers per attempt (a count, a run of clicks), so a person costs a few hundred bytes.

Memory is bounded: a person is followed from a start or failure of a ruled moment on, and
forgotten once idle for longer than every rule could look back (the moments' timeouts, the
failure windows), or when :attr:`Live.limit` persons are followed and a new one comes (the
least recently active goes). At start the server follows again what a restart forgot: the
stored events of the last horizon that a rule reads (:meth:`Live.resume`; the decisions made
are in the store too, :mod:`.interventions`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson

from ..spec.interventions import Intervention
from ..spec.matching import matches
from ..spec.model import Matcher, Moment
from ..spec.model import Workspace as Spec
from .calls import PAGE, page_of
from .collector import Collector

#: Event ids remembered per person (an event fed twice counts once), identifiers per person.
SEEN, MAX_IDS = 64, 8
#: Characters of an identifier or event name taken (longer ones are not followed).
MAX_ID = 200
#: Failures remembered per person and moment.
MAX_FAILS = 100
#: Stored events read back at start (the newest of the horizon), at most.
RESUME = 200_000
OPEN, DONE = None, ("completed", "escalated")


@dataclass(eq=False)
class Attempt:
    """A person's latest attempt of a moment: ``outcome`` None while open."""

    id: str
    started: float
    last_own: float
    step: int = 0
    outcome: str | None = None
    repeats: dict[int, int] = field(default_factory=dict)
    #: rule -> what the rule keeps (a count; a run: [key, last time, run, best run])
    signals: dict[str, Any] = field(default_factory=dict)
    #: rule -> (decision, the event id of the decide that made it)
    decided: dict[str, tuple[str, str | None]] = field(default_factory=dict)


@dataclass(eq=False)
class Person:
    ids: set[str]
    last: float
    attempts: dict[str, Attempt] = field(default_factory=dict)
    fails: dict[str, deque[float]] = field(default_factory=dict)
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    #: rule -> the last failure counted by its decision (a failure rule counts those after it)
    counted: dict[str, float] = field(default_factory=dict)


@dataclass(eq=False)
class Fired:
    """A rule whose signal is seen now, in ``attempt`` of ``person``."""

    rule: Intervention
    person: Person
    attempt: Attempt
    again: str | None = None  # the decision made for the same event before
    undo: float | None = None  # what ``Person.counted`` held before the decision


def parse_time(value: Any, now: float) -> float:
    """An event's timestamp in Unix seconds (arrival, ``now``, when it has none readable;
    never later than ``now``)."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            return min(datetime.fromisoformat(value).timestamp(), now)
        except (ValueError, OverflowError):
            pass
    return now


def consented(context: Any) -> bool:
    """``context.consent.analytics`` is ``true`` (store/consent.py's rule, a JSON string read once)."""
    if isinstance(context, str | bytes):
        try:
            context = orjson.loads(context)
        except orjson.JSONDecodeError:
            return False
    consent = context.get("consent") if isinstance(context, dict) else None
    return isinstance(consent, dict) and consent.get("analytics") is True


class Live:
    """The persons followed, and the rules' signals in their attempts (module doc)."""

    def __init__(self, spec: Spec, limit: int | None = None) -> None:
        self.rules = spec.interventions
        self.limit = limit or spec.intervention_persons
        self.moments: dict[str, Moment] = {r.moment: spec.moments[r.moment] for r in self.rules}
        self._by_moment: dict[str, list[Intervention]] = {}
        for r in self.rules:
            self._by_moment.setdefault(r.moment, []).append(r)
        #: event name -> (moment, role, funnel index, matcher), in the engine's rank order
        self._roles: dict[str, list[tuple[str, str, int, Matcher]]] = {}
        for m in self.moments.values():
            n = len(m.steps)
            entries = [("start", 0, m.start), *(("step", i + 1, s) for i, s in enumerate(m.steps)),
                       ("completed", n + 1, m.complete), ("failed", -1, m.fail),
                       ("escalated", -1, m.escalate)]
            for role, index, matcher in entries:
                for name in matcher.event if matcher is not None else ():
                    self._roles.setdefault(name, []).append((m.name, role, index, matcher))
        self._names = set(self._roles) | {n for r in self.rules for n in r.when.names}
        self.horizon = max([m.timeout for m in self.moments.values()]
                           + [r.when.window or 0.0 for r in self.rules if r.when.signal == "failure"],
                           default=0.0)
        self.lock = threading.RLock()
        self._by_id: dict[str, Person] = {}
        self._lru: OrderedDict[Person, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._lru)

    # -- feeding -------------------------------------------------------------
    def resume(self, source: duckdb.DuckDBPyRelation, now: float) -> int:
        """Follow again the open attempts a restart forgot: the stored events (``source``,
        the store's or the lake's) of the last :attr:`horizon` seconds whose names a rule
        reads, oldest first (at most :data:`RESUME`, the newest). Returns how many were read."""
        if not self.rules:
            return 0
        col, const = duckdb.ColumnExpression, duckdb.ConstantExpression
        since = datetime.fromtimestamp(now - self.horizon, UTC)
        recent = source.filter(col("event").isin(*(const(n) for n in sorted(self._names))))
        recent = recent.filter(col("timestamp") >= const(since))
        order = "timestamp DESC, seq DESC" if "seq" in source.columns else "timestamp DESC"
        rows = recent.order(order).limit(RESUME).project(
            "user_id, anonymous_id, event, channel, properties::VARCHAR, "
            "epoch_ms(timestamp), event_id").fetchall()
        for user_id, anonymous_id, event, channel, props, ms, event_id in reversed(rows):
            try:
                doc = orjson.loads(props) if props else {}
            except orjson.JSONDecodeError:
                doc = {}
            self.feed(_ids(user_id, anonymous_id), event, channel or "web",
                      doc if isinstance(doc, dict) else {}, ms / 1000.0, event_id, now)
        self.sweep(now)
        return len(rows)

    def feed_body(self, body: bytes, answer: dict[str, Any], consent_required: bool) -> None:
        """The track and page calls of a collector request, as it answered them: those
        stored (not rejected, and with consent where it is required); a page call as the
        store keeps it, the event ``page_viewed`` with its ``page`` (:mod:`.calls`)."""
        if not self.rules or not answer.get("ok") or not answer.get("accepted"):
            return
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        calls = data.get("batch") if isinstance(data, dict) else None
        if not isinstance(calls, list):
            return
        refused = {r.get("index") for r in answer.get("rejected") or ()}
        now = time.time()
        with self.lock:
            for i, c in enumerate(calls):
                if i in refused or not isinstance(c, dict):
                    continue
                kind = c.get("type", "track")
                event = PAGE if kind == "page" else c.get("event") if kind == "track" else None
                if event not in self._names or (consent_required and not consented(c.get("context"))):
                    continue
                props = c.get("properties")
                props = dict(props) if isinstance(props, dict) else {}
                if kind == "page":
                    props["page"] = page_of(c.get("name"), props.get("page"), props.get("url"))
                self.feed(_ids(c.get("user_id"), c.get("anonymous_id")), str(event),
                          c.get("channel") or "web", props,
                          parse_time(c.get("timestamp"), now), c.get("event_id"), now)
            self.sweep(now)

    def feed(self, ids: tuple[str, ...], event: str, channel: str, props: dict[str, Any],
             t: float, event_id: Any, now: float) -> None:
        """One event of the person known by ``ids`` (user id first) at ``t``."""
        if not ids or event not in self._names:
            return
        with self.lock:
            roles = self._role(event, channel, props)
            p = self._person(ids, now, create=any(r in ("start", "failed") for _, r, _ in roles))
            if p is None:
                return
            if isinstance(event_id, str) and event_id:
                if event_id in p.seen:
                    return
                p.seen[event_id] = None
                if len(p.seen) > SEEN:
                    p.seen.popitem(last=False)
            own = None
            for moment, role, index in roles:
                own = self._own(p, self.moments[moment], role, index, t, ids)
            target = own or self._innermost(p, t)
            if target is not None:
                for rule in self._by_moment[target[0]]:
                    _observe(rule, target[1], event, props, t)

    def _role(self, event: str, channel: str, props: dict[str, Any]) -> list[tuple[str, str, int]]:
        out: dict[str, tuple[str, str, int]] = {}
        for moment, role, index, matcher in self._roles.get(event, ()):
            if moment not in out and matches(matcher, event, channel, props):
                out[moment] = (moment, role, index)
        return list(out.values())

    def _own(self, p: Person, m: Moment, role: str, index: int, t: float,
             ids: tuple[str, ...]) -> tuple[str, Attempt] | None:
        """An event of moment ``m`` playing ``role``: the attempt it belongs to, or None."""
        a = p.attempts.get(m.name)
        is_open = a is not None and a.outcome is OPEN and t - a.last_own <= m.timeout
        if role == "failed":
            fails = p.fails.setdefault(m.name, deque(maxlen=MAX_FAILS))
            fails.append(t)
        if not is_open:
            if role not in ("start", "failed"):
                return None
            key = hashlib.sha256(f"{ids[0]}\x00{m.name}\x00{t:.3f}".encode()).hexdigest()[:24]
            a = p.attempts[m.name] = Attempt(key, t, t)
            if role == "failed":  # a failure outside an attempt: an attempt of its own
                a.outcome = role
                return m.name, a
        assert a is not None
        a.last_own = max(a.last_own, t)
        if role in ("start", "step"):
            a.repeats[index] = a.repeats.get(index, 0) + 1
            a.step = max(a.step, index)
        else:
            a.outcome = role
        return m.name, a

    def _innermost(self, p: Person, t: float) -> tuple[str, Attempt] | None:
        best: tuple[str, Attempt] | None = None
        for name, a in p.attempts.items():
            if a.outcome is OPEN and t - a.last_own <= self.moments[name].timeout \
                    and (best is None or a.started > best[1].started):
                best = name, a
        return best

    def _person(self, ids: tuple[str, ...], now: float, *, create: bool) -> Person | None:
        p = next((self._by_id[i] for i in ids if i in self._by_id), None)
        if p is None:
            if not create:
                return None
            p = Person(set(), now)
            self._lru[p] = None
            while len(self._lru) > self.limit:
                self._forget(next(iter(self._lru)))
        for i in ids:
            if i not in p.ids and len(p.ids) < MAX_IDS and i not in self._by_id:
                p.ids.add(i)
                self._by_id[i] = p
        p.last = now
        self._lru.move_to_end(p)
        return p

    def _forget(self, p: Person) -> None:
        self._lru.pop(p, None)
        for i in p.ids:
            if self._by_id.get(i) is p:
                del self._by_id[i]

    def sweep(self, now: float) -> None:
        """Forget the persons idle for longer than any rule looks back."""
        with self.lock:
            while self._lru:
                p = next(iter(self._lru))
                if now - p.last <= self.horizon:
                    return
                self._forget(p)

    def drop(self, ids: Iterable[str]) -> None:
        """Forget the persons of ``ids`` (an erasure)."""
        with self.lock:
            for i in ids:
                p = self._by_id.get(i)
                if p is not None:
                    self._forget(p)

    # -- reading -------------------------------------------------------------
    def fired(self, ids: tuple[str, ...], now: float, event_id: str | None = None) -> list[Fired]:
        """The rules whose signal is seen now in the attempts of the person ``ids``, in the
        order the workspace lists them; a rule decided in the attempt already is left out,
        unless it was decided for this very ``event_id`` (a decide asked again)."""
        with self.lock:
            self.sweep(now)
            p = next((self._by_id[i] for i in ids if i in self._by_id), None)
            if p is None:
                return []
            out = []
            for rule in self.rules:
                a = p.attempts.get(rule.moment)
                made = a.decided.get(rule.name) if a is not None else None
                if a is None:
                    continue
                if made is not None:
                    if event_id is not None and made[1] == event_id:
                        out.append(Fired(rule, p, a, again=made[0]))
                elif self._seen(rule, p, a, now):
                    out.append(Fired(rule, p, a))
            return out

    def _seen(self, rule: Intervention, p: Person, a: Attempt, now: float) -> bool:
        m, w = self.moments[rule.moment], rule.when
        if w.signal == "failure":
            window = w.window or m.timeout
            after = p.counted.get(rule.name, -1.0)
            recent = sum(1 for f in p.fails.get(m.name, ()) if now - f <= window and f > after)
            return a.outcome not in DONE and recent >= w.threshold
        if a.outcome is not OPEN or now - a.last_own > m.timeout:
            return False
        if w.signal == "repeated_attempt":
            return max(a.repeats.values(), default=0) >= w.threshold
        if w.signal == "waiting":
            funnel = m.funnel
            ahead = funnel[a.step + 1] if a.step + 1 < len(funnel) else None
            limit = w.seconds or (ahead.sla if ahead is not None else None) or m.sla
            return limit is not None and now - a.last_own > limit
        kept = a.signals.get(rule.name)
        if w.signal == "error_shown":
            return (kept or 0) >= w.threshold
        return kept is not None and kept[3] >= w.threshold

    def decided(self, f: Fired, decision: str, event_id: str | None) -> None:
        with self.lock:
            f.attempt.decided[f.rule.name] = (decision, event_id)
            fails = f.person.fails.get(f.rule.moment)
            if f.rule.when.signal == "failure" and fails:
                f.undo = f.person.counted.get(f.rule.name)
                f.person.counted[f.rule.name] = fails[-1]

    def undecided(self, f: Fired) -> None:
        with self.lock:
            f.attempt.decided.pop(f.rule.name, None)
            if f.rule.when.signal == "failure":
                if f.undo is None:
                    f.person.counted.pop(f.rule.name, None)
                else:
                    f.person.counted[f.rule.name] = f.undo


def _ids(*values: Any) -> tuple[str, ...]:
    return tuple(v for v in values if isinstance(v, str) and v and len(v) <= MAX_ID)


_TARGETS = ("selector", "element", "target")


def _observe(rule: Intervention, a: Attempt, event: str, props: dict[str, Any], t: float) -> None:
    """What rule ``rule`` keeps of one event of attempt ``a``."""
    w = rule.when
    if w.signal == "error_shown":
        if event in w.names or props.get("valid") in (False, "false"):
            a.signals[rule.name] = a.signals.get(rule.name, 0) + 1
    elif w.signal in ("rage_click", "uncertainty") and event in w.names:
        if w.signal == "rage_click":
            key = next((str(props[k])[:MAX_ID] for k in _TARGETS if props.get(k) is not None), None)
            if key is None:
                return  # a click on nothing named never makes a burst
        else:
            key = event
        kept = a.signals.setdefault(rule.name, [None, 0.0, 0, 0])
        gap = w.window or 0.0
        kept[2] = kept[2] + 1 if kept[0] == key and 0 <= t - kept[1] <= gap else 1
        kept[0], kept[1] = key, t
        kept[3] = max(kept[3], kept[2])


class Watched(Collector):
    """The collector, telling :attr:`live` of the track calls of each request it stored."""

    live: Live | None = None

    async def collect(self, body: bytes) -> dict[str, Any]:
        answer = await super().collect(body)
        if self.live is not None and self.live.rules:
            self.live.feed_body(body, answer, self._consent)
        return answer
