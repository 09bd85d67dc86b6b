"""Validate raw rows and write them to the store: one transaction per batch.

Every reader hands over Arrow batches of raw rows (see :mod:`microjourney.ingest.schema`).
Here, in one SQL pass per batch (:mod:`microjourney.store.judge`), each row is typed and
checked; a bad row goes to ``quarantine`` (:mod:`microjourney.store.quarantine`, bounded)
with its row number, the field at fault and the reason; a good row without an ``event_id``
gets one derived from its content (and its occurrence, so two identical rows in one file
stay two events); rows whose ``event_id`` is already stored are counted as duplicates and
not written again. A committed batch is never lost when a later batch fails.

Privacy (docs/privacy.md): with ``consent_required``, a row whose context does not grant
analytics consent (:mod:`microjourney.store.consent`) is *withheld* before anything else —
neither stored nor quarantined, only counted (``BatchResult.withheld`` and the ``meta`` key
:data:`WITHHELD_KEY`). With ``scrub``, the properties and context that are stored, and the
raw rows that are quarantined, have e-mail addresses, phone numbers and card numbers
replaced (:mod:`microjourney.store.scrubbing`). Event ids derived from content hash the
text as given, so turning scrubbing on or off does not change them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ..ingest.readers import check_values
from ..ingest.schema import FUTURE_TOLERANCE, ROW
from .consent import consent_sql
from .db import LAST_SEQ, transaction
from .judge import NAIVE_HINT, checked_sql, field_json, judging_params, normal_json, quote_ident
from .quarantine import quarantine_sql, write_rejects
from .scrubbing import SCRUB_EXCEPT, Privacy, ensure_udf, scrubbed

#: ``meta`` key counting the events withheld for lack of consent, over all ingests.
WITHHELD_KEY = "consent_withheld"
#: Batches up to this many rows are judged into memory once before they are filtered.
_SMALL = 200_000


@dataclass(frozen=True)
class BatchResult:
    accepted: int
    duplicates: int
    rejected: int
    #: The rows found invalid, as (row, field, reason), ordered by row (``rejected`` counts
    #: those newly quarantined: a row quarantined before is listed but not counted again).
    rejects: tuple[tuple[int, str, str], ...] = ()
    #: Rows not stored (nor quarantined) for lack of analytics consent.
    withheld: int = 0


def _needs_ids(batch: pa.Table) -> bool:
    if "event_id" not in batch.schema.names:
        return True
    ids = batch.column("event_id")
    if ids.null_count:
        return True
    return pa.types.is_string(ids.type) and pc.any(pc.equal(ids, "")).as_py() is True


def write_batch(
    con: duckdb.DuckDBPyConnection,
    batch: pa.Table,
    *,
    source: str,
    channel: str = "other",
    timezone: str | None = None,
    dedupe: bool = True,
    consent_required: bool = False,
    scrub: bool = True,
    scrub_except: tuple[str, ...] = SCRUB_EXCEPT,
    json_text: bool = False,
    base_seq: int | None = None,
    naive_hint: str = NAIVE_HINT,
    future_tolerance: float = FUTURE_TOLERANCE,
    values: Mapping[str, Mapping[str, str]] | None = None,
) -> BatchResult:
    """Validate an Arrow ``batch`` of raw rows and store it in one transaction.

    ``dedupe=False``: the caller knows every row has an ``event_id`` that is neither stored
    nor repeated in the batch (the collector checks its own id index), so the rows are
    written in one pass without looking up the stored ids.

    ``consent_required``: withhold rows without ``context.consent.analytics: true``;
    ``scrub``: scrub personal data from properties, context (but ``scrub_except``, dotted
    paths such as ``context.traits``) and quarantined rows (docs/privacy.md).

    ``json_text``: ``properties`` and ``context`` are valid JSON texts (or NULL) in any
    layout, stored in DuckDB's normal form (:func:`normal_json`; JSON ``null`` is NULL), as
    the collector's fast road hands them over. ``base_seq``: the largest ``seq`` stored, when
    the caller keeps count (the collector), instead of asking the store each batch.
    ``naive_hint``: what the reason for a timestamp without an offset advises.
    ``future_tolerance``: how many seconds after its arrival a timestamp may lie
    (``ingest.future_tolerance``); ``values``: by field, values replaced before the rows are
    judged (``--value FIELD:FROM=TO``: ``{"channel": {"desktop": "web"}}``).
    """
    check_values(values or {})
    if ROW not in batch.schema.names:
        batch = batch.append_column(ROW, pa.array(range(1, batch.num_rows + 1), pa.int64()))
    con.register("raw", batch)
    try:
        # dedupe=False: the caller vouches for every id (the collector), so none is derived.
        derive = dedupe and _needs_ids(batch)
        return _write(con, batch.schema, derive, source=source, channel=channel,
                      timezone=timezone, dedupe=dedupe,
                      privacy=Privacy(consent_required, scrub, tuple(scrub_except)),
                      json_text=json_text, base_seq=base_seq, naive_hint=naive_hint,
                      rows=batch.num_rows, future_tolerance=future_tolerance, values=values)
    finally:
        con.unregister("raw")


def write_parquet(
    con: duckdb.DuckDBPyConnection,
    path: str,
    columns: list[tuple[str, str]],
    schema: pa.Schema,
    *,
    source: str,
    channel: str = "other",
    timezone: str | None = None,
    batch_rows: int = 2_000_000,
    progress: Callable[[int], None] | None = None,
    consent_required: bool = False,
    scrub: bool = True,
    scrub_except: tuple[str, ...] = SCRUB_EXCEPT,
    future_tolerance: float = FUTURE_TOLERANCE,
    values: Mapping[str, Mapping[str, str]] | None = None,
    on_rejects: Callable[[tuple[tuple[int, str, str], ...]], None] | None = None,
) -> BatchResult:
    """Store a Parquet file read by DuckDB itself (parallel, no copy through Python).

    ``columns`` pairs each file column with its name as a raw field (after ``--map``);
    ``schema`` is the renamed schema. The file is taken in slices of ``batch_rows``
    rows (DuckDB prunes row groups by row number), one transaction per slice. Privacy
    arguments, ``future_tolerance`` and ``values`` as for :func:`write_batch`.
    ``on_rejects`` is given each slice's invalid rows (``BatchResult.rejects``), which the
    result, summing the slices, leaves out.
    """
    check_values(values or {})
    privacy = Privacy(consent_required, scrub, tuple(scrub_except))
    con.read_parquet(path, file_row_number=True).create_view("_parquet", replace=True)
    select = ", ".join(f"{quote_ident(src)} AS {quote_ident(dst)}" for src, dst in columns)
    total = con.execute("SELECT count(*) FROM _parquet").fetchall()[0][0]
    # One look at the whole file: when every id is present, unique in the file and not yet
    # stored, the slices need no duplicate checks and each row is written in one pass.
    id_col = next((src for src, dst in columns if dst == "event_id"), None)
    clean = False
    if id_col is not None:
        col = quote_ident(id_col)
        present, distinct = con.execute(
            f"SELECT count({col}), count(DISTINCT {col}) FROM _parquet WHERE {col} <> ''").fetchall()[0]
        clean = present == total == distinct and not con.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM events e JOIN _parquet p ON e.event_id = p.{col} "
            "LIMIT 1)").fetchall()[0][0]
    result = BatchResult(0, 0, 0)
    try:
        for start in range(0, total, batch_rows):
            # Bounds are integers computed here, never text from the file.
            con.execute(f"""CREATE OR REPLACE TEMP VIEW raw AS
                SELECT {select}, file_row_number + 1 AS {ROW} FROM _parquet
                WHERE file_row_number >= {int(start)} AND file_row_number < {int(start + batch_rows)}""")
            needs = not clean and ("event_id" not in schema.names or con.execute(
                "SELECT count(*) FROM raw WHERE event_id IS NULL OR CAST(event_id AS VARCHAR) = ''"
            ).fetchall()[0][0] > 0)
            r = _write(con, schema, needs, source=source, channel=channel, timezone=timezone,
                       dedupe=not clean, privacy=privacy, future_tolerance=future_tolerance,
                       values=values)
            if on_rejects and r.rejects:
                on_rejects(r.rejects)
            result = BatchResult(result.accepted + r.accepted, result.duplicates + r.duplicates,
                                 result.rejected + r.rejected, withheld=result.withheld + r.withheld)
            if progress:
                progress(min(batch_rows, total - start))
    finally:
        con.execute("DROP VIEW IF EXISTS raw")
        con.execute("DROP VIEW IF EXISTS _parquet")
    return result


def _consented(schema: pa.Schema) -> str:
    """SQL: the raw row ``r`` carries ``context.consent.analytics: true``."""
    return consent_sql(field_json(schema, "context"))


def _write(con: duckdb.DuckDBPyConnection, schema: pa.Schema, derive_ids: bool, *, source: str,
           channel: str, timezone: str | None, dedupe: bool = True,
           privacy: Privacy = Privacy(), json_text: bool = False,
           base_seq: int | None = None, naive_hint: str = NAIVE_HINT,
           rows: int | None = None, future_tolerance: float = FUTURE_TOLERANCE,
           values: Mapping[str, Mapping[str, str]] | None = None) -> BatchResult:
    """Validate the rows of the relation ``raw`` and store them in one transaction.

    ``dedupe=False`` says the caller knows no id of ``raw`` is stored or repeated;
    ``json_text``, ``base_seq``, ``future_tolerance``, ``values``: see :func:`write_batch`;
    ``rows``: how many rows ``raw`` has, when the caller knows (else counted).
    """
    if privacy.scrub:
        ensure_udf(con)
    rel, withheld = "raw", 0
    if privacy.consent_required:
        # A table, not a view: the consent rule parses each context several times over, and
        # the writer reads its relation more than once (counts, stored ids, judging, quarantine).
        rel = "_consented"
        total = rows if rows is not None else con.execute("SELECT count(*) FROM raw").fetchall()[0][0]
        rows = con.execute(f"CREATE OR REPLACE TEMP TABLE {rel} AS "
                           f"SELECT * FROM raw r WHERE {_consented(schema)}").fetchall()[0][0]
        withheld = total - rows
    sql, extra_names = checked_sql(schema, derive_ids=derive_ids, rel=rel, given_json=json_text,
                                   values=values)
    params = judging_params(timezone=timezone, channel=channel, naive_hint=naive_hint,
                            future_tolerance=future_tolerance, values=values)
    params.update({f"k{i}": n for i, n in enumerate(extra_names)})
    try:
        with transaction(con):
            if withheld and withheld == total:
                result = BatchResult(0, 0, 0)
            elif derive_ids:
                result = _write_checked(con, sql, params, source, rel=rel, privacy=privacy,
                                        base_seq=base_seq)
            else:
                result = _write_direct(con, sql, params, source, dedupe=dedupe, rel=rel,
                                       privacy=privacy, base_seq=base_seq, rows=rows)
            if withheld:
                count_withheld(con, withheld)
                result = replace(result, withheld=withheld)
    finally:
        if rel != "raw":
            con.execute(f"DROP TABLE IF EXISTS {rel}")
    return result


def _quarantine(con: duckdb.DuckDBPyConnection, bad: str, source: str, *, rel: str = "raw",
                privacy: Privacy = Privacy()) -> int:
    """Insert the rows of table ``bad`` (row, field, reason) into quarantine, once each
    (:func:`~microjourney.store.quarantine.quarantine_sql`)."""
    values: dict[str, object] = {"source": source}
    return con.execute(quarantine_sql(bad, rel, privacy, values), values).fetchall()[0][0]


def _insert(con: duckdb.DuckDBPyConnection, rows: str, params: dict[str, object], source: str,
            *, seen: bool, once: bool, privacy: Privacy = Privacy(), judged: str | None = None,
            base_seq: int | None = None) -> int:
    """Insert the valid rows of ``rows``; ``seen``: skip ids in ``_seen``; ``once``: first of equal ids;
    ``base_seq``: the largest stored ``seq`` (None: asked of the store).

    ``judged``: a query whose rows ``rows`` names, computed once (a materialised CTE) before
    the rows are filtered. DuckDB otherwise folds the judging expressions into the filter and
    evaluates the timestamp and JSON checks again for the output (2.9 against 1.3 µs a row).
    """
    base = con.execute(LAST_SEQ["events"]).fetchall()[0][0] if base_seq is None else base_seq
    filters = "field IS NULL" + (" AND id NOT IN (SELECT id FROM _seen)" if seen else "")
    qualify = "QUALIFY row_number() OVER (PARTITION BY id ORDER BY row) = 1" if once else ""
    params = {**params, "base": base, "source": source}
    properties = scrubbed("properties", "properties", privacy, params)
    context = scrubbed("context", "context", privacy, params)
    # Row numbers are increasing within a file, so base + row keeps the source order.
    cte = f"WITH {rows} AS MATERIALIZED ({judged}) " if judged else ""
    return con.execute(
        f"""INSERT INTO events {cte}
           SELECT id, $base + row, ts, event, anonymous_id, user_id, channel, session_id,
                  {properties}, {context}, $source
           FROM {rows} WHERE {filters} {qualify}""",
        params,
    ).fetchall()[0][0]


def _stored(con: duckdb.DuckDBPyConnection, ids: str) -> bool:
    """Put into ``_seen`` the ids of ``ids`` (a query with an ``id`` column) already stored."""
    if not con.execute("SELECT count(*) FROM (SELECT 1 FROM events LIMIT 1)").fetchall()[0][0]:
        return False
    # An inner join lets DuckDB hash the batch and stream the stored ids past it, instead
    # of hashing every stored id again for each batch.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _seen AS
                    SELECT DISTINCT c.id FROM events e JOIN ({ids}) c ON e.event_id = c.id""")
    return con.execute("SELECT count(*) FROM _seen").fetchall()[0][0] > 0


