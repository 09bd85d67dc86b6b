"""The filters every analysis over attempts or events takes, with the same words on
every surface: ``since``/``until`` (the attempt's start, or the event's time), ``channel``,
``where KEY=VALUE`` (a property, else a context key, of the start event or of the event),
and the breakdown ``by`` and series step ``every`` where they make sense.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import ibis
from ibis.expr.types import BooleanValue, Table
from pydantic import Field, field_validator

from ..engine.backend import json_text
from ..errors import QueryError
from ..ingest.schema import CHANNELS
from .base import Params

#: Columns of an attempt a breakdown may name directly; any other name is a key of the
#: start event's properties, then context.
ATTEMPT_KEYS = ("channel", "outcome", "channels", "retries", "furthest_step", "end_channel",
                "authenticated", "self_service")
NONE = "(none)"


class Filters(Params):
    """``since``, ``until``, ``channel`` and ``where``: which attempts (or events) count."""

    since: str | None = Field(None, description="Only attempts starting (events happening) on or "
                              "after this ISO date or date-time; a plain date is a UTC day.")
    until: str | None = Field(None, description="Only attempts starting (events happening) before "
                              "this ISO date or date-time.")
    channel: str | None = Field(None, description=f"Only this channel: {', '.join(CHANNELS)}.")
    where: list[str] = Field(default_factory=list, description="KEY=VALUE: only attempts whose "
                             "start event (events that) have this value of a property, else of "
                             "a context key; repeat for several, all must hold.")

    @field_validator("since", "until")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if value is not None:
            when(value)
        return value

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; channels: {', '.join(CHANNELS)}")
        return value

    @field_validator("where")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        for pair in value:
            key, sep, _ = pair.partition("=")
            if not sep or not key:
                raise ValueError(f"{pair!r} is not KEY=VALUE (write e.g. device=mobile)")
        return value

    def filters(self) -> dict[str, Any]:
        """The filters in force, for a result's metadata (absent ones left out)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in ("since", "until", "channel")
                               if getattr(self, k) is not None}
        if self.where:
            out["where"] = dict(pair.partition("=")[::2] for pair in self.where)
        return out


class Breakdown(Filters):
    """The filters and one breakdown key."""

    by: str | None = Field(None, description="Break down by channel, outcome, or a property or "
                           "context key of the start event.")


class Series(Breakdown):
    """The filters, a breakdown, and the step of a series."""

    every: Literal["day", "week"] = Field("day", description="One row per UTC day or per ISO "
                                          "week (starting Monday).")


def when(text: str) -> datetime:
    """An ISO date or date-time; a plain date or a time without offset is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date or date-time (write e.g. 2026-09-01)") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _matches(t: Table, pairs: list[str]) -> BooleanValue | None:
    test: BooleanValue | None = None
    for pair in pairs:
        key, _, value = pair.partition("=")
        got = ibis.coalesce(json_text(t.properties, key), json_text(t.context, key))
        cond = got == value
        test = cond if test is None else test & cond
    return test


def attempts(a: Table, f: Filters) -> Table:
    """The attempts the filters keep (by their start, start channel and start event)."""
    return _kept(a, "start_ts", f)


def events(rows: Table, f: Filters) -> Table:
    """The events (or tagged rows) the filters keep."""
    return _kept(rows, "timestamp", f)


def _kept(t: Table, time: str, f: Filters) -> Table:
    """``t``'s rows whose column ``time`` is in the period, of the channel, with the values."""
    if f.since:
        t = t.filter(t[time] >= when(f.since))
    if f.until:
        t = t.filter(t[time] < when(f.until))
    if f.channel:
        t = t.filter(t.channel == f.channel)
    test = _matches(t, f.where)
    return t if test is None else t.filter(test)


def breakdown(a: Table, by: str, taken: set[str]) -> tuple[Table, str]:
    """Attempts with the column ``by`` to group on: a column of the attempt
    (:data:`ATTEMPT_KEYS`), else the start event's property or context value (as text,
    ``(none)`` when absent). Any key works (it reaches SQL as a JSON Pointer in a bound
    string), except one named like a column in ``taken``, which it would overwrite."""
    if by in ATTEMPT_KEYS:
        return a, by
    if by in {*a.columns, *taken}:
        raise QueryError(f"--by {by!r}: a property named like a result column cannot be a "
                         f"breakdown; allowed columns: {', '.join(ATTEMPT_KEYS)}",
                         code="query/option")
    value = ibis.coalesce(json_text(a.properties, by), json_text(a.context, by))
    return a.mutate(**{by: value.fill_null(NONE)}), by


def unfiltered(f: Filters) -> bool:
    """No filter given (the fast, precomputed tables answer)."""
    return not (f.since or f.until or f.channel or f.where)
