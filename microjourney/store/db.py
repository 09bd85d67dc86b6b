"""The DuckDB store: one file per workspace, its schema and migrations.

Tables (all timestamps UTC)::

    events      one row per accepted event; ``seq`` is the global ingest order, so
                events at the same instant keep the order they had in their source
    quarantine  rejected rows: source, row number, field, reason, the raw row
    ingests     one row per ingest run: counts of accepted, duplicate, rejected rows
    meta        key/value: schema version, fingerprints of derived tables
    timeline    derived: every event in person order with its neighbours (see
                :mod:`microjourney.engine.timeline`), rebuilt when events change
    tagged      derived: the events playing a role in a moment, cut into attempts
    attempts    derived (see :mod:`microjourney.engine.attempts`), rebuilt when the
                events or the moment definitions change
    frictions   derived (see :mod:`microjourney.engine.frictions`), rebuilt when events,
                definitions, friction settings or detector versions change
    friction_kinds, friction_moments
                derived with ``frictions``: the summary's sufficient statistics per
                (moment, kind) and per moment
    identities  identify/alias calls (see :mod:`microjourney.store.identities`), unique by
                ``call_id``; ``seq`` is their ingest order
    erasures    the erasure log: an id, a time and rows removed per table; no personal data
    persons     derived: every identifier (user and anonymous ids, shared key values) with
                its person (see :mod:`microjourney.identity`), rebuilt when events or
                identities change
    batches     arrivals per source and UTC minute: rows accepted, duplicate, rejected,
                withheld, and the ``seq`` range the accepted events were given (see
                :mod:`microjourney.store.batches`); counts only, no identifiers
    changes     the change playbook: what changed in a moment, on which day, of which kind
                (see :mod:`microjourney.store.changes`)
    deliveries  each alert's webhook delivery per URL: claimed before it is sent, so that
                an alert is delivered at most once (see :mod:`microjourney.store.deliveries`)
    baselines   each moment's baselines frozen on request: the period and its figures (see
                :mod:`microjourney.store.baselines`)
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ..errors import WorkspaceError
from .private import FILE_MODE, make_dir, narrow, narrow_umask

SCHEMA_VERSION = 6
#: Seconds :func:`connect` waits for a store another process holds, unless
#: ``MICROJOURNEY_LOCK_WAIT`` says otherwise.
LOCK_WAIT = 10.0
LOCK_WAIT_VAR = "MICROJOURNEY_LOCK_WAIT"
_PID = re.compile(r"\(PID (\d+)\)")

_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE events (
            event_id     VARCHAR NOT NULL,
            seq          BIGINT NOT NULL,
            timestamp    TIMESTAMPTZ NOT NULL,
            event        VARCHAR NOT NULL,
            anonymous_id VARCHAR,
            user_id      VARCHAR,
            channel      VARCHAR NOT NULL,
            session_id   VARCHAR,
            properties   JSON,
            context      JSON,
            source       VARCHAR NOT NULL
        )""",
        """CREATE TABLE quarantine (
            source      VARCHAR NOT NULL,
            row         BIGINT,
            field       VARCHAR,
            reason      VARCHAR NOT NULL,
            raw         JSON,
            received_at TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE ingests (
            source      VARCHAR NOT NULL,
            format      VARCHAR NOT NULL,
            accepted    BIGINT NOT NULL,
            duplicates  BIGINT NOT NULL,
            rejected    BIGINT NOT NULL,
            started_at  TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ NOT NULL
        )""",
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    ),
    2: (
        """CREATE TABLE identities (
            call_id      VARCHAR NOT NULL,
            seq          BIGINT NOT NULL,
            kind         VARCHAR NOT NULL,
            timestamp    TIMESTAMPTZ NOT NULL,
            anonymous_id VARCHAR,
            user_id      VARCHAR,
            previous_id  VARCHAR,
            traits       JSON,
            source       VARCHAR NOT NULL,
            received_at  TIMESTAMPTZ NOT NULL
        )""",
        """CREATE TABLE erasures (
            erasure_id VARCHAR NOT NULL,
            erased_at  TIMESTAMPTZ NOT NULL,
            counts     JSON NOT NULL
        )""",
    ),
    # Stores written before the edges were hardened: a quarantined line kept as a bare JSON
    # string (a deep one broke every read of the quarantine) becomes {"text": ...}, cut to
    # 4,096 characters as new rows are; events outside the timestamp range (1970 to arrival
    # plus a day: later than now plus a day was later at arrival too) move to quarantine.
    3: (
        """UPDATE quarantine SET raw = json_object('text', left(raw ->> '$', 4096))
           WHERE json_type(raw) = 'VARCHAR'""",
        """INSERT INTO quarantine
           SELECT source, NULL, 'timestamp',
                  'timestamp ' || CAST(timestamp AS VARCHAR) || ' is outside 1970-01-01 to arrival '
                  || 'plus one day (moved from events when the store was upgraded)',
                  json_object('event_id', event_id, 'event', event, 'timestamp',
                              CAST(timestamp AS VARCHAR), 'anonymous_id', anonymous_id,
                              'user_id', user_id, 'channel', channel, 'session_id', session_id),
                  now()
           FROM events
           WHERE timestamp < TIMESTAMPTZ '1970-01-01 00:00:00+00'
              OR timestamp > now() + INTERVAL 1 DAY""",
        """DELETE FROM events WHERE timestamp < TIMESTAMPTZ '1970-01-01 00:00:00+00'
              OR timestamp > now() + INTERVAL 1 DAY""",
    ),
    # What arrived when (store/batches.py): file ingests and the collector add their counts
    # per source and minute, with the seq range of the events accepted, which dates each
    # event's arrival. Earlier file ingests are carried over from ``ingests`` (withheld rows
    # were not logged per ingest: 0); a file ingested once also gets the seq range of its
    # events, the others' events keep an unknown arrival. Safe to run again.
    4: (
        """CREATE TABLE IF NOT EXISTS batches (
            source     VARCHAR NOT NULL,
            minute     TIMESTAMPTZ NOT NULL,
            accepted   BIGINT NOT NULL,
            duplicates BIGINT NOT NULL,
            rejected   BIGINT NOT NULL,
            withheld   BIGINT NOT NULL,
            first_seq  BIGINT,
            last_seq   BIGINT,
            PRIMARY KEY (source, minute)
        )""",
        """INSERT INTO batches
           SELECT source, date_trunc('minute', started_at), sum(accepted), sum(duplicates),
                  sum(rejected), 0, min(lo), max(hi)
           FROM (SELECT i.*, CASE WHEN count(*) OVER (PARTITION BY i.source) = 1 THEN e.lo END AS lo,
                        CASE WHEN count(*) OVER (PARTITION BY i.source) = 1 THEN e.hi END AS hi
                 FROM ingests i LEFT JOIN (SELECT source, min(seq) AS lo, max(seq) AS hi
                                           FROM events GROUP BY source) e ON e.source = i.source)
           GROUP BY source, date_trunc('minute', started_at)
           ON CONFLICT DO NOTHING""",
    ),
    # The change playbook (store/changes.py) and the webhook deliveries of alerts
    # (store/deliveries.py): workspace records, no personal data.
    5: (
        """CREATE TABLE IF NOT EXISTS changes (
            change_id VARCHAR PRIMARY KEY,
            moment    VARCHAR NOT NULL,
            day       DATE NOT NULL,
            kind      VARCHAR NOT NULL,
            title     VARCHAR NOT NULL,
            experiment VARCHAR,
            note      VARCHAR,
            added_at  TIMESTAMPTZ NOT NULL,
            source    VARCHAR NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS deliveries (
            alert_id     VARCHAR NOT NULL,
            url          VARCHAR NOT NULL,
            status       VARCHAR NOT NULL,
            tries        INTEGER NOT NULL,
            answer       INTEGER,
            claimed_at   TIMESTAMPTZ NOT NULL,
            finished_at  TIMESTAMPTZ,
            PRIMARY KEY (alert_id, url)
        )""",
    ),
    # Moments' baselines frozen on request (store/baselines.py): workspace figures, no
    # personal data.
    6: (
        """CREATE TABLE IF NOT EXISTS baselines (
            moment    VARCHAR NOT NULL,
            frozen_at TIMESTAMPTZ NOT NULL,
            since     TIMESTAMPTZ NOT NULL,
            until     TIMESTAMPTZ NOT NULL,
            figures   JSON NOT NULL,
            PRIMARY KEY (moment, frozen_at)
        )""",
    ),
}


