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
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ..errors import WorkspaceError

SCHEMA_VERSION = 2

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
}


def connect(path: str | os.PathLike[str], *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating and migrating if needed) the store at ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        raise WorkspaceError(f"the store {path} is in use by another process; close it (or wait "
                             f"for it to finish) and try again ({str(exc).splitlines()[0]})",
                             code="workspace/locked") from None
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        migrate(con)
    return con


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
