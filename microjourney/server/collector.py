"""The collector's writer: group commit, acknowledged only after the commit.

Request handlers check the key and the size and hand the body to :class:`Collector`;
a batch of track calls with ids is decoded there, in the handler (the fast road of
:mod:`.calls`). The collector owns the store connection in one thread, which takes every
request waiting (up to ``max_bytes`` of bodies), builds and judges the rows of the decoded
ones at once, takes the other bodies apart in DuckDB (:mod:`.apart`), and stores them
together: the events in one transaction through the same writer as file ingest,
identify/alias calls through the identity store.
Each request's future is resolved only after the commit that holds its calls, so a 2xx
answer means the calls are durable.

Every request is judged alone: when a group fails, its requests are committed again one by
one, so that a request nothing can store (:data:`.jobs.ANSWERS`, ``unstorable``) is answered
400 and the others are stored; only a failure of the server itself (the disk, the store:
:data:`SERVER_ERRORS`) fails a request as an error of the server. The log names the
failure's kind and a reference, never a value of the request.

Plain events with nothing to scrub are not stored before the answer: they are appended to
the journal (:mod:`..store.journal`, synced to disk), answered, and stored by a second
thread, many groups at once (:mod:`.storing`); whatever reads the store first waits for it
(:meth:`Collector.drain`). Requests of such events are committed in the event loop itself
(:meth:`Collector.collect`): the loop builds their rows and writes them to the journal, and
a thread only syncs it, so that one thread runs Python on the answer path instead of two
passing the GIL to each other (docs/benchmarks.md, "HTTP ingest"). The loop never waits for
the collector's thread: when that thread is committing, or a request needs the store (an id
that may be stored, a call the writer must judge), the request is handed to the thread.

Duplicates are found without scanning the stored ids on every commit (:mod:`.ids`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ..ingest.schema import FUTURE_TOLERANCE, ROW
from ..store.batches import Tally, last_seq
from ..store.db import migrate
from ..store.journal import Journal
from ..store.lake import append, has_events, read_events
from ..store.writer import BatchResult, count_withheld, write_batch, write_plain, write_rejects
from .apart import EVENT_ROWS, consented, file_contexts, take_apart
from .calls import (
    EVENT_FIELDS,
    personal_requests,
    plain_rows,
    track_calls,
    track_columns,
    track_rows,
)
from .ids import IdIndex, repeats
from .jobs import Job, Totals, answer
from .storing import SOURCE, Storer, store_left_over

log = logging.getLogger("microjourney.server")

#: The advice for a timestamp without an offset: a call can only carry the offset.
NAIVE_HINT = "give one"
#: Failures of the server, not of a request: a request failing alone with one of these is
#: answered as the server's error (500), any other failure as its own (400).
SERVER_ERRORS = (OSError, MemoryError, duckdb.IOException, duckdb.FatalException,
                 duckdb.OutOfMemoryException, duckdb.TransactionException)


class Collector:
    """Stores parsed requests in group commits, in its own thread (see the module doc).

    ``identities``: stores identify/alias calls, ``(con, rows, source=...)``; ``consent``:
    calls without analytics consent are counted and not stored; ``write``: keyword
    arguments for the event writer (e.g. privacy settings); ``lake``: events go to this
    Parquet lake (docs/lake.md) instead of the store: the writer judges them in a scratch
    store in memory, the accepted ones are appended to the lake (fsynced before the answer)
    and the rejected ones go to the store's quarantine, as in the store's case.
    ``future_tolerance``: how many seconds after its arrival a call's timestamp may lie
    (``ingest.future_tolerance``), on every road.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, identities: Callable[..., Any],
                 consent: bool = False, max_bytes: int = 16_000_000,
                 write: dict[str, Any] | None = None, lake: str | Path | None = None,
                 journal: str | Path | None = None, future_tolerance: float = FUTURE_TOLERANCE) -> None:
        self._con = con
        self._tolerance = future_tolerance
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
        if self._journal is not None:  # stored with fewer, larger checkpoints (store/db.py)
            store_left_over(con, self._journal)
        # An empty lake has nothing to read yet: the first append gives it events.
        self._lake_read = lake is not None and has_events(lake)
        if lake is None:
            self._events_rel = con.sql("SELECT event_id, seq FROM events")
        else:
            self._scratch = duckdb.connect()
            migrate(self._scratch)
            self._events_rel = (read_events(con, lake) if self._lake_read else
                                con.sql("SELECT NULL::VARCHAR AS event_id, 0::BIGINT AS seq LIMIT 0"))
        # The largest seq given (stored, or erased last: store.db.LAST_SEQ), kept here from
        # now on (the writer need not ask).
        self._seq = (last_seq(con) if lake is None else
                     self._events_rel.aggregate("coalesce(max(seq), 0)").fetchall()[0][0])
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        # Held while a group is committed: by the collector's thread, or by the event loop,
        # which never waits for it (:meth:`_flush`).
        self._commit_lock = threading.Lock()
        self._pending: list[Job] = []  # the event loop's requests for its next group
        self._ticket = 0  # the journal's ticket of the last group written
        self._syncer = (None if self._journal is None else
                        ThreadPoolExecutor(1, thread_name_prefix="microjourney-journal"))
        self._stopping = False
        self._index = IdIndex(self._events_rel)
        self.totals = Totals()
        # What arrived, for the store's `batches`: added once a minute, not per commit.
        self._tally = Tally(con.cursor(), SOURCE, self._seq)
        self._storer = (None if self._journal is None else
                        Storer(con.cursor(), self._journal, self._seq))
        self._thread = threading.Thread(target=self._run, name="microjourney-collector", daemon=True)
        self._thread.start()

    def submit(self, body: bytes) -> Future[dict[str, Any]]:
        """Queue one request's body for the collector's thread; the future holds its answer
        once its calls are committed (an answer with ``status`` is an error: the body was not
        a batch)."""
        return self._enqueue(Job(body, Future(), track_calls(body)))

    async def collect(self, body: bytes) -> dict[str, Any]:
        """The answer to one request's body once its calls are committed, as :meth:`submit`;
        called in the event loop, which commits plain requests itself (see the module doc).

        The requests that arrive in one turn of the loop are committed together at the
        start of the next (:meth:`_flush`)."""
        job = Job(body, Future(), track_calls(body))
        if job.tracks and self._journal is not None:
            job.waiter = asyncio.get_running_loop().create_future()
            self._pending.append(job)
            if len(self._pending) == 1:
                job.waiter.get_loop().call_soon(self._flush)
            answered = await job.waiter
            if answered is not None:
                return answered
        else:
            self._enqueue(job)
        return await asyncio.wrap_future(job.future)

    def _enqueue(self, job: Job) -> Future[dict[str, Any]]:
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
            self._storer.close(timeout)
        self._tally.flush(self.totals, self._seq)

    def drain(self, *, counts: bool = True) -> None:
        """Return once every event answered so far is in the events table (the API reads it,
        erasure deletes from it), and with ``counts`` what arrived in ``batches``; raises the
        storing thread's error if it cannot store."""
        if self._storer is not None:
            self._storer.drain()
        if counts:
            self._tally.flush(self.totals, self._seq)

    # -- the event loop's commits -------------------------------------------
    def _flush(self) -> None:
        """Commit the event loop's pending requests, if the collector's thread is not
        committing: their events are journaled, and they are answered once a thread has
        synced the journal. Requests it cannot commit without waiting go to the thread, and
        so do all of them when the group fails (the thread judges them one by one)."""
        jobs, self._pending = self._pending, []
        handed = jobs
        storer = self._storer
        if storer.error is None and not storer.behind() and self._commit_lock.acquire(blocking=False):
            try:
                if not self._stopping:
                    handed = self._journal_now(jobs)
            except Exception:  # nothing answered yet: the thread commits them again
                for job in jobs:
                    job.restart()
                    job.answer = None
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

    def _journal_now(self, jobs: list[Job]) -> list[Job]:
        """Journal the events of ``jobs`` (holding the commit lock) and sync in a thread;
        returns the jobs for the collector's thread: those with a call that is not plain,
        with something to scrub (stored before their answer), or with an id that may be
        stored (looked up in the store once the journal is stored, which the loop cannot
        wait for)."""
        self._tally.tick(self.totals, self._seq)
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
            job.answer = answer(job, self.totals)
        if done:  # answered once synced (inside the lock: close() stops the syncer after it)
            self.totals.commits += 1
            self.totals.loop_commits += 1
            synced = jobs[0].waiter.get_loop().run_in_executor(self._syncer, self._journal.sync, self._ticket)
            synced.add_done_callback(partial(self._synced, done))
        return [job for job, j in zip(jobs, journal, strict=True) if not j]

    @staticmethod
    def _synced(jobs: list[Job], synced: asyncio.Future[None]) -> None:
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
                self._tally.tick(self.totals, self._seq)
                answers = self._commit_apart(jobs)
            for job, answered in zip(jobs, answers, strict=True):
                if isinstance(answered, BaseException):
                    job.future.set_exception(answered)
                else:
                    job.future.set_result(answered)

    def _commit_apart(self, jobs: list[Job]) -> list[dict[str, Any] | BaseException]:
        """Commit ``jobs`` as one group; when it fails, each request alone (see the module
        doc). Their answers, or the server's error of those the server failed."""
        try:
            self._commit(jobs)
            return [answer(job, self.totals) for job in jobs]
        except BaseException as exc:
            if len(jobs) == 1:
                return [self._failed(jobs[0], exc)]
        out: list[dict[str, Any] | BaseException] = []
        for job in jobs:
            job.restart()  # what the failed group counted; what it stored is found stored
            try:
                self._commit([job])
            except BaseException as exc:
                out.append(self._failed(job, exc))
            else:
                out.append(answer(job, self.totals))
        return out

    def _failed(self, job: Job, exc: BaseException) -> dict[str, Any] | BaseException:
        """The answer to a request whose commit failed on its own: the server's error, or
        ``unstorable``. The log holds a reference and the failure's kind, not its message
        (it may quote a value of the request)."""
        ref = secrets.token_hex(6)
        if isinstance(exc, SERVER_ERRORS) or not isinstance(exc, Exception):
            log.error("collector/commit-failed ref=%s %s", ref, type(exc).__name__)
            return exc
        log.warning("request/unprocessable ref=%s %s", ref, type(exc).__name__)
        job.problem, job.detail = "unstorable", f"ref {ref}"
        return answer(job, self.totals)

    def _commit(self, jobs: list[Job]) -> None:
        slow = [req for req, job in enumerate(jobs) if job.tracks is None]
        quarantine, parts = [], []
        if slow:
            quarantine, rows = take_apart(self._con, jobs, slow, identities=self._identities,
                                          consent=self._consent, future_tolerance=self._tolerance)
            parts.append(rows)
        fast = [req for req, job in enumerate(jobs) if job.calls]
        rows = self._tracks(jobs, fast) if fast else None
        if rows is not None:
            parts.append(rows.cast(parts[0].schema) if parts else rows)
        if parts:
            self._events(jobs, pa.concat_tables(parts))
        if quarantine:
            write_rejects(self._con, quarantine, source=f"{SOURCE} {datetime.now(UTC).isoformat()}")
        self.totals.commits += 1

    def _tracks(self, jobs: list[Job], fast: list[int]) -> pa.Table | None:
        """The rows of the fast road's requests ``jobs[fast]``, built at once: those of plain
        requests are judged and stored here, the others returned for the writer (raw rows, in
        :data:`.apart.EVENT_ROWS` order)."""
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

    def _judge(self, jobs: list[Job], reqs: list[int]) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray]:
        """The calls of the fast road's requests ``jobs[reqs]``, built and judged at once:
        their raw rows (in :data:`.apart.EVENT_ROWS` order), the rows of the plain ones typed
        (:func:`.calls.plain_rows`; none without the plain road), and by request whether it
        is plain and whether it may be journaled (plain, a journal, and nothing to scrub)."""
        sizes = [jobs[r].calls for r in reqs]
        values = track_columns(list(chain.from_iterable(jobs[r].tracks for r in reqs)))
        req = np.repeat(np.array(reqs, np.int32), sizes)
        idx = np.arange(len(req)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        rows = track_rows(values).add_column(0, "req", pa.array(req)).add_column(1, "idx", pa.array(idx))
        rows = rows.select(EVENT_ROWS)
        if not self._plain:
            none = np.zeros(len(reqs), dtype=bool)
            return rows, rows.slice(0, 0), none, none
        judged, plain = plain_rows(values, rows, sizes, future_tolerance=self._tolerance)
        journal = plain if self._journal is not None else np.zeros(len(reqs), dtype=bool)
        if journal.any() and self._write.get("scrub", True):
            journal = journal & ~personal_requests(values, sizes)
        return rows, judged, plain, journal

    def _events(self, jobs: list[Job], ev: pa.Table, journal: np.ndarray | None = None,
                wait: bool = True) -> None:
        """Track and page calls (raw rows: ``req``, ``idx``, the event fields with JSON as
        text, and ``h``, the id's hash): withheld without consent, once per id, through the
        writer. With ``journal`` (by request in ``jobs``), the rows are plain, judged and typed
        already (:func:`.calls.plain_rows`): those of the requests it marks are journaled, the
        others stored before the answer (:func:`~..store.writer.write_plain`). Not ``wait``: in
        the event loop, which does not wait for the storing thread (see :meth:`.Storer.write`;
        no id of ``ev`` may be stored)."""
        con = self._con
        if not ev.num_rows:
            return
        n = len(jobs)
        req = ev.column("req").to_numpy()
        idx = ev.column("idx").to_numpy()
        hashes = ev.column("h").to_numpy()
        ok = np.ones(ev.num_rows, dtype=bool)
        if self._consent:  # the context as file ingest gives it: the same verdict
            ok = consented(con, file_contexts(ev.column("context").to_pylist()))
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
            self.drain(counts=False)  # the ids journaled are looked up in the events table
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
                self._ticket = self._storer.write(raw.filter(pa.array(~now)) if now.any() else raw, wait)
            result = BatchResult(raw.num_rows, 0, 0)
        else:
            raw = raw.append_column(ROW, pa.array(np.arange(1, raw.num_rows + 1), pa.int64()))
            if self._lake is not None:
                result = self._to_lake(raw)
            else:
                result = write_batch(con, raw, source=SOURCE, dedupe=False, json_text=True,
                                     base_seq=self._seq, naive_hint=NAIVE_HINT,
                                     future_tolerance=self._tolerance, **self._write)
                self._seq += raw.num_rows
        good = np.ones(raw.num_rows, dtype=bool)
        kept_req, kept_idx = req[keep], idx[keep]
        for row, name, reason in result.rejects:
            good[row - 1] = False
            jobs[kept_req[row - 1]].reject(int(kept_idx[row - 1]), name, reason)
        for job, a in zip(jobs, np.bincount(kept_req[good], minlength=n), strict=True):
            job.accepted += int(a)
        self._index.add(hashes[keep][good])

    def _to_lake(self, raw: pa.Table) -> BatchResult:
        """Judge ``raw`` in the scratch store, append the accepted events to the lake, copy
        the rejected rows to the store's quarantine; the scratch store is emptied."""
        scratch = self._scratch
        result = write_batch(scratch, raw, source=SOURCE, dedupe=False, json_text=True,
                             naive_hint=NAIVE_HINT, future_tolerance=self._tolerance, **self._write)
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
