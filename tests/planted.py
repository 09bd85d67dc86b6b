"""Workspaces of planted daily data for the playbook and the alerts: many persons paying
every day for weeks, with weekday rhythm, where a test plants a change of level or a
regression on one platform (tests/test_playbook.py, tests/test_alerts.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import numpy as np

SPEC = """\
name: planted
journeys:
  - name: shop
    moments:
      - {name: pay, start: {event: open}, complete: {event: ok}, fail: {event: failed},
         steps: [{event: card}], timeout: 10m}
      - {name: reset, start: {event: reset_start}, complete: {event: reset_done}, timeout: 10m}
alerts:
  segments: [os]
"""
FIRST = date(2024, 1, 1)  # a Monday
OSES = ("ios", "android", "windows")
#: Relative traffic per weekday, Monday first.
WEEK = (1.0, 1.0, 0.95, 1.0, 0.9, 0.6, 0.55)


def rows(days: int, *, seed: int = 5, per_day: int = 60,
         fail: Callable[[int, str], float] = lambda day, os_: 0.08,
         slow: Callable[[int, str], float] = lambda day, os_: 0.0) -> list[dict]:
    """Event rows of ``days`` days from :data:`FIRST`: each day about ``per_day`` payments
    per operating system (fewer at the weekend), each failing with ``fail(day, os)``; a
    share ``slow(day, os)`` of them first see an error (the ``error_shown`` friction)."""
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    k = 0
    for d in range(days):
        day = datetime(FIRST.year, FIRST.month, FIRST.day, 8) + timedelta(days=d)
        for os_ in OSES:
            n = rng.poisson(per_day * WEEK[day.weekday()])
            for _ in range(n):
                k += 1
                who = f"p{k % 5000}"
                t = day + timedelta(seconds=int(rng.integers(0, 12 * 3600)))
                ctx = {"os": os_}
                out.append(_row(t, "open", who, ctx))
                out.append(_row(t + timedelta(seconds=20), "card", who, ctx))
                if rng.random() < slow(d, os_):
                    out.append(_row(t + timedelta(seconds=30), "error_shown", who, ctx,
                                    {"message": "The bank did not answer."}))
                bad = rng.random() < fail(d, os_)
                out.append(_row(t + timedelta(seconds=40 + int(rng.integers(0, 60))),
                                "failed" if bad else "ok", who, ctx))
    return out


def _row(t: datetime, event: str, who: str, ctx: dict, props: dict | None = None) -> dict:
    row = {"timestamp": t.isoformat() + "+00:00", "event": event, "user_id": who,
           "channel": "app", "context": ctx}
    if props:
        row["properties"] = props
    return row
