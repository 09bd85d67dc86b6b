"""Interventions: the ``interventions:`` section of ``microjourney.yaml`` (docs/interventions.md).

A rule reacts to a signal seen live in a person's open attempt of a moment — a second
failure, an error shown, rage clicks, a wait past the SLA, repeated status checks, a step
done again — with an offer: help text, a proactive chat or callback, a survey, or a webhook
to the company's own systems; under caps, quiet hours, consent and a holdout::

    interventions:
      - name: payment_help
        moment: card_payment
        when: {signal: failure, count: 2, seconds: 30m}
        offer: help
        text: Card declined twice? Check the card's expiry date, or pay by bank transfer.
        languages: {de: Karte zweimal abgelehnt? Prüfen Sie das Ablaufdatum.}
        channels: [web, app]
        cap: {person: 1, within: 1d, moment_day: 500}
        quiet_hours: "22:00-07:00"
        holdout: 10

The models validate alone what a rule says; that its moment (and survey) exist is checked
with the workspace (:func:`microjourney.spec.load.parse_workspace`).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from .alerts import Webhook
from .types import LANGUAGE, MAX_EVENTS, Frozen, Names, Seconds, check_channels, check_name

Signal = Literal["failure", "error_shown", "rage_click", "waiting", "uncertainty", "repeated_attempt"]
SIGNALS: tuple[str, ...] = get_args(Signal)
Offer = Literal["help", "chat", "callback", "survey", "webhook"]
OFFERS: tuple[str, ...] = get_args(Offer)
#: Rules per workspace, languages per rule, webhooks per rule.
MAX_INTERVENTIONS, MAX_LANGUAGES, MAX_HOOKS = 100, 50, 10
#: Characters of an offer's text, in any language.
MAX_TEXT = 1_000
#: Each signal's defaults: (events, count, seconds); None: none (or from the moment).
DEFAULTS: dict[str, tuple[tuple[str, ...], int | None, float | None]] = {
    "failure": ((), 2, None),  # seconds: the moment's timeout
    "error_shown": (("error_shown", "js_error"), 1, None),
    "rage_click": (("click",), 3, 1.0),
    "waiting": ((), None, None),  # seconds: the next step's sla, else the moment's
    "uncertainty": ((), 3, 600.0),
    "repeated_attempt": ((), 2, None),
}
#: Which of ``events``, ``count`` and ``seconds`` each signal reads.
READS: dict[str, frozenset[str]] = {
    "failure": frozenset({"count", "seconds"}),
    "error_shown": frozenset({"events", "count"}),
    "rage_click": frozenset({"events", "count", "seconds"}),
    "waiting": frozenset({"seconds"}),
    "uncertainty": frozenset({"events", "count", "seconds"}),
    "repeated_attempt": frozenset({"count"}),
}
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])$")


class When(Frozen):
    """The signal a rule reacts to, in the person's open attempt of its moment
    (docs/interventions.md, "Signals"): ``signal``, and the ``events``, ``count`` and
    ``seconds`` it reads (each signal's defaults: :data:`DEFAULTS`)."""

    signal: Signal
    events: Names = Field((), max_length=MAX_EVENTS)
    count: int | None = Field(None, ge=1, le=1_000)
    seconds: Seconds | None = Field(None, gt=0, le=30 * 86_400)

    @model_validator(mode="after")
    def _reads(self) -> When:
        reads = READS[self.signal]
        for key in ("events", "count", "seconds"):
            if key not in reads and getattr(self, key) not in (None, ()):
                raise ValueError(f"signal {self.signal} takes no `{key}` (it reads: "
                                 f"{', '.join(sorted(reads))})")
        if self.signal == "uncertainty" and not self.events:
            raise ValueError("signal uncertainty needs `events`: the status checks to count")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        """The events the signal counts (its own, else the default)."""
        return self.events or DEFAULTS[self.signal][0]

    @property
    def threshold(self) -> int:
        """How many the signal needs (``count``, else the default; 1 for ``waiting``)."""
        return self.count or DEFAULTS[self.signal][1] or 1

    @property
    def window(self) -> float | None:
        """``seconds``, else the default (None: from the moment)."""
        return self.seconds if self.seconds is not None else DEFAULTS[self.signal][2]


class Cap(Frozen):
    """At most ``person`` interventions (of any rule) to one person within ``within``, and
    at most ``moment_day`` interventions of the rule's moment (any rule) per UTC day.
    Decisions held out count as ones shown."""

    person: int | None = Field(1, ge=1, le=1_000)
    within: Seconds = Field(86_400.0, gt=0, le=366 * 86_400)
    moment_day: int | None = Field(None, ge=1)


class Intervention(Frozen):
    """One rule (module docstring): when ``when`` is seen in an open attempt of ``moment``,
    ``offer`` it (``text``, in ``languages``; the ``survey`` named; the ``webhooks``), in
    ``channels`` (any when empty), within ``cap``, outside ``quiet_hours`` (UTC, ``HH:MM-HH:MM``),
    from ``start`` to ``end`` (UTC days), never to the ``holdout`` percentage of persons."""

    name: str
    moment: str
    when: When
    offer: Offer
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    languages: dict[str, str] = Field(default_factory=dict, max_length=MAX_LANGUAGES)
    survey: str | None = None
    webhooks: tuple[Webhook, ...] = Field((), max_length=MAX_HOOKS)
    channels: Names = ()
    cap: Cap = Cap()
    quiet_hours: str | None = None
    holdout: float = Field(0.0, ge=0, lt=100)
    start: date | None = None
    end: date | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "intervention name")

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_channels(value) or ()

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and (not _HOURS.match(value) or value[:5] == value[6:]):
            raise ValueError(f"quiet_hours {value!r}: write UTC times from-to like 22:00-07:00 "
                             "(two different times)")
        return value

    @model_validator(mode="after")
    def _offer(self) -> Intervention:
        shows = self.offer in ("help", "chat", "callback")
        if shows and self.text is None:
            raise ValueError(f"a {self.offer} offer needs its `text`")
        if (self.offer == "survey") != (self.survey is not None):
            raise ValueError("`survey` names the survey of a survey offer (and only of one)")
        if (self.offer == "webhook") != bool(self.webhooks):
            raise ValueError("`webhooks` lists where a webhook offer is sent (and only for one)")
        if self.languages and self.text is None:
            raise ValueError("`languages` translate `text`, which this rule does not have")
        for tag, text in self.languages.items():
            if not LANGUAGE.match(tag):
                raise ValueError(f"language {tag!r} is not a language tag like de or pt-BR")
            if not text or len(text) > MAX_TEXT:
                raise ValueError(f"language {tag!r}: a text of 1 to {MAX_TEXT} characters")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    def quiet(self, now: datetime) -> bool:
        """Whether ``now`` (UTC) lies in the rule's quiet hours (``from`` included, ``to`` not;
        ``22:00-07:00`` spans midnight)."""
        if self.quiet_hours is None:
            return False
        begin = int(self.quiet_hours[:2]) * 60 + int(self.quiet_hours[3:5])
        end = int(self.quiet_hours[6:8]) * 60 + int(self.quiet_hours[9:11])
        minute = now.hour * 60 + now.minute
        return begin <= minute < end if begin < end else minute >= begin or minute < end

    def texts(self, language: str | None) -> tuple[str | None, str | None]:
        """The language chosen and the text: the language asked (``de-AT``), else its primary
        tag (``de``), else the rule's own text (language None)."""
        if language and self.languages:
            by_lower = {tag.lower(): tag for tag in self.languages}
            for want in (language.lower(), language.lower().split("-")[0]):
                if want in by_lower:
                    return by_lower[want], self.languages[by_lower[want]]
        return None, self.text


__all__ = ["DEFAULTS", "MAX_INTERVENTIONS", "OFFERS", "SIGNALS", "Cap", "Intervention", "When"]