#: Log size that triggers a checkpoint (DuckDB's default is 16 MiB); see :func:`connect`.
CHECKPOINT_THRESHOLD = "256MiB"


def connect(path: str | os.PathLike[str], *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating and migrating if needed) the store at ``path``.

    The store is created ``0600`` in a folder created ``0700`` (:mod:`.private`). While
    another process holds it, this waits up to :func:`lock_wait` seconds (retrying with
    back-off), then raises :class:`WorkspaceError` (``workspace/locked``) naming that process.
    """
    path = Path(path)
    make_dir(path.parent)
    con = _open(path, read_only)
    con.execute("SET TimeZone = 'UTC'")
    # A refresh replaces a few thousand persons' rows scattered over every row group; a
    # checkpoint after each (the default, at 16 MiB of log) rewrote them all each time. The
    # collector's storing thread, too, stores events twice as fast with fewer, larger
    # checkpoints (docs/benchmarks.md, "HTTP ingest").
    con.execute("SET checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
    if not read_only:
        migrate(con)
        for own in (path, path.with_name(path.name + ".wal")):
            narrow(own, FILE_MODE)  # a store made by an earlier version may be wider
    return con


def lock_wait() -> float:
    """How long :func:`connect` waits for a store held by another process, in seconds:
    ``MICROJOURNEY_LOCK_WAIT`` (default :data:`LOCK_WAIT`; 0 fails at once)."""
    text = os.environ.get(LOCK_WAIT_VAR, "").strip()
    if not text:
        return LOCK_WAIT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise WorkspaceError(f"{LOCK_WAIT_VAR}={text!r} is not a number of seconds from 0 to 86400",
                             code="workspace/lock-wait")
    return seconds


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Connect, waiting with back-off while another process holds the store."""
    wait = lock_wait()
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        try:
            with narrow_umask():  # DuckDB creates the file with its own mode
                return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise WorkspaceError(_locked(path, str(exc), wait), code="workspace/locked") from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 1.0)