def _write_direct(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object],
                  source: str, *, dedupe: bool, rel: str = "raw",
                  privacy: Privacy = Privacy(), base_seq: int | None = None,
                  rows: int | None = None) -> BatchResult:
    """Every row has an id: validate and insert in one pass (each row written once).
    ``rows``: how many rows ``rel`` has, when known."""
    if dedupe:
        total, distinct = con.execute(
            f"SELECT count(*), count(DISTINCT event_id) FROM {rel}").fetchall()[0]
        seen = _stored(con, f"SELECT event_id AS id FROM {rel}")
    else:  # the collector's group commit: every statement saved counts
        total = rows if rows is not None else con.execute(f"SELECT count(*) FROM {rel}").fetchall()[0][0]
        distinct, seen = total, False
    # Small batches (the collector's groups) are judged once into memory, then filtered; large
    # ones (file slices) stream through the filter without holding every judged row.
    small = total <= _SMALL
    accepted = _insert(con, "_judged" if small else f"({sql})", params, source, seen=seen,
                       once=distinct < total, privacy=privacy, judged=sql if small else None,
                       base_seq=base_seq)
    invalid = rejected = 0
    if accepted < total:  # duplicates or bad rows: find the bad ones (a second pass, rarely)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _bad AS
                        SELECT row, field, reason FROM ({sql}) WHERE field IS NOT NULL""", params)
        rejects = _rejects(con, "_bad")
        invalid = len(rejects)
        rejected = _quarantine(con, "_bad", source, rel=rel, privacy=privacy)
        con.execute("DROP TABLE _bad")
    if dedupe:
        con.execute("DROP TABLE IF EXISTS _seen")
    return BatchResult(accepted=accepted, duplicates=total - accepted - invalid, rejected=rejected,
                       rejects=rejects if invalid else ())


def _write_checked(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object],
                   source: str, *, rel: str = "raw", privacy: Privacy = Privacy(),
                   base_seq: int | None = None) -> BatchResult:
    """Ids derive from validated content: validate once into a table, then insert."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _checked AS {sql}", params)
    rejected = _quarantine(con, "_checked", source, rel=rel, privacy=privacy)
    rejects = _rejects(con, "_checked")
    valid, distinct = con.execute(
        "SELECT count(*), count(DISTINCT id) FROM _checked WHERE field IS NULL").fetchall()[0]
    seen = _stored(con, "SELECT id FROM _checked WHERE field IS NULL")
    accepted = _insert(con, "_checked", {}, source, seen=seen, once=valid > distinct, privacy=privacy,
                       base_seq=base_seq)
    con.execute("DROP TABLE IF EXISTS _seen")
    con.execute("DROP TABLE _checked")
    return BatchResult(accepted=accepted, duplicates=valid - accepted, rejected=rejected,
                       rejects=rejects)


