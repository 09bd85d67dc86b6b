"""The collector's DuckDB road: bodies that are not the fast road's, taken apart at once.

Every body the fast road does not take (:func:`.calls.track_calls`) is read once by
orjson, the parser file ingest uses, so that a body is JSON on both paths alike (nesting
deeper than 1,024 levels, a lone surrogate, a number too large for a double are not);
then the bodies of a group are taken apart in DuckDB (:data:`.calls.CALLS`): calls that
are not objects of a known type are rejected here, identify and alias calls are checked
(:func:`.calls.identity_row`) and stored through the identity store, and the rows of track
and page calls are returned for the writer.

Consent (:func:`consented`) is decided for every call type by the one rule of
:func:`~microjourney.store.consent.consent_sql`, given the context as file ingest gives it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from ..ingest.lines import Reject
from ..ingest.readers import json_row
from ..ingest.schema import FUTURE_TOLERANCE
from ..store.consent import consent_sql
from ..store.writer import count_withheld
from .calls import CALLS, EVENT_FIELDS, EVENTS, PROBLEMS, TYPES, id_hashes, identity_row
from .jobs import Job
from .storing import SOURCE

#: The raw rows :meth:`.Collector._events` takes.
EVENT_ROWS = ["req", "idx", *EVENT_FIELDS, "h"]


def file_context(value: Any) -> str | None:
    """A call's ``context`` (a parsed JSON value) as file ingest hands it to the consent
    rule (``ingest.readers``: an object as its JSON text, a string as itself), so that the
    same context gets the same verdict on both paths."""
    return json_row({"context": value}).get("context")


def file_contexts(texts: Sequence[bytes | str | None]) -> list[str | None]:
    """:func:`file_context` of JSON texts as received (None, or text that does not parse,
    grants nothing)."""
    out: list[str | None] = []
    for text in texts:
        try:
            out.append(None if text is None else file_context(orjson.loads(text)))
        except ValueError:  # not JSON, or nested too deep to write back: no consent to read
            out.append(None)
    return out


def consented(con: duckdb.DuckDBPyConnection, contexts: list[str | None]) -> np.ndarray:
    """Which of ``contexts`` (as :func:`file_context` gives them) grant analytics consent,
    by the rule every ingest path uses."""
    con.register("_http_contexts", pa.table({"context": pa.array(contexts, pa.string())}))
    try:
        return con.sql(f"SELECT {consent_sql('context')} AS ok FROM _http_contexts") \
            .to_arrow_table().column("ok").to_numpy(zero_copy_only=False).astype(bool)
    finally:
        con.unregister("_http_contexts")


def take_apart(con: duckdb.DuckDBPyConnection, jobs: list[Job], slow: list[int], *,
               identities: Callable[..., Any], consent: bool,
               future_tolerance: float = FUTURE_TOLERANCE) -> tuple[list[Reject], pa.Table]:
    """The bodies of ``jobs[slow]`` taken apart in DuckDB: odd and identity calls checked
    (their rejects returned for quarantine, identity calls stored, or withheld without
    ``consent`` when it is required) and the event rows of their track and page calls
    (in :data:`EVENT_ROWS` order); ``future_tolerance``: see :func:`.calls.identity_row`."""
    readable = []
    for req in slow:
        try:
            orjson.loads(jobs[req].body)
        except orjson.JSONDecodeError as exc:  # the message says where, never what
            jobs[req].problem, jobs[req].detail = "json", str(exc)
            continue
        readable.append(req)
    bodies = pa.table({"req": pa.array(readable, pa.int32()),
                       "body": pa.array([jobs[r].body.decode() for r in readable], pa.string())})
    con.register("_http_bodies", bodies)
    try:
        for req, problem in con.execute(PROBLEMS).fetchall():
            jobs[req].problem = problem
        con.register("_http_calls", con.sql(CALLS).to_arrow_table())
    finally:
        con.unregister("_http_bodies")
    try:
        quarantine = _odd_calls(con, jobs) + _identity_calls(con, jobs, identities, consent,
                                                             future_tolerance)
        rows = con.sql(EVENTS).to_arrow_table()
    finally:
        con.unregister("_http_calls")
    rows = rows.append_column("h", pa.array(id_hashes(rows.column("event_id").to_pylist())))
    return quarantine, rows.select(EVENT_ROWS)


def _odd_calls(con: duckdb.DuckDBPyConnection, jobs: list[Job]) -> list[Reject]:
    """Calls that are not objects of a known type: rejected here."""
    out = []
    types = ", ".join(TYPES)
    for req, idx, call, shape, kind in con.execute(
            "SELECT req, idx, CAST(call AS VARCHAR), shape, type FROM _http_calls WHERE shape <> "
            "'OBJECT' OR type NOT IN ('track', 'page', 'identify', 'alias') ORDER BY req, idx"
    ).fetchall():
        name, reason = ((None, "a call is not a JSON object") if shape != "OBJECT" else
                        ("type", f"unknown call type {kind!r}; allowed: {types}"))
        jobs[req].reject(idx, name, reason)
        out.append(Reject(row=idx + 1, reason=reason, raw=call, field=name))
    return out


def _identity_calls(con: duckdb.DuckDBPyConnection, jobs: list[Job], identities: Callable[..., Any],
                    consent: bool, future_tolerance: float) -> list[Reject]:
    """Identify and alias calls (few): withheld without consent when it is required (as
    events are: before they are judged), checked here, stored by the identity store."""
    calls = [(req, idx, text, orjson.loads(text)) for req, idx, text in con.execute(
        "SELECT req, idx, CAST(call AS VARCHAR) FROM _http_calls "
        "WHERE type IN ('identify', 'alias') ORDER BY req, idx").fetchall()]
    if consent and calls:
        ok = consented(con, [file_context(call.get("context")) for *_, call in calls])
        for (req, *_), yes in zip(calls, ok, strict=True):
            if not yes:
                jobs[req].withheld += 1
        if not ok.all():
            count_withheld(con, int((~ok).sum()))
            calls = [c for c, yes in zip(calls, ok, strict=True) if yes]
    rows, owners, out = [], [], []
    for req, idx, text, call in calls:
        row, name, reason = identity_row(call, future_tolerance=future_tolerance)
        if row is None:
            jobs[req].reject(idx, name, reason)
            out.append(Reject(row=idx + 1, reason=reason, raw=text, field=name))
        else:
            rows.append(row)
            owners.append(jobs[req])
    if rows:
        new = set(identities(con, rows, source=SOURCE).stored)
        for row, job in zip(rows, owners, strict=True):
            if row["call_id"] in new:  # the first of the group with an id stored now
                job.accepted += 1
                new.discard(row["call_id"])
            else:  # a retry: stored before, or earlier in this group
                job.duplicates += 1
    return out
