"""The weekly review by webhook (docs/webhooks.md, "Sent every week"): the ``review``
analysis of a whole ISO week, with its one-page Markdown, POSTed to the workspace's
``review.webhooks``, signed and retried as alerts are (:func:`..webhooks.deliver`), at most
once per week and URL: the store's delivery log keys it ``review-<week>``.

``microjourney send-review`` sends one week (by default the last whole one); while ``serve``
runs, :class:`ReviewSender` looks every ``review.every`` (default an hour) for the last whole
week and sends it to the webhooks that do not have it yet.

A week is *whole* once it is over (its Sunday before today, UTC) and the data reaches its
Sunday: a review sent earlier would go out incomplete, once, and never again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from ..errors import QueryError
from ..registry.review import monday
from ..spec.alerts import Webhook
from ..store import deliveries
from ..webhooks import Delivery, deliver, origin
from .alerting import Sender

if TYPE_CHECKING:
    from ..registry.base import Result
    from ..workspace import Workspace

log = logging.getLogger("microjourney.server")

#: Seconds between two looks for a whole week not yet sent (``review.every`` overrides it).
EVERY = 3_600.0
#: The body's ``kind``, and the kind of delivery (its id is the body's ``review_id``).
KIND = "review"


def key(week: str) -> str:
    """The delivery log's key of the review of ``week``: ``review-2026-W43``."""
    return f"{KIND}-{week}"


def today() -> date:
    """Today, UTC."""
    return datetime.now(UTC).date()


def _day(as_of_ms: int) -> date | None:
    """The UTC day of the end of the data (None: no data)."""
    return datetime.fromtimestamp(as_of_ms / 1000, UTC).date() if as_of_ms else None


def last_whole_week(as_of_ms: int, on: date) -> str | None:
    """The last ISO week that is over on the day ``on`` (UTC) and that the data, ending at
    ``as_of_ms``, covers to its Sunday; None without data."""
    last = _day(as_of_ms)
    if last is None:
        return None
    last = min(last, on - timedelta(days=1))
    sunday = last - timedelta(days=(last.weekday() + 1) % 7)
    year, number, _ = sunday.isocalendar()
    return f"{year}-W{number:02d}"


def whole_week(week: str, as_of_ms: int, on: date) -> str:
    """``week`` (``2026-W43``) when it is whole on the day ``on``; else a ``query/option``
    error saying why (not an ISO week, not over yet, or beyond the data)."""
    try:
        first = monday(week)
    except ValueError as exc:
        raise QueryError(f"send-review: --week: {exc}", code="query/option") from None
    sunday, last = first + timedelta(days=6), _day(as_of_ms)
    if sunday >= on:
        raise QueryError(f"send-review: {week} is not over yet (it ends on Sunday {sunday}, UTC); "
                         "a week's review is sent once, when the week is whole", code="query/option")
    if last is None or last < sunday:
        reach = f"reaches {last} only" if last else "holds no events yet"
        raise QueryError(f"send-review: the data {reach}, not the end of {week} (Sunday {sunday}); "
                         "a week's review is sent once, when the data covers it whole",
                         code="query/option")
    return week


def markdown(result: Result) -> str:
    """The review as one page of Markdown (:func:`..report.review.markdown`)."""
    from ..report.review import markdown as render

    text: str = render(result)
    return text


def body(ws: Workspace, week: str) -> dict[str, Any]:
    """What is POSTed for ``week``: the review's ``kind``, ``review_id`` (the delivery's key),
    ``week``, its ``from`` and ``to`` days, ``headline``, ``rag`` (moments by colour), the
    ``markdown`` page and the whole ``review`` (its ``to_dict()``: tables, meta, warnings)."""
    result = ws.analysis("review", week=week)
    review = result.to_dict()
    meta = review["meta"]
    return {"kind": KIND, "review_id": key(meta["week"]), "week": meta["week"], "from": meta["from"],
            "to": meta["to"], "headline": meta["headline"], "rag": meta["rag"],
            "markdown": markdown(result), "review": review}


def send(ws: Workspace, con: duckdb.DuckDBPyConnection, hooks: Sequence[Webhook], week: str,
         **how: Any) -> tuple[dict[str, Any], list[Delivery]]:
    """The review of ``week`` (read on ``ws``) delivered to ``hooks`` (logged through ``con``),
    each at most once: the body sent and one :class:`..webhooks.Delivery` per webhook.
    ``how``: :func:`..webhooks.deliver`'s options (``environ``, ``sleep``...)."""
    sent = body(ws, week)
    return sent, deliver(con, [sent], hooks, kind=KIND, **how)


def pending(con: duckdb.DuckDBPyConnection, hooks: Sequence[Webhook], week: str,
            environ: Mapping[str, str] = os.environ) -> list[Webhook]:
    """The webhooks the review of ``week`` may go to now: not in the delivery log yet, and
    with their secret set (a missing one is logged; the week goes once it is set)."""
    cur = con.cursor()
    try:
        claimed = {row.url for row in deliveries.rows(cur, alert_id=key(week))}
    finally:
        cur.close()
    out = []
    for hook in hooks:
        if hook.url in claimed:
            continue
        if hook.secret_env is not None and not environ.get(hook.secret_env):
            log.warning("review %s to %s: %s is unset", week, origin(hook.url), hook.secret_env)
            continue
        out.append(hook)
    return out


class ReviewSender(Sender):
    """Sends the last whole week's review, read on ``reader`` (under ``lock``: the reader is
    used by one thread at a time), to the ``hooks`` that do not have it yet, every ``every``
    seconds once ``ready`` (the first refresh) is set, until :meth:`stop`. The review is read
    only when some webhook is still to get the week (an hourly look costs a query)."""

    what = "review"

    def __init__(self, reader: Workspace, lock: AbstractContextManager[Any],
                 con: duckdb.DuckDBPyConnection, hooks: Sequence[Webhook],
                 ready: threading.Event, every: float = EVERY,
                 on: Callable[[], date] = today) -> None:
        super().__init__(con, hooks, ready, every)
        self._reader, self._lock, self._on = reader, lock, on

    def send_now(self) -> int:
        """Send the last whole week to the webhooks still to get it; how many got it."""
        with self._lock:
            week = (last_whole_week(self._reader.as_of_ms(), self._on())
                    if self._reader.spec.moments else None)
        hooks = pending(self._con, self._hooks, week) if week is not None else []
        if not hooks or week is None:
            return 0
        with self._lock:
            sent = body(self._reader, week)
        return self._count(deliver(self._con, [sent], hooks, kind=KIND, sleep=self._stop.wait), week)


__all__ = ["EVERY", "KIND", "ReviewSender", "body", "key", "last_whole_week", "pending", "send",
           "whole_week"]
