"""The collector's writer: group commit, acknowledged only after the commit.

Request handlers check the key and the size and hand the body to :class:`Collector`;
a batch of track calls with ids is decoded there, in the handler (the fast road of
:mod:`.calls`). The collector owns the store connection in one thread, which takes every
request waiting (up to ``max_bytes`` of bodies), builds and judges the rows of the decoded
ones at once, takes the other bodies apart in DuckDB, and stores them together:
the events in one transaction through the same writer as file ingest, identify/alias calls
through the identity store.
Each request's future is resolved only after the commit that holds its calls, so a 2xx
answer means the calls are durable; if the commit fails, every request in it gets the
error and the client retries (event ids make that safe).

Plain events with nothing to scrub are not stored before the answer: they are appended to
the journal (:mod:`..store.journal`, synced to disk), answered, and stored by a second
thread, many groups at once; whatever reads the store first waits for it (:meth:`Collector.drain`).
Requests of such events are committed in the event loop itself (:meth:`Collector.collect`):
the loop builds their rows and writes them to the journal, and a thread only syncs it, so
that one thread runs Python on the answer path instead of two passing the GIL to each
other (docs/benchmarks.md, "HTTP ingest"). The loop never waits for the collector's
thread: when that thread is committing, or a request needs the store (an id that may be
stored, a call the writer must judge), the request is handed to the thread.

Duplicates are found without scanning the stored ids on every commit (:mod:`.ids`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..ingest.readers import Reject
from ..ingest.schema import ROW
from ..store.consent import consent_sql
from ..store.db import migrate
from ..store.journal import Journal
from ..store.lake import append, has_events, read_events
from ..store.writer import (
    BatchResult,
    count_withheld,
    write_batch,
    write_plain,
    write_rejects,
)
from .calls import (
    CALLS,
    EVENT_FIELDS,
    EVENTS,
    MAX_CALLS,
    PROBLEMS,
    TYPES,
    Track,
    id_hashes,
    identity_row,
    personal_requests,
    plain_rows,
    track_calls,
    track_columns,
    track_rows,
)
from .ids import IdIndex, repeats

log = logging.getLogger("microjourney.server")

SOURCE = "http"
#: Journaled events not yet stored, at most: beyond it, answers wait for the storing thread.
MAX_UNSTORED = 400_000
#: Journaled events stored in one insert, at most.
MAX_INSERT = 100_000
#: The store's checkpoint threshold while the collector journals (DuckDB's default is 16MB;
#: docs/benchmarks.md, "HTTP ingest").
CHECKPOINT = "256MiB"
#: The advice for a timestamp without an offset: a call can only carry the offset.
NAIVE_HINT = "give one"
#: The raw rows :meth:`Collector._events` takes.
_EVENT_ROWS = ["req", "idx", *EVENT_FIELDS, "h"]


@dataclass(eq=False)
class _Job:
    body: bytes
    future: Future[dict[str, Any]]
    #: The body's calls when it takes the fast road (:func:`.calls.track_calls`).
    tracks: list[Track] | None = None
    #: In the event loop (:meth:`Collector.collect`): its answer, or None once the request
    #: is handed to the collector's thread (then ``future`` holds it).
    waiter: asyncio.Future[dict[str, Any] | None] | None = None
    #: Its answer, once its events are journaled and until the journal is synced.
    answer: dict[str, Any] | None = None
    rejected: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    withheld: int = 0
    problem: str | None = None

    @property
    def calls(self) -> int:
        """How many calls the fast road took from the body."""
        return 0 if self.tracks is None else len(self.tracks)


#: A request whose body is not a batch: (status, code, message).
ANSWERS = {
    "json": (400, "request/bad-json", "the body is not JSON"),
    "batch": (400, "request/bad-batch", 'the body must be {"batch": [call, ...]}'),
    "size": (413, "request/too-many-calls", f"more than {MAX_CALLS} calls in one request"),
}


@dataclass
class Totals:
    """What the collector stored since it started."""

    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    withheld: int = 0
    #: Groups committed, and how many of them in the event loop (:meth:`Collector.collect`).
    commits: int = 0
    loop_commits: int = 0


class Collector:
    """Stores parsed requests in group commits, in its own thread (see the module doc).

    ``identities``: stores identify/alias calls, ``(con, rows, source=...)``; ``consent``:
    events without analytics consent are counted and not stored; ``write``: keyword
    arguments for the event writer (e.g. privacy settings); ``lake``: events go to this
    Parquet lake (docs/lake.md) instead of the store: the writer judges them in a scratch
    store in memory, the accepted ones are appended to the lake (fsynced before the answer)
    and the rejected ones go to the store's quarantine, as in the store's case.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, identities: Callable[..., Any],
                 consent: bool = False, max_bytes: int = 16_000_000,
                 write: dict[str, Any] | None = None, lake: str | Path | None = None,
                 journal: str | Path | None = None) -> None:
        self._con = con
        self._consent = consent
        self._identities = identities
        self._write = write or {}
        self._max_bytes = max_bytes
        self._lake = lake
        # Plain calls are judged in the request handler and stored in one statement; with a
        # lake, or when consent must be read from the context, the writer judges every call.
        self._plain = lake is None and not consent
        # Plain events with nothing to scrub are journaled, answered, then stored by a thread
        # of their own (store/journal.py); what a crash left in the journal is stored first.
        self._journal = Journal(journal) if journal is not None and self._plain else None
        if self._journal is not None:
            # Inserts off the answer path: fewer, larger checkpoints store events twice as fast.
            con.execute("SET checkpoint_threshold = ?", [CHECKPOINT])
            self._store_journaled()
        # An empty lake has nothing to read yet: the first append gives it events.
        self._lake_read = lake is not None and has_events(lake)
        if lake is None:
            self._events_rel = con.sql("SELECT event_id, seq FROM events")
        else:
            self._scratch = duckdb.connect()
            migrate(self._scratch)
            self._events_rel = (read_events(con, lake) if self._lake_read else
                                con.sql("SELECT NULL::VARCHAR AS event_id, 0::BIGINT AS seq LIMIT 0"))
        # The largest seq stored, kept here from now on (the writer need not ask).
        self._seq = self._events_rel.aggregate("coalesce(max(seq), 0)").fetchall()[0][0]
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        # Held while a group is committed: by the collector's thread, or by the event loop,
        # which never waits for it (:meth:`_flush`).
        self._commit_lock = threading.Lock()
        self._pending: list[_Job] = []  # the event loop's requests for its next group
        self._ticket = 0  # the journal's ticket of the last group written
        self._syncer = (None if self._journal is None else
                        ThreadPoolExecutor(1, thread_name_prefix="microjourney-journal"))
        self._stopping = False
        self._index = IdIndex(self._events_rel)
        self.totals = Totals()
        # Journaled groups waiting for the storing thread, and how far it got (seq).
        self._unstored: deque[pa.Table] = deque()
        self._journaled = self._stored = self._seq
        self._store_error: BaseException | None = None
        self._store_cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="microjourney-collector", daemon=True)
        self._thread.start()
        self._storer: threading.Thread | None = None
        if self._journal is not None:
            self._storer = threading.Thread(target=self._store_run, args=(con.cursor(),),
                                            name="microjourney-store", daemon=True)
            self._storer.start()

    def submit(self, body: bytes) -> Future[dict[str, Any]]:
        """Queue one request's body for the collector's thread; the future holds its answer
        once its calls are committed (an answer with ``status`` is an error: the body was not
        a batch)."""
        return self._enqueue(_Job(body, Future(), track_calls(body)))

    async def collect(self, body: bytes) -> dict[str, Any]:
        """The answer to one request's body once its calls are committed, as :meth:`submit`;
        called in the event loop, which commits plain requests itself (see the module doc).

        The requests that arrive in one turn of the loop are committed together at the
        start of the next (:meth:`_flush`)."""
        job = _Job(body, Future(), track_calls(body))
        if job.tracks and self._journal is not None:
            job.waiter = asyncio.get_running_loop().create_future()
            self._pending.append(job)
            if len(self._pending) == 1:
                job.waiter.get_loop().call_soon(self._flush)
            answer = await job.waiter
            if answer is not None:
                return answer
        else:
            self._enqueue(job)
        return await asyncio.wrap_future(job.future)

    def _enqueue(self, job: _Job) -> Future[dict[str, Any]]:
        with self._cond:
            if self._stopping:
                raise RuntimeError("the collector is shutting down")
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def close(self, timeout: float = 30.0) -> None:
        """Store everything queued and journaled, then stop the threads; requests that come
        later get an error."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)
        with self._commit_lock:  # the event loop commits nothing from now on
            pass
        if self._syncer is not None:  # the syncs the event loop asked for
            self._syncer.shutdown(wait=True)
        if self._storer is not None:
            with self._store_cond:
                self._store_cond.notify_all()
            self._storer.join(timeout)
            if not self._storer.is_alive() and self._stored == self._journaled:
                self._journal.clear()

    def drain(self) -> None:
        """Return once every event answered so far is in the events table (the API reads it,
        erasure deletes from it); raises the storing thread's error if it cannot store."""
        with self._store_cond:
            target = self._journaled
            while self._stored < target:
                if self._store_error is not None:
                    raise self._store_error
                self._store_cond.wait(0.1)

    # -- the storing thread: journaled events into the events table ---------
    def _store_journaled(self) -> None:
        """Store what the journal holds and the store does not (after a crash); empty it."""
        groups = list(self._journal.read())
        if groups:
            rows = pa.concat_tables(groups)
            seq = rows.column("seq")
            # By seq, not "after the largest stored": events that may hold personal data are
            # stored at once, so they can follow journaled events not stored yet.
            stored = self._con.execute("SELECT seq FROM events WHERE seq BETWEEN $lo AND $hi", {
                "lo": pc.min(seq).as_py(), "hi": pc.max(seq).as_py()}).fetchnumpy()["seq"]
            rows = rows.filter(pa.array(~np.isin(seq.to_numpy(), stored)))
            if rows.num_rows:
                write_plain(self._con, rows, source=SOURCE, scrub=False)
        self._journal.clear()

    def _store_run(self, con: duckdb.DuckDBPyConnection) -> None:
        while True:
            with self._store_cond:
                while not self._unstored and not self._stopping:
                    self._store_cond.wait()
                if not self._unstored:
                    return
                groups, n = [], 0
                for group in self._unstored:  # a bounded insert: drain() waits for it
                    groups.append(group)
                    n += group.num_rows
                    if n >= MAX_INSERT:
                        break
            rows = pa.concat_tables(groups)
            try:  # journaled rows are plain and have nothing to scrub
                write_plain(con, rows, source=SOURCE, scrub=False)
            except Exception as exc:  # kept journaled; answers wait, the API is told
                log.error("storing journaled events failed; retrying", exc_info=exc)
                with self._store_cond:
                    self._store_error = exc
                    self._store_cond.notify_all()
                time.sleep(0.5)
                continue
            last = rows.column("seq")[-1].as_py()
            with self._store_cond:
                for _ in groups:
                    self._unstored.popleft()
                self._stored, self._store_error = last, None
                self._store_cond.notify_all()
            self._journal.stored(last)

    def _to_journal(self, rows: pa.Table, wait: bool = True) -> None:
        """Journal a group of plain events and hand it to the storing thread; ``wait``: wait
        while too many are not stored yet, and for the sync (else the caller syncs to
        ``_ticket`` before it answers)."""
        if wait:
            with self._store_cond:
                while self._behind():
                    if self._store_error is not None:
                        raise self._store_error
                    self._store_cond.wait(0.1)
        self._ticket = self._journal.write(rows)
        with self._store_cond:
            self._unstored.append(rows)
            self._journaled = rows.column("seq")[-1].as_py()
            self._store_cond.notify_all()
        if wait:
            self._journal.sync(self._ticket)

    def _behind(self) -> bool:
        """Too many journaled events are not stored yet."""
        return self._journaled - self._stored > MAX_UNSTORED

    # -- the event loop's commits -------------------------------------------
    def _flush(self) -> None:
        """Commit the event loop's pending requests, if the collector's thread is not
        committing: their events are journaled, and they are answered once a thread has
        synced the journal. Requests it cannot commit without waiting go to the thread."""
        jobs, self._pending = self._pending, []
        handed = jobs
        if self._store_error is None and not self._behind() and self._commit_lock.acquire(blocking=False):
            try:
                if not self._stopping:
                    handed = self._journal_now(jobs)
            except BaseException as exc:  # every request of the group learns it failed
                handed = []
                for job in jobs:
                    if not job.waiter.done():
                        job.waiter.set_exception(exc)
            finally:
                self._commit_lock.release()
        for job in handed:
            try:
                self._enqueue(job)
            except RuntimeError as exc:  # shutting down
                if not job.waiter.done():
                    job.waiter.set_exception(exc)
                continue
            if not job.waiter.done():
                job.waiter.set_result(None)

    def _journal_now(self, jobs: list[_Job]) -> list[_Job]:
        """Journal the events of ``jobs`` (holding the commit lock) and sync in a thread;
        returns the jobs for the collector's thread: those with a call that is not plain,
        with something to scrub (stored before their answer), or with an id that may be
        stored (looked up in the store once the journal is stored, which the loop cannot
        wait for)."""
        _, judged, plain, journal = self._judge(jobs, list(range(len(jobs))))
        if journal.any():
            owner = judged.column("req").to_numpy()
            maybe = self._index.maybe(judged.column("h").to_numpy())
            if maybe.any():
                journal = journal.copy()
                journal[owner[maybe]] = False
            if not journal[plain].all():
                judged = judged.filter(pa.array(journal[owner]))
            if journal.any():
                self._events(jobs, judged, journal=journal, wait=False)
        done = [job for job, j in zip(jobs, journal, strict=True) if j]
        for job in done:
            job.answer = self._answer(job)
        if done:  # answered once synced (inside the lock: close() stops the syncer after it)
            self.totals.commits += 1
            self.totals.loop_commits += 1
            synced = jobs[0].waiter.get_loop().run_in_executor(self._syncer, self._journal.sync, self._ticket)
            synced.add_done_callback(partial(self._synced, done))
        return [job for job, j in zip(jobs, journal, strict=True) if not j]

    @staticmethod
    def _synced(jobs: list[_Job], synced: asyncio.Future[None]) -> None:
        failed = synced.exception()
        for job in jobs:
            if job.waiter.done():  # the client went away
                continue
            if failed is not None:
                job.waiter.set_exception(failed)
            else:
                job.waiter.set_result(job.answer)

    # -- the writer thread --------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue and self._stopping:
                    return
                jobs, size = [], 0
                while self._queue and (not jobs or size < self._max_bytes):
                    job = self._queue.popleft()
                    jobs.append(job)
                    size += len(job.body)
            with self._commit_lock:
                try:
                    self._commit(jobs)
                except BaseException as exc:  # every request of the group learns it failed
                    for job in jobs:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                answers = [self._answer(job) for job in jobs]
            for job, answer in zip(jobs, answers, strict=True):
                job.future.set_result(answer)

    def _answer(self, job: _Job) -> dict[str, Any]:
        self.totals.requests += 1
        if job.problem is not None:
            status, code, message = ANSWERS[job.problem]
            return {"ok": False, "status": status, "error": {"code": code, "message": message}}
        self.totals.accepted += job.accepted
        self.totals.duplicates += job.duplicates
        self.totals.rejected += len(job.rejected)
        self.totals.withheld += job.withheld
        return {"ok": True, "accepted": job.accepted, "duplicates": job.duplicates,
                "withheld": job.withheld,
                "rejected": sorted(job.rejected, key=lambda r: r["index"])}

    def _commit(self, jobs: list[_Job]) -> None:
        slow = [req for req, job in enumerate(jobs) if job.tracks is None]
        quarantine, parts = self._taken_apart(jobs, slow) if slow else ([], [])
        fast = [req for req, job in enumerate(jobs) if job.calls]
        rows = self._tracks(jobs, fast) if fast else None
        if rows is not None:
            parts.append(rows.cast(parts[0].schema) if parts else rows)
        if parts:
            self._events(jobs, pa.concat_tables(parts))
        if quarantine:
            write_rejects(self._con, quarantine, source=f"{SOURCE} {datetime.now(UTC).isoformat()}")
        self.totals.commits += 1

    def _taken_apart(self, jobs: list[_Job], slow: list[int]) -> tuple[list[Reject], list[pa.Table]]:
        """The bodies of ``jobs[slow]`` taken apart in DuckDB: odd and identity calls checked
        (their rejects returned for quarantine, identity calls stored) and the event rows of
        their track and page calls (in :data:`_EVENT_ROWS` order)."""
        con = self._con
        bodies = pa.table({"req": pa.array(slow, pa.int32()),
                           "body": pa.array([jobs[r].body.decode("utf-8", "replace") for r in slow],
                                            pa.string())})
        con.register("_http_bodies", bodies)
        try:
            for req, problem in con.execute(PROBLEMS).fetchall():
                jobs[req].problem = problem
            con.register("_http_calls", con.sql(CALLS).to_arrow_table())
        finally:
            con.unregister("_http_bodies")
        try:
            quarantine = self._odd_calls(jobs) + self._identity_calls(jobs)
            rows = con.sql(EVENTS).to_arrow_table()
        finally:
            con.unregister("_http_calls")
        rows = rows.append_column("h", pa.array(id_hashes(rows.column("event_id").to_pylist())))
        return quarantine, [rows.select(_EVENT_ROWS)]

    def _tracks(self, jobs: list[_Job], fast: list[int]) -> pa.Table | None:
        """The rows of the fast road's requests ``jobs[fast]``, built at once: those of plain
        requests are judged and stored here, the others returned for the writer (raw rows, in
        :data:`_EVENT_ROWS` order)."""
        rows, judged, plain, journal = self._judge(jobs, fast)
        if not plain.any():  # the writer judges them all
            return rows
        # Stored first, on their own: a repeat in the rest is then found stored.
        journaled = np.zeros(len(jobs), dtype=bool)
        journaled[fast] = journal
        self._events(jobs, judged, journal=journaled)
        if plain.all():
            return None
        sizes = [jobs[r].calls for r in fast]
        return rows.filter(pa.array(np.repeat(~plain, sizes)))  # the writer says what is wrong

    def _judge(self, jobs: list[_Job], reqs: list[int]) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
        """The calls of the fast road's requests ``jobs[reqs]``, built and judged at once:
        their raw rows (in :data:`_EVENT_ROWS` order), the rows of the plain ones typed
        (:func:`.calls.plain_rows`; none without the plain road), and by request whether it
        is plain and whether it may be journaled (plain, a journal, and nothing to scrub)."""
        sizes = [jobs[r].calls for r in reqs]
        values = track_columns(list(chain.from_iterable(jobs[r].tracks for r in reqs)))
        req = np.repeat(np.array(reqs, np.int32), sizes)
        idx = np.arange(len(req)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rows = track_rows(values).add_column(0, "req", pa.array(req)).add_column(1, "idx", pa.array(idx))
        rows = rows.select(_EVENT_ROWS)
        if not self._plain:
            none = np.zeros(len(reqs), dtype=bool)
            return rows, rows.slice(0, 0), none, none
        judged, plain = plain_rows(values, rows, sizes)
        journal = plain if self._journal is not None else np.zeros(len(reqs), dtype=bool)
        if journal.any() and self._write.get("scrub", True):
            journal = journal & ~personal_requests(values, sizes)
        return rows, judged, plain, journal

    def _reject(self, job: _Job, index: int, name: str | None, reason: str) -> None:
        job.rejected.append({"index": index, "field": name, "reason": reason})

    def _odd_calls(self, jobs: list[_Job]) -> list[Reject]:
        """Calls that are not objects of a known type: rejected here."""
        out = []
        types = ", ".join(TYPES)
        for req, idx, call, shape, kind in self._con.execute(
                "SELECT req, idx, CAST(call AS VARCHAR), shape, type FROM _http_calls WHERE shape <> "
                "'OBJECT' OR type NOT IN ('track', 'page', 'identify', 'alias') ORDER BY req, idx"
        ).fetchall():
            name, reason = ((None, "a call is not a JSON object") if shape != "OBJECT" else
                            ("type", f"unknown call type {kind!r}; allowed: {types}"))
            self._reject(jobs[req], idx, name, reason)
            out.append(Reject(row=idx + 1, reason=reason, raw=call, field=name))
        return out

    def _identity_calls(self, jobs: list[_Job]) -> list[Reject]:
        """Identify and alias calls (few): checked here, stored by the identity store."""
        rows, owners, out = [], [], []
        for req, idx, call in self._con.execute(
                "SELECT req, idx, CAST(call AS VARCHAR) FROM _http_calls "
                "WHERE type IN ('identify', 'alias') ORDER BY req, idx").fetchall():
            row, name, reason = identity_row(orjson.loads(call))
            if row is None:
                self._reject(jobs[req], idx, name, reason)
                out.append(Reject(row=idx + 1, reason=reason, raw=call, field=name))
            else:
                rows.append(row)
                owners.append(jobs[req])
        if rows:
            new = set(self._identities(self._con, rows, source=SOURCE).stored)
            for row, job in zip(rows, owners, strict=True):
                if row["call_id"] in new:  # the first of the group with an id stored now
                    job.accepted += 1
                    new.discard(row["call_id"])
                else:  # a retry: stored before, or earlier in this group
                    job.duplicates += 1
        return out

    def _events(self, jobs: list[_Job], ev: pa.Table, journal: np.ndarray | None = None,
                wait: bool = True) -> None:
        """Track and page calls (raw rows: ``req``, ``idx``, the event fields with JSON as
        text, and ``h``, the id's hash): withheld without consent, once per id, through the
        writer. With ``journal`` (by request in ``jobs``), the rows are plain, judged and typed
        already (:func:`.calls.plain_rows`): those of the requests it marks are journaled, the
        others stored before the answer (:func:`~..store.writer.write_plain`). Not ``wait``: in
        the event loop, which does not wait for the storing thread (see :meth:`_to_journal`;
        no id of ``ev`` may be stored)."""
        con = self._con
        if not ev.num_rows:
            return
        n = len(jobs)
        req = ev.column("req").to_numpy()
        idx = ev.column("idx").to_numpy()
        hashes = ev.column("h").to_numpy()
        ok = np.ones(ev.num_rows, dtype=bool)
        if self._consent:
            con.register("_http_events", ev)
            try:
                ok = con.sql(f"SELECT {consent_sql('context')} AS ok FROM _http_events") \
                    .to_arrow_table().column("ok").to_numpy(zero_copy_only=False)
            finally:
                con.unregister("_http_events")
        # Repeats among the events that may be stored (a withheld event holds no id).
        again = np.zeros(ev.num_rows, dtype=bool)
        if ok.any():
            mine = np.flatnonzero(ok)
            again[mine] = repeats(ev.column("event_id").take(pa.array(mine)), hashes[mine],
                                   np.lexsort((idx[mine], req[mine])))
        fresh = ok & ~again
        stored = np.zeros(ev.num_rows, dtype=bool)
        maybe = self._index.maybe(hashes) & fresh
        if maybe.any():
            self.drain()  # the ids journaled are looked up in the events table
            ids = ev.column("event_id").filter(pa.array(maybe)).to_pylist()
            found = {r[0] for r in self._events_rel.filter(
                duckdb.FunctionExpression("list_contains", duckdb.ConstantExpression(ids),
                                          duckdb.ColumnExpression("event_id"))
            ).select("event_id").fetchall()}
            stored[np.flatnonzero(maybe)] = [i in found for i in ids]
        keep = fresh & ~stored
        for job, w, d in zip(jobs, np.bincount(req[~ok], minlength=n),
                             np.bincount(req[ok & (again | stored)], minlength=n), strict=True):
            job.withheld += int(w)
            job.duplicates += int(d)
        if not ok.all():
            count_withheld(con, int((~ok).sum()))
        if not keep.any():
            return
        raw = (ev if keep.all() else ev.filter(pa.array(keep))).select(list(EVENT_FIELDS))
        if journal is not None:
            raw = raw.append_column("seq", pa.array(np.arange(self._seq + 1, self._seq + raw.num_rows + 1)))
            self._seq += raw.num_rows  # taken even if this fails: a seq is never given twice
            now = ~journal[req[keep]]
            if now.any():  # stored before the answer (no journal, or maybe personal data)
                write_plain(con, raw.filter(pa.array(now)), source=SOURCE, **self._write)
            if not now.all():
                self._to_journal(raw.filter(pa.array(~now)) if now.any() else raw, wait)
            result = BatchResult(raw.num_rows, 0, 0)
        else:
            raw = raw.append_column(ROW, pa.array(np.arange(1, raw.num_rows + 1), pa.int64()))
            if self._lake is not None:
                result = self._to_lake(raw)
            else:
                result = write_batch(con, raw, source=SOURCE, dedupe=False, json_text=True,
                                     base_seq=self._seq, naive_hint=NAIVE_HINT, **self._write)
                self._seq += raw.num_rows
        good = np.ones(raw.num_rows, dtype=bool)
        kept_req, kept_idx = req[keep], idx[keep]
        for row, name, reason in result.rejects:
            good[row - 1] = False
            self._reject(jobs[kept_req[row - 1]], int(kept_idx[row - 1]), name, reason)
        for job, a in zip(jobs, np.bincount(kept_req[good], minlength=n), strict=True):
            job.accepted += int(a)
        self._index.add(hashes[keep][good])

    def _to_lake(self, raw: pa.Table) -> BatchResult:
        """Judge ``raw`` in the scratch store, append the accepted events to the lake, copy
        the rejected rows to the store's quarantine; the scratch store is emptied."""
        scratch = self._scratch
        result = write_batch(scratch, raw, source=SOURCE, dedupe=False, json_text=True,
                             naive_hint=NAIVE_HINT, **self._write)
        try:
            events = scratch.sql("SELECT * REPLACE (seq + $offset AS seq) FROM events ORDER BY seq",
                                 params={"offset": self._seq}).to_arrow_table()
            if events.num_rows:  # con: on object storage, the id lookups see the new objects
                append(self._lake, events, con=self._con)
                self._seq += events.num_rows
                if not self._lake_read:  # the lake was empty: read it from now on
                    self._events_rel = read_events(self._con, self._lake)
                    self._lake_read = True
            bad = scratch.sql("SELECT * FROM quarantine").to_arrow_table()
            if bad.num_rows:
                self._con.register("_http_bad", bad)
                try:
                    self._con.execute("INSERT INTO quarantine SELECT * FROM _http_bad")
                finally:
                    self._con.unregister("_http_bad")
        finally:
            scratch.execute("DELETE FROM events; DELETE FROM quarantine")
        return result
