"""The server's background refresh (microjourney/server/refresher.py): when each refresh
begins, what it calls once after the first, and the priority it runs at."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from microjourney.server.refresher import NICE, RECENT, Refresher


def test_the_background_refresh_begins_early_enough_to_bound_the_staleness():
    """A refresh of 0.3 s with ``refresh_every`` 1 s: each begins 0.7 s after the one before
    (so it ends about 1 s after the last began, the most an answer is then stale), not 1 s
    after; a refresh longer than half of it is followed at once; and after a slow refresh
    the next ones begin as early as it needed, for as long as it is among the last three."""
    def starts(took: float | list[float], every: float, n: int) -> list[float]:
        seen: list[float] = []
        takes = took if isinstance(took, list) else [took] * n

        def refresh() -> None:
            seen.append(time.monotonic())
            time.sleep(takes[min(len(seen), n) - 1])

        refresher = Refresher(refresh, threading.Lock(), every=every).start()
        deadline = time.monotonic() + 10
        while len(seen) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        refresher.stop()
        return [b - a for a, b in zip(seen, seen[1:n], strict=False)]

    gaps = starts(0.3, 1.0, 4)
    assert len(gaps) == 3 and all(0.6 <= g < 0.9 for g in gaps), gaps
    gaps = starts(0.3, 0.5, 4)  # back to back
    assert len(gaps) == 3 and all(0.28 <= g < 0.45 for g in gaps), gaps
    assert RECENT == 3
    gaps = starts([0.1, 0.4, 0.1, 0.1, 0.1, 0.1], 1.0, 6)  # the slow one sets three gaps
    assert len(gaps) == 5, gaps
    assert 0.8 <= gaps[0] < 1.0 and 0.8 <= gaps[4] < 1.0, gaps  # 1 - 0.1
    assert all(0.5 <= g < 0.75 for g in gaps[1:4]), gaps  # 1 - 0.4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_the_refresh_and_the_stores_workers_run_below_the_collector():
    """The refresh thread lowers its own priority and starts the store's worker threads again
    from there: they run NICE steps below the threads that serve requests, which keep theirs."""
    import duckdb

    from microjourney.store.db import start_workers_here

    def nice() -> dict[int, int]:  # thread id -> nice value (the 19th field of its stat)
        out = {}
        for task in Path("/proc/self/task").iterdir():
            out[int(task.name)] = int(task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[16])
        return out

    con = duckdb.connect()
    con.execute("SET threads = 3")
    before, own = nice(), threading.get_native_id()
    seen: list[int] = []
    refresher = Refresher(lambda: seen.append(threading.get_native_id()), threading.Lock(),
                          every=3600, workers=lambda: start_workers_here(con)).start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    during = nice()
    refresher.stop()
    base = before[own]
    assert during[own] == base  # the serving thread keeps its priority
    assert during[seen[0]] == min(19, base + NICE)
    workers = [t for t in during if t not in before and t != seen[0]]
    assert len(workers) == 2 and all(during[t] == min(19, base + NICE) for t in workers)
    assert con.execute("SELECT current_setting('threads')").fetchone() == (3,)
    assert con.execute("SELECT sum(i) FROM range(1000000) t(i)").fetchone() == (499999500000,)


def _calls(first_mode: str) -> list[str]:
    """What a refresher whose first refresh is of ``first_mode`` calls, in order, during
    its first four refreshes."""
    calls: list[str] = []

    def refresh() -> SimpleNamespace:
        calls.append("refresh")
        mode = first_mode if calls.count("refresh") == 1 else "incremental"
        return SimpleNamespace(mode=mode, persons=0, events=0, seconds=0.0)

    refresher = Refresher(refresh, threading.Lock(), every=0.05,
                          prepare=lambda: calls.append("prepare")).start()
    deadline = time.monotonic() + 10
    while calls.count("refresh") < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    refresher.stop()
    return calls[:4]


def test_the_refresh_is_prepared_once_after_the_first_unless_that_compiled_it():
    """A server compiles the incremental refresh's statements once, after its first refresh
    (answers are given meanwhile), so that the first events do not wait for the compiling;
    a first refresh that was incremental compiled them itself."""
    assert _calls("none") == ["refresh", "prepare", "refresh", "refresh"]
    assert _calls("full") == ["refresh", "prepare", "refresh", "refresh"]
    assert _calls("incremental") == ["refresh", "refresh", "refresh", "refresh"]