def write_plain(con: duckdb.DuckDBPyConnection, rows: pa.Table, *, source: str, scrub: bool = True,
                scrub_except: tuple[str, ...] = SCRUB_EXCEPT) -> int:
    """Store rows judged and typed by the caller (the collector's plain road,
    :func:`microjourney.server.calls.plain_rows`), with the ``seq`` the caller gave each, in
    one statement, its own transaction. ``properties`` and ``context`` (JSON text) are put in
    normal form and scrubbed as :func:`write_batch` does, so the stored rows are the ones it
    would store. Every row is stored: the caller vouches that none is invalid, stored
    or repeated. Returns the number stored.
    """
    privacy = Privacy(False, scrub, tuple(scrub_except))
    if privacy.scrub:
        ensure_udf(con)
    params: dict[str, object] = {"source": source}
    properties = scrubbed("properties", "properties", privacy, params)
    context = scrubbed("context", "context", privacy, params)
    # One chunk: DuckDB scans a table of many small chunks (one per request) much slower.
    con.register("_plain", rows.combine_chunks())
    try:
        # One statement: planning is most of its cost at the sizes of a group commit.
        return con.execute(
            f"""INSERT INTO events
               SELECT event_id, seq, timestamp, event, anonymous_id,
                      user_id, channel, session_id, {properties}, {context}, $source
               FROM (SELECT * REPLACE ({normal_json("properties")} AS properties,
                                       {normal_json("context")} AS context) FROM _plain)""",
            params,
        ).fetchall()[0][0]
    finally:
        con.unregister("_plain")


def count_withheld(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """Add ``n`` events withheld for lack of consent to the running total in ``meta``."""
    con.execute(f"""INSERT INTO meta VALUES ('{WITHHELD_KEY}', CAST($n AS VARCHAR))
                    ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + $n
                    AS VARCHAR)""", {"n": n})


def _rejects(con: duckdb.DuckDBPyConnection, bad: str) -> tuple[tuple[int, str, str], ...]:
    """(row, field, reason) of the invalid rows of table ``bad``."""
    return tuple(con.execute(
        f"SELECT row, field, reason FROM {bad} WHERE field IS NOT NULL ORDER BY row").fetchall())


__all__ = ["NAIVE_HINT", "SCRUB_EXCEPT", "WITHHELD_KEY", "BatchResult", "count_withheld",
           "normal_json", "quote_ident", "write_batch", "write_parquet", "write_plain", "write_rejects"]