def _locked(path: Path, error: str, waited: float) -> str:
    """What to tell a user whose store another process holds: which process, what to do."""
    found = _PID.search(error)
    pid = int(found[1]) if found else None
    holder = f"process {pid}" if pid else "another process"
    try:  # the holder's command line says whether it is a server (Linux only)
        serving = pid is not None and "serve" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        serving = False
    advice = ("it is a server (`microjourney serve`): use its HTTP API meanwhile, or stop it"
              if serving else "if it is a server (`microjourney serve`), use its HTTP API or stop "
              "it; otherwise wait for that command to finish")
    return (f"the store {path} is held by {holder}; waited {waited:g} s ({LOCK_WAIT_VAR}) for it. "
            f"{advice[0].upper()}{advice[1:]}, then try again")


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    (has_meta,) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
    ).fetchall()[0]
    if not has_meta:
        return 0
    rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(rows[0][0]) if rows else 0


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction around the block: committed when it ends, rolled back if it raises."""
    con.execute("BEGIN")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring the store to :data:`SCHEMA_VERSION`, one transaction per step."""
    current = schema_version(con)
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with transaction(con):
            for statement in _MIGRATIONS[version]:
                con.execute(statement)
            set_meta(con, "schema_version", str(version))


def get_meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
    return rows[0][0] if rows else None


def set_meta(con: duckdb.DuckDBPyConnection, key: str, value: str) -> None:
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])


#: The largest ``seq`` ever given in ``events`` and in ``identities``, as SQL: the largest
#: stored, or larger when an erasure deleted the last rows (it keeps the mark in ``meta``).
#: New rows are numbered after it, so a number is never given twice and a refresh that
#: takes "the rows after the last it saw" never misses one (docs/privacy.md, "Erasure").
LAST_SEQ = {
    table: ("SELECT greatest(coalesce(max(seq), 0), coalesce((SELECT CAST(value AS BIGINT) "
            f"FROM meta WHERE key = 'seq:{table}'), 0)) FROM {table}")
    for table in ("events", "identities")
}


def keep_seq_mark(con: duckdb.DuckDBPyConnection) -> None:
    """Before rows are erased: remember each table's largest ``seq`` (:data:`LAST_SEQ`)."""
    for table, last in LAST_SEQ.items():
        con.execute("INSERT OR REPLACE INTO meta SELECT ?, CAST((" + last + ") AS VARCHAR)",
                    ["seq:" + table])


def start_workers_here(con: duckdb.DuckDBPyConnection) -> None:
    """Start the database's worker threads again from the calling thread, as many as before.

    On Linux a thread starts at its creator's CPU priority (its nice value), so the workers
    of a thread that lowered its own priority run below the threads that did not (the
    server's collector; docs/collector.md).
    """
    (threads,) = con.execute("SELECT current_setting('threads')").fetchone() or (1,)
    con.execute("SET threads = 1")
    con.execute("SET threads = ?", [int(threads)])
