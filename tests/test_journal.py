"""The collector's journal: events answered before they are in the events table."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pyarrow as pa
import pytest

import microjourney as mj
from microjourney.server.calls import EVENT_FIELDS, track_calls
from microjourney.server.collector import Collector
from microjourney.store.identities import write_calls
from microjourney.store.journal import Journal
from microjourney.store.writer import write_plain

from .helpers import plain_table, track


def _rows(first: int, n: int) -> pa.Table:
    """``n`` plain events e<first>.. with seq first+1.., as the collector journals them."""
    body = json.dumps({"batch": [track(i) for i in range(first, first + n)]}).encode()
    rows = plain_table(track_calls(body)).select(list(EVENT_FIELDS))
    return rows.append_column("seq", pa.array(range(first + 1, first + n + 1), pa.int64()))


def test_the_journal_gives_back_whole_groups_and_ends_at_one_cut_short(tmp_path):
    journal = Journal(tmp_path / "j", segment_bytes=3000)
    for first in range(0, 60, 10):
        journal.sync(journal.write(_rows(first, 10)))
    segments = journal.segments()
    assert len(segments) > 2  # small segments: a new one after each large group
    assert [t.column("seq")[0].as_py() for t in journal.read()] == list(range(1, 61, 10))
    # A crash in the middle of the last append: its group was never answered.
    os.truncate(segments[-1], os.path.getsize(segments[-1]) - 10)
    got = pa.concat_tables(journal.read())
    assert got.column("seq").to_pylist() == list(range(1, 51))
    assert got.column("event_id").to_pylist() == [f"e{i}" for i in range(50)]
    # Segments whose events are all stored are deleted (not the one being written).
    journal.stored(30)
    left = journal.segments()
    assert left and all(int(p.stem) > 20 for p in left)
    journal.clear()
    assert journal.segments() == []


def test_one_sync_covers_every_group_written_before_it(tmp_path):
    """Groups written from one thread while another syncs, across many segments: each sync
    returns once its group is on disk, and every group reads back whole and in order."""
    journal = Journal(tmp_path / "j", segment_bytes=4000)
    tickets = [journal.write(_rows(first, 10)) for first in range(0, 30, 10)]
    assert tickets == sorted(tickets) and len(set(tickets)) == 3
    journal.sync(tickets[-1])  # the last one covers the two before it
    journal.sync(tickets[0])
    stop = threading.Event()
    synced: list[int] = []

    def syncing() -> None:
        while not stop.is_set():
            ticket = tickets[-1]  # the last group written so far
            journal.sync(ticket)
            synced.append(ticket)

    thread = threading.Thread(target=syncing)
    thread.start()
    try:
        for first in range(30, 600, 10):
            tickets.append(journal.write(_rows(first, 10)))
    finally:
        stop.set()
        thread.join()
    journal.sync(tickets[-1])
    assert len(journal.segments()) > 10 and synced
    got = pa.concat_tables(journal.read())
    assert got.column("seq").to_pylist() == list(range(1, 601))
    journal.clear()
    assert journal.segments() == []


def test_a_failed_sync_fails_its_groups_and_the_next_group_starts_a_segment(tmp_path, monkeypatch):
    """fdatasync failing (a disk error, injected here) fails every group it covered, now and
    when asked again; the next group goes to a new segment and syncs."""
    journal = Journal(tmp_path / "j")
    first = journal.write(_rows(0, 10))
    journal.sync(first)
    second = journal.write(_rows(10, 10))

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(os, "fdatasync", failing)
        with pytest.raises(OSError):
            journal.sync(second)
    with pytest.raises(OSError, match="could not be synced"):
        journal.sync(second)
    journal.sync(first)  # synced before the failure
    third = journal.write(_rows(20, 10))
    journal.sync(third)
    assert len(journal.segments()) == 2
    assert [t.column("seq")[0].as_py() for t in journal.read()] == [1, 11, 21]


def test_events_journaled_and_not_stored_are_stored_once_at_start(tmp_path):
    """What a killed server answered but had not stored yet is stored when it starts again;
    what it had stored is not stored twice."""
    root = tmp_path / "ws"
    mj.init(root).close()
    journal_dir = root / "journal"
    with mj.open(root) as ws:
        write_plain(ws.con, _rows(0, 30), source="http")  # the storing thread got this far
        # Events that may hold personal data are stored at once, after journaled ones.
        write_plain(ws.con, _rows(60, 30), source="http")
        journal = Journal(journal_dir)
        for first in (0, 30, 90):
            journal.sync(journal.write(_rows(first, 30)))
        del journal  # killed: nothing closed, nothing deleted
        c = Collector(ws.con.cursor(), identities=write_calls, journal=journal_dir)
        assert list(journal_dir.glob("*")) == []  # stored, then emptied
        # The ids of the journal are known: sent again, they are duplicates.
        again = c.submit(json.dumps({"batch": [track(i) for i in (5, 45, 119, 120)]}).encode()).result(30)
        c.close()
        assert (again["accepted"], again["duplicates"]) == (1, 3)
        assert ws.con.execute("SELECT count(*), count(DISTINCT event_id), min(seq), max(seq), "
                              "count(DISTINCT seq) FROM events").fetchall() == [(121, 121, 1, 121, 121)]


def test_answers_wait_while_the_journal_is_behind_and_drain_reads_all(tmp_path):
    """Many groups journaled in a row: every answered event is readable after drain(), and
    after close() the journal is empty."""
    root = tmp_path / "ws"
    mj.init(root).close()
    with mj.open(root) as ws:
        c = Collector(ws.con.cursor(), identities=write_calls, journal=root / "journal")
        # Inserts off the answer path checkpoint less often (the store's own setting; DuckDB's
        # default is 16 MiB; docs/benchmarks.md).
        assert ws.con.execute("SELECT current_setting('checkpoint_threshold')").fetchall() \
            == [("256.0 MiB",)]
        futures = [c.submit(json.dumps({"batch": [track(i) for i in range(k, k + 50)]}).encode())
                   for k in range(0, 2000, 50)]
        assert sum(f.result(30)["accepted"] for f in futures) == 2000
        c.drain()
        assert ws.con.execute("SELECT count(*) FROM events").fetchall() == [(2000,)]
        c.close()
        assert list((root / "journal").glob("*")) == []


def test_the_event_loop_commits_plain_requests_and_hands_the_others_to_the_thread(tmp_path):
    """Plain requests arriving in one turn of the event loop are committed there, in one
    group; a request with a call the writer must judge, a retry (an id that may be stored)
    and requests arriving while the collector's thread holds the commit are handed to the
    thread; every answer is the one the thread would give."""
    root = tmp_path / "ws"
    mj.init(root).close()

    def body(calls: list[dict]) -> bytes:
        return json.dumps({"batch": calls}).encode()

    with mj.open(root) as ws:
        c = Collector(ws.con.cursor(), identities=write_calls, journal=root / "journal")

        async def send(bodies: list[bytes]) -> list[dict]:
            return await asyncio.gather(*(c.collect(b) for b in bodies))

        plain = [body([track(i) for i in range(k, k + 20)]) for k in range(0, 200, 20)]
        answers = asyncio.run(send(plain))
        assert [a["accepted"] for a in answers] == [20] * 10
        assert (c.totals.commits, c.totals.loop_commits) == (1, 1)
        # A date with no offset: the writer says what is wrong; the other request is plain.
        bad = body([track(500), track(501, timestamp="2026-01-02")])
        answers = asyncio.run(send([bad, body([track(600)])]))
        assert answers[0]["accepted"] == 1
        (rejected,) = answers[0]["rejected"]
        assert (rejected["index"], rejected["field"]) == (1, "timestamp") and "offset" in rejected["reason"]
        assert answers[1]["accepted"] == 1
        assert (c.totals.commits, c.totals.loop_commits) == (3, 2)
        # An e-mail address in one request: it is scrubbed and stored by the thread before its
        # answer; the request beside it is journaled by the loop.
        personal = body([track(700, properties={"note": "mail ann@example.com"})])
        answers = asyncio.run(send([personal, body([track(701)])]))
        assert [a["accepted"] for a in answers] == [1, 1]
        assert (c.totals.commits, c.totals.loop_commits) == (5, 3)
        c.drain()
        assert ws.con.execute("SELECT properties::VARCHAR FROM events WHERE event_id = 'e700'").fetchall() \
            == [('{"note":"mail [email]"}',)]
        # Retried: the ids may be stored, so the thread looks them up once the journal is
        # stored; a new request beside them is journaled by the loop all the same.
        answers = asyncio.run(send([*plain[:3], body([track(800), track(801)])]))
        assert [(a["accepted"], a["duplicates"]) for a in answers] == [(0, 20)] * 3 + [(2, 0)]
        assert (c.totals.commits, c.totals.loop_commits) == (7, 4)
        # While the thread commits, the loop does not wait for it: the requests go to the thread.
        later = [body([track(i) for i in range(k, k + 20)]) for k in range(1000, 1100, 20)]

        async def while_busy() -> list[dict]:
            c._commit_lock.acquire()
            tasks = [asyncio.ensure_future(c.collect(b)) for b in later]
            await asyncio.sleep(0.2)
            assert not any(t.done() for t in tasks)
            c._commit_lock.release()
            return await asyncio.gather(*tasks)

        assert [a["accepted"] for a in asyncio.run(while_busy())] == [20] * 5
        assert c.totals.loop_commits == 4
        # A client that goes away before its answer: the others are answered all the same.
        gone = [body([track(i) for i in range(k, k + 10)]) for k in (2000, 2010)]

        async def one_gone() -> dict:
            tasks = [asyncio.ensure_future(c.collect(b)) for b in gone]
            await asyncio.sleep(0)
            tasks[0].cancel()
            return await tasks[1]

        assert asyncio.run(one_gone())["accepted"] == 10
        c.close()
        assert ws.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchall() \
            == [(326, 326)]
        assert list((root / "journal").glob("*")) == []
        assert c.totals.accepted == 326 and c.totals.duplicates == 60


def test_when_the_journal_is_behind_the_event_loop_hands_its_requests_to_the_thread(tmp_path, monkeypatch):
    """Back-pressure: with too many journaled events not stored yet, the loop does not wait
    for the storing thread; it hands its requests to the collector's thread, which waits,
    and every request is answered once the storing thread goes on."""
    from microjourney.server import storing

    gate = threading.Event()  # holds the storing thread back until the test opens it

    def held(*args, **kwargs):
        gate.wait(30)
        return write_plain(*args, **kwargs)

    monkeypatch.setattr(storing, "MAX_UNSTORED", 50)
    monkeypatch.setattr(storing, "write_plain", held)
    root = tmp_path / "ws"
    mj.init(root).close()
    with mj.open(root) as ws:
        c = Collector(ws.con.cursor(), identities=write_calls, journal=root / "journal")

        def bodies(first: int) -> list[bytes]:
            return [json.dumps({"batch": [track(i) for i in range(k, k + 40)]}).encode()
                    for k in range(first, first + 200, 40)]

        async def run() -> list[dict]:
            answers = await asyncio.gather(*(c.collect(b) for b in bodies(0)))  # journaled
            later = [asyncio.ensure_future(c.collect(b)) for b in bodies(200)]
            await asyncio.sleep(0.3)
            assert not any(t.done() for t in later)  # 200 journaled, none stored: behind
            assert (c.totals.commits, c.totals.loop_commits) == (1, 1)
            gate.set()
            return answers + await asyncio.gather(*later)

        assert [a["accepted"] for a in asyncio.run(run())] == [40] * 10
        assert (c.totals.commits, c.totals.loop_commits) == (2, 1)
        c.close()
        assert ws.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchall() \
            == [(400, 400)]
