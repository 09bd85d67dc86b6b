"""The server's alert sender: while ``serve`` runs, the regressions the ``alerts`` analysis
finds go to the workspace's webhooks (docs/webhooks.md), each at most once.

A thread of its own, so that a slow or dead receiver (tried with back-off) never holds up a
refresh or an answer: every ``every`` seconds (default 10 minutes; alerts are read from
daily series) it reads the alerts on the reader — the last refresh's tables — and delivers
the new ones; the store's delivery log keeps each from being sent twice, also across
restarts. A failure is logged by its kind only (alerts are workspace figures, but a URL
may hold a token: logs show its origin). :class:`Sender` is the thread, shared with the
weekly review's sender (:mod:`.reviewing`).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Self

import duckdb

from ..spec.alerts import Webhook
from ..webhooks import Delivery, deliver, origin

log = logging.getLogger("microjourney.server")

#: Seconds between two reads of the alerts.
EVERY = 600.0


class Sender(ABC):
    """A thread that calls :meth:`send_now` every ``every`` seconds, once ``ready`` (the first
    refresh) is set, until :meth:`stop`; a failed round is logged by its kind and tried again
    the next round. ``what`` names it in the log and the thread's name."""

    what = "alerts"

    def __init__(self, con: duckdb.DuckDBPyConnection, hooks: Sequence[Webhook], ready: threading.Event,
                 every: float) -> None:
        self._con, self._hooks, self._ready = con, tuple(hooks), ready
        self.every = every
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name=f"microjourney-{self.what}", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @abstractmethod
    def send_now(self) -> int:
        """Send what is new; how many deliveries were made."""

    def _count(self, done: Sequence[Delivery], label: str) -> int:
        """Log each delivery that failed (by its kind; a URL by its origin only), count the
        ones made; how many."""
        for d in done:
            if d.status not in ("delivered", "already"):
                log.warning("%s %s to %s: %s", self.what, label or d.alert_id, origin(d.url), d.status)
        delivered = sum(d.status == "delivered" for d in done)
        self.sent += delivered
        return delivered

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._ready.wait(1.0):
                try:
                    self.send_now()
                except Exception as exc:  # noqa: BLE001 - the next round tries again
                    log.warning("sending %s failed: %s", self.what, type(exc).__name__)
                self._stop.wait(self.every)


class AlertSender(Sender):
    """Sends ``alerts()`` (the alert rows, read on the reader) to ``hooks`` every ``every``
    seconds, once ``ready`` (the first refresh) is set, until :meth:`stop`."""

    def __init__(self, alerts: Callable[[], list[dict[str, Any]]], con: duckdb.DuckDBPyConnection,
                 hooks: Sequence[Webhook], ready: threading.Event, every: float = EVERY) -> None:
        super().__init__(con, hooks, ready, every)
        self._alerts = alerts

    def send_now(self) -> int:
        """Read the alerts and deliver the new ones; how many were delivered."""
        return self._count(deliver(self._con, self._alerts(), self._hooks, sleep=self._stop.wait), "")
