"""Which survey to show now: the rules of ``GET /v1/decide`` (docs/surveys.md, "Serving
surveys"), on what the SDK just tracked and the survey history in memory.

The event is mapped to the outcome of each moment it ends (:mod:`microjourney.spec.matching`); then
each survey of such a moment, in the order the workspace declares them, is checked in
this order, and the first to pass every check is shown:

1. ``window`` — today (UTC) lies between the survey's ``start`` and ``end``;
2. ``trigger`` — a deterministic ``control`` share of the moment's outcome events is asked
   whatever the outcome and channel (a control display); otherwise the outcome must be one
   of the trigger's and the channel one of its channels (any when none);
3. ``cap`` — fewer answered displays of the survey than its ``cap``;
4. ``shown`` — the person's earlier displays: none (``show: once``), none answered
   (``until_answered``) or fewer than ``times``;
5. ``recontact`` — no display of this survey to the person within ``recontact``;
6. ``cooldown`` — no display of any survey to the person within ``survey_cooldown``;
7. ``sample`` — a deterministic ``sample`` share (not for control displays).

Shares are drawn from a hash of the survey, the person and the event's id (else the
attempt, else the hour), so asking again for the same event gives the same answer; a
display's id is made from the same, so a retried decide gets the display it was given.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..spec.matching import Outcomes
from ..spec.model import Workspace as Spec
from ..spec.surveys import SCALES, Survey
from .survey_history import History


@dataclass(frozen=True)
class Ask:
    """What the SDK asks about: the event it just tracked, by whom, where."""

    event: str
    channel: str
    anonymous_id: str | None = None
    user_id: str | None = None
    language: str | None = None
    event_id: str | None = None
    attempt: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(i for i in (self.anonymous_id, self.user_id) if i)

    @property
    def person(self) -> str:
        return self.user_id or self.anonymous_id or ""


@dataclass(frozen=True)
class Shown:
    """A survey to show: its ``display`` (new, or the one a retry was given: ``again``)."""

    survey: Survey
    display: str
    control: bool
    again: bool = False


@dataclass
class Decision:
    """The survey to show (None: none), and why each survey of the moment was not."""

    shown: Shown | None = None
    refused: dict[str, str] = field(default_factory=dict)


def share(*parts: str) -> float:
    """A deterministic draw in [0, 100) from ``parts``."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


class Decider:
    """The rules of one workspace over one history (module doc)."""

    def __init__(self, spec: Spec, history: History) -> None:
        self.spec, self.history = spec, history
        self._outcomes = Outcomes(spec)
        self._surveys = [s for s in spec.surveys if s.moment is not None]

    def decide(self, ask: Ask, now: datetime | None = None) -> Decision:
        """The survey to show for ``ask`` now; a display shown is recorded in the history
        (:meth:`History.unshow` takes it back when it cannot be stored)."""
        now = now or datetime.now(UTC)
        ms = int(now.timestamp() * 1000)
        outcomes = self._outcomes.of(ask.event, ask.channel, ask.properties) if ask.ids else {}
        out = Decision()
        key = ask.event_id or ask.attempt or now.strftime("%Y-%m-%dT%H")
        with self.history.lock:
            for s in self._surveys:
                outcome = outcomes.get(s.moment or "")
                if outcome is None:
                    continue
                display = ("d" + hashlib.sha256("\x00".join((s.name, ask.person, ask.event_id)).encode())
                           .hexdigest()[:32]) if ask.event_id else uuid.uuid4().hex
                shown = self.history.displays(ask.ids, s.name)
                if display in shown:  # asked again for the same event
                    if self.history.answered(s.name, display) or self.history.dismissed(s.name, display):
                        out.refused[s.name] = "shown"
                        continue
                    out.shown = Shown(s, display, self._control(s, ask, key), again=True)
                    return out
                control = self._control(s, ask, key)
                reason = self._refusal(s, ask, outcome, control, shown, now, ms, key)
                if reason is not None:
                    out.refused[s.name] = reason
                    continue
                self.history.show(ask.ids, s.name, display, ms)
                out.shown = Shown(s, display, control)
                return out
        return out

    @staticmethod
    def _control(s: Survey, ask: Ask, key: str) -> bool:
        return s.control > 0 and share("control", s.name, ask.person, key) < s.control

    def _refusal(self, s: Survey, ask: Ask, outcome: str, control: bool, shown: dict[str, int],
                 now: datetime, ms: int, key: str) -> str | None:
        """The first rule ``s`` fails for this ask, or None (module doc, in that order)."""
        d, today = s.display, now.date()
        if (d.start is not None and today < d.start) or (d.end is not None and today > d.end):
            return "window"
        if not control and (outcome not in s.trigger.outcomes
                            or (s.trigger.channel and ask.channel not in s.trigger.channel)):
            return "trigger"
        if d.cap is not None and self.history.answered_displays(s.name) >= d.cap:
            return "cap"
        if shown and (d.show == "once" or (d.show == "times" and len(shown) >= (d.times or 1))
                      or (d.show == "until_answered"
                          and any(self.history.answered(s.name, x) for x in shown))):
            return "shown"
        if shown and d.recontact and ms - max(shown.values()) < d.recontact * 1000:
            return "recontact"
        last = self.history.last_shown(ask.ids)
        if last is not None and self.spec.survey_cooldown and ms - last < self.spec.survey_cooldown * 1000:
            return "cooldown"
        if not control and share("sample", s.name, ask.person, key) >= d.sample:
            return "sample"
        return None


def texts(s: Survey, language: str | None) -> tuple[str | None, dict[str, str]]:
    """The language chosen for ``s`` and its question texts: the language asked (``de-AT``),
    else its primary tag (``de``), else the survey's own texts (None)."""
    if language:
        by_lower = {tag.lower(): tag for tag in s.languages}
        for want in (language.lower(), language.lower().split("-")[0]):
            if want in by_lower:
                tag = by_lower[want]
                return tag, s.languages[tag]
    return None, {}


def payload(shown: Shown, language: str | None) -> dict[str, Any]:
    """The survey as ``GET /v1/decide`` answers it (docs/collector.md)."""
    s = shown.survey
    chosen, translated = texts(s, language)
    return {
        "name": s.name, "title": s.title, "display": shown.display, "control": shown.control,
        "delay_ms": round(s.trigger.delay * 1000), "language": chosen,
        "questions": [{
            "id": q.id, "type": q.type, "text": translated.get(q.id, q.text),
            "choices": list(q.choices), "required": q.required,
            "scale": list(SCALES[q.type]) if q.type in SCALES else None,
            "when": None if q.when is None else q.when.model_dump(),
        } for q in s.questions],
    }
