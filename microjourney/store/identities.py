"""Identify and alias calls: stored once each, in one transaction per batch.

A call says who is who (docs/identity.md): ``identify`` ties an anonymous id to a user
id and may carry ``traits`` (where shared keys such as ``email`` or ``phone`` are
read); ``alias`` says that ``previous_id`` and ``user_id`` are the same person. Calls
are unique by ``call_id``: a retried call is counted as a duplicate and not stored
again, whether it is already stored or repeated within the batch. Values reach SQL
only as an Arrow table; nothing is formatted into the statement.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import IngestError
from .db import LAST_SEQ, transaction

__all__ = ["KINDS", "IdentityResult", "write_calls"]

#: The kinds of call, and the ids each needs (all of one group, or any of the other).
KINDS: tuple[str, ...] = ("identify", "alias")

_SCHEMA = pa.schema([
    ("call_id", pa.string()), ("pos", pa.int64()), ("kind", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")), ("anonymous_id", pa.string()),
    ("user_id", pa.string()), ("previous_id", pa.string()), ("traits", pa.string()),
])


@dataclass(frozen=True)
class IdentityResult:
    """What :func:`write_calls` did: calls stored, and calls already stored (or repeated)."""

    accepted: int
    duplicates: int
    #: The ids of the calls stored now.
    stored: frozenset[str] = frozenset()


def _text(call: Mapping[str, Any], name: str) -> str | None:
    value = call.get(name)
    if value is None:
        return None
    value = str(value)
    return value if value.strip() else None


def _row(i: int, call: Mapping[str, Any]) -> dict[str, Any]:
    """One call as a row, or an IngestError saying what it lacks."""
    call_id, kind = _text(call, "call_id"), call.get("kind")
    where = f"call {i + 1}" + (f" ({call_id})" if call_id else "")
    if call_id is None:
        raise ValueError(f"{where}: no call_id")
    if kind not in KINDS:
        raise ValueError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    anonymous_id, user_id = _text(call, "anonymous_id"), _text(call, "user_id")
    previous_id = _text(call, "previous_id")
    if kind == "identify" and anonymous_id is None and user_id is None:
        raise ValueError(f"{where}: an identify call needs a user_id or an anonymous_id")
    if kind == "alias" and (previous_id is None or user_id is None):
        raise ValueError(f"{where}: an alias call needs a previous_id and a user_id")
    ts = call.get("timestamp")
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{where}: timestamp must be a date-time with a time zone")
    traits = call.get("traits")
    if traits is not None and not isinstance(traits, Mapping):
        raise ValueError(f"{where}: traits must be an object")
    return {
        "call_id": call_id, "pos": i, "kind": kind, "timestamp": ts,
        "anonymous_id": anonymous_id, "user_id": user_id,
        "previous_id": previous_id if kind == "alias" else None,
        "traits": json.dumps(dict(traits), default=str, ensure_ascii=False)
        if traits and kind == "identify" else None,
    }


def write_calls(con: duckdb.DuckDBPyConnection, calls: Sequence[Mapping[str, Any]], *,
                source: str) -> IdentityResult:
    """Store identify/alias ``calls`` (dicts: call_id, kind, anonymous_id, user_id,
    previous_id, traits, timestamp) in one transaction; idempotent by ``call_id``.

    Raises :class:`IngestError` (code ``ingest/identity``; nothing stored) when a call
    lacks the ids its kind needs.
    """
    try:
        rows = [_row(i, c) for i, c in enumerate(calls)]
    except ValueError as exc:
        raise IngestError(str(exc), code="ingest/identity") from None
    if not rows:
        return IdentityResult(0, 0)
    batch = pa.Table.from_pylist(rows, schema=_SCHEMA)
    con.register("_calls", batch)
    try:
        with transaction(con):
            stored = frozenset(r[0] for r in con.execute(
                """INSERT INTO identities
                   SELECT call_id,
                          (""" + LAST_SEQ["identities"] + """) + row_number() OVER (ORDER BY pos),
                          kind, timestamp, anonymous_id, user_id, previous_id, CAST(traits AS JSON),
                          $source, now()
                   FROM (SELECT * FROM _calls c
                         WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.call_id = c.call_id)
                         QUALIFY row_number() OVER (PARTITION BY call_id ORDER BY pos) = 1)
                   RETURNING call_id""",
                {"source": source}).fetchall())
    finally:
        con.unregister("_calls")
    return IdentityResult(len(stored), len(rows) - len(stored), stored)
