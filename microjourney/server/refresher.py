"""The server's background refresh: the derived tables kept fresh while the server answers.

A thread brings the derived tables up to date with what the collector stored,
incrementally (:mod:`microjourney.workspace_refresh`), in one transaction, often enough
that an answer is at most about ``server.refresh_every`` seconds (default 5) stale: an
answer read just before a refresh ends is as stale as the time since the refresh before
it began plus that refresh's own time, so each refresh begins ``refresh_every`` minus the
longest of the last :data:`RECENT` refreshes' times (each with the warming after it) after
the last began — the longest, so that a refresh slower than the last stays within the
bound — and right after it when that leaves no time. Analyses read the tables through a
:meth:`reader <microjourney.workspace.Workspace.reader>`, another connection that sees the last
committed refresh: they never wait for a refresh, and each answer says how stale it is
(``meta.refreshed_at``, ``meta.stale_s``); while a refresh and the warming after it run
(:attr:`Refresher.renewing`), kept answers are given as they stand (results.py). A refresh
that fails leaves the previous tables (rolled back); it is logged, by the kind of error
only, and the next one does the work. Once, after the first refresh, the statements of an
incremental refresh are compiled (``prepare``: :meth:`Workspace.prepare
<microjourney.workspace.Workspace.prepare>`); else the first refresh that takes in events
compiles them, which takes seconds at 10M events, and its answers are that much staler.

The refresh takes what the collector leaves of the machine: on Linux its thread, and the
store's worker threads it starts again (``workers``), run :data:`NICE` steps below the
collector's, so that under a heavy load the answers to senders stay prompt and the refresh
takes in more events each time instead (docs/benchmarks.md, "The soak").
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("microjourney.server")

#: How far below the collector the background work runs: a nice increment (Linux).
NICE = 10
#: Refreshes whose times set when the next begins (the longest of them).
RECENT = 3


def lower_priority() -> bool:
    """Lower the calling thread's CPU priority by :data:`NICE`; whether it could (Linux only:
    elsewhere a process's threads share one priority, and the collector's is kept)."""
    if sys.platform != "linux":
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + NICE))
    except OSError:  # a sandbox may forbid it: the refresh runs as before
        return False
    return True


class Refresher:
    """Runs ``refresh()`` now and then so that the tables are at most about ``every``
    seconds stale (see the module docstring), under ``lock`` (the lock that guards the
    writing workspace), and ``after()`` after each refresh that changed the tables,
    until :meth:`stop`. Its thread first lowers its priority and calls ``workers()``
    (under ``lock``), which starts the store's worker threads again from it; after the
    first refresh it calls ``prepare()`` once (:meth:`_prepared`)."""

    def __init__(self, refresh: Callable[[], Any], lock: threading.Lock, every: float,
                 after: Callable[[], Any] | None = None,
                 workers: Callable[[], Any] | None = None,
                 prepare: Callable[[], Any] | None = None) -> None:
        self._refresh, self._lock, self.every, self._after = refresh, lock, every, after
        self._workers, self._prepare = workers, prepare
        self._stop = threading.Event()
        self._poke = threading.Event()
        #: Set once the first refresh is done (or failed): analyses wait for it.
        self.ready = threading.Event()
        #: Set while a refresh and what follows it (``after``) run, after the first.
        self.renewing = threading.Event()
        self.last: Any = None
        self.failures = 0
        self._took: deque[float] = deque(maxlen=RECENT)
        self._thread = threading.Thread(target=self._run, name="microjourney-refresh", daemon=True)

    def start(self) -> Refresher:
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0, interrupt: Callable[[], Any] | None = None) -> None:
        """End the thread. A refresh under way is waited for, or, given ``interrupt`` (the
        store connection's), cut short: it rolls back, and the tables stay as the last
        refresh left them (a refresh of a large store can take minutes)."""
        self._stop.set()
        self._poke.set()
        end = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < end:
            if interrupt is not None:
                interrupt()  # the statement running now; the next one sees the flag
            self._thread.join(0.05)

    def wake(self) -> None:
        """Refresh as soon as the current wait ends (for tests and a forced refresh)."""
        self._poke.set()

    def _prepared(self, first: Any) -> None:
        """Once, after the first refresh (answers are given meanwhile): ``prepare()`` under
        ``lock`` unless that refresh was incremental (which compiled what the next will run)."""
        prepare, self._prepare = self._prepare, None
        if prepare is None or getattr(first, "mode", None) == "incremental" or self._stop.is_set():
            return
        started = time.monotonic()
        try:
            with self._lock:
                done = prepare()
        except Exception as exc:  # the next refresh compiles as it goes
            log.warning("preparing the refresh failed (%s)", type(exc).__name__)
            return
        if done:
            log.info("compiled the refresh's statements in %.2f s", time.monotonic() - started)

    def _run(self) -> None:
        if lower_priority() and self._workers is not None:
            with self._lock:
                self._workers()
        while not self._stop.is_set():
            started = time.monotonic()
            if self.ready.is_set():
                self.renewing.set()
            try:
                with self._lock:
                    self.last = self._refresh()
                if self.last:  # counts and seconds only
                    log.info("refreshed the derived tables (%s): %s persons, %s events in %.2f s",
                             self.last.mode, self.last.persons, self.last.events, self.last.seconds)
                    if self._after is not None:  # outside the lock: the collector may write
                        began = time.monotonic()
                        done = self._after()
                        if done:  # how long the answers given meanwhile are of the last tables
                            log.info("computed %s kept answers again in %.2f s", done,
                                     time.monotonic() - began)
            except Exception as exc:  # logged without its message (it may quote data)
                if self._stop.is_set():  # cut short by stop(): rolled back, as meant
                    break
                self.failures += 1
                log.warning("background refresh failed (%s); the previous tables stay",
                            type(exc).__name__)
            finally:
                self.renewing.clear()
                self.ready.set()
            self._took.append(time.monotonic() - started)
            if self._prepare is not None:  # not a refresh's time: kept out of _took
                self._prepared(self.last)
            took = time.monotonic() - started
            # The next begins ``every - longest`` after this one began, so that it ends at
            # most ``every`` after unless it takes longer than each of the last few.
            rest = max(0.0, self.every - took - max(self._took))
            if self._poke.wait(rest):
                self._poke.clear()


__all__ = ["NICE", "RECENT", "Refresher", "lower_priority"]
