"""Which moment outcome one event is, read from the workspace's matchers in Python: for
``GET /v1/decide``, which must answer within the page view, before any refresh (docs/surveys.md,
"Serving surveys").

A moment's ``complete`` matcher makes an event a completion, ``fail`` a failure,
``escalate`` an escalation: the event name, the matcher's channels and its ``where``
tests, read as the engine's tagging reads them (``engine/tagging.py``: a property compared
as text, so ``valid: true`` matches JSON ``true`` and the text ``"true"``; as a number too
when the value is one; ``exists``). The engine compiles the same matchers into SQL over
many events; this reads them for one. ``tests/test_decide.py`` holds the two equal on the
same events.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from .model import Matcher, Predicate
from .model import Workspace as Spec

#: A moment's outcome roles (engine/tagging.py's ``OUTCOMES``) and the outcome each gives,
#: in the order the engine ranks them.
ROLES = (("complete", "completed"), ("fail", "failed"), ("escalate", "escalated"))
#: Event names, channels and property sets remembered (a bounded cache).
CACHE = 10_000


def text(value: Any) -> str | None:
    """A property as ``json_extract_string`` gives it: a string as itself, a boolean as
    ``true``/``false``, a number as written, null as nothing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return orjson.dumps(value).decode()


def number(value: str | None) -> float | None:
    """Text as a number, as ``TRY_CAST(... AS DOUBLE)`` reads it (None when it is not one)."""
    if value is None or "_" in value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def holds(p: Predicate, properties: dict[str, Any]) -> bool:
    """Whether the event's ``properties`` pass the test ``p`` (engine/tagging.py, ``predicate``)."""
    t = text(properties.get(p.key))
    if p.op == "exists":
        return (t is not None) is bool(p.value)
    if p.op in ("gt", "gte", "lt", "lte"):
        n = number(t)
        if n is None or math.isnan(n):
            return False
        bound = float(p.value)
        return {"gt": n > bound, "gte": n >= bound, "lt": n < bound, "lte": n <= bound}[p.op]
    if t is None:
        return False
    values = p.value if p.op in ("in", "not_in") else [p.value]
    texts = {str(v).lower() if isinstance(v, bool) else str(v) for v in values}
    numbers = {float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)}
    n = number(t)
    if t not in texts and numbers and n is None:
        return False  # SQL's NULL (text that is no number): neither in nor not in
    hit = t in texts or (n is not None and n in numbers)
    return hit if p.op in ("eq", "in") else not hit


def matches(m: Matcher, event: str, channel: str, properties: dict[str, Any]) -> bool:
    """Whether an event plays the role of matcher ``m``."""
    if event not in m.event or (m.channel and channel not in m.channel):
        return False
    return all(holds(p, properties) for p in m.where)


class Outcomes:
    """The outcome roles of every moment of a workspace, by event name."""

    def __init__(self, spec: Spec) -> None:
        self._by_event: dict[str, list[tuple[str, str, Matcher]]] = {}
        for moment in spec.moments.values():
            for role, outcome in ROLES:
                matcher = getattr(moment, role)
                if matcher is not None:
                    for name in matcher.event:
                        self._by_event.setdefault(name, []).append((moment.name, outcome, matcher))
        self._keys = {name: sorted({p.key for _, _, m in roles for p in m.where})
                      for name, roles in self._by_event.items()}
        self._cache: dict[tuple[str, str, tuple[str | None, ...]], dict[str, str]] = {}

    def of(self, event: str, channel: str, properties: dict[str, Any]) -> dict[str, str]:
        """The outcome the event is, by moment (``{"card_payment": "completed"}``); the first
        role of a moment when it plays several."""
        roles = self._by_event.get(event)
        if not roles:
            return {}
        key = (event, channel, tuple(text(properties.get(k)) for k in self._keys[event]))
        found = self._cache.get(key)
        if found is None:
            found = {}
            for moment, outcome, matcher in roles:
                if moment not in found and matches(matcher, event, channel, properties):
                    found[moment] = outcome
            if len(self._cache) >= CACHE:
                self._cache.clear()
            self._cache[key] = found
        return found
