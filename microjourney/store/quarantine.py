"""The quarantine: rows that could not be accepted, with where they came from and why.

Two kinds of row land here: rows read but judged bad by the writer (their ``raw`` is the
row as a JSON object of its raw fields), and lines a reader or the collector could not read
as a row at all (their ``raw`` is ``{"text": ...}``, the line as text). ``raw`` is always a
JSON *object*, never a bare JSON string: readers of the table (Ibis, pandas) parse a string
value again, and a line of deeply nested brackets then overflowed their stack. ``raw`` is
also bounded: past :data:`RAW_CHARS` characters it is kept as ``{"text": ...}`` cut to that
length, and the reason gives the full length. Scrubbing happens before the cut, so a cut
never leaves half an e-mail address unscrubbed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from ..ingest.lines import Reject
from ..ingest.scrub import scrub_text
from .db import transaction
from .scrubbing import Privacy, scrubbed

#: The most characters of a quarantined row kept in ``raw``.
RAW_CHARS = 4096


def _noted(reason: str, size: str) -> str:
    """SQL: ``reason``, saying the raw text was cut when its length ``size`` is over
    ``$raw_chars`` (bound to :data:`RAW_CHARS`)."""
    return (f"{reason} || CASE WHEN {size} > $raw_chars THEN '; the raw row (' "
            f"|| format('{{:,}}', {size}) || ' characters) is kept cut to its first ' "
            f"|| format('{{:,}}', $raw_chars) ELSE '' END")


def quarantine_sql(bad: str, rel: str, privacy: Privacy, params: dict[str, object]) -> str:
    """SQL inserting the rows of table ``bad`` (row, field, reason) into quarantine, once
    each, with their raw row from ``rel`` scrubbed as a whole (identifiers and traits too)
    and bounded. Adds its values to ``params`` (``$source`` is the caller's)."""
    params.update(now=datetime.now(UTC), raw_chars=RAW_CHARS)
    raw = scrubbed("CAST(to_json(r) AS VARCHAR)", "raw", privacy, params)
    return f"""INSERT INTO quarantine
           SELECT $source, row, field, {_noted("reason", "size")}, kept, $now
           FROM (
             SELECT *, CASE WHEN size > $raw_chars THEN json_object('text', left(raw, $raw_chars))
                            ELSE CAST(raw AS JSON) END AS kept
             FROM (SELECT *, length(raw) AS size FROM (
               SELECT c.row, c.field, c.reason, {raw} AS raw
               FROM {bad} c JOIN {rel} r ON r.__row = c.row WHERE c.field IS NOT NULL))) x
           WHERE NOT EXISTS (
             SELECT 1 FROM quarantine q WHERE q.source = $source AND q.row = x.row AND q.raw = x.kept)"""


#: Moves the readers' rejects from ``_rejects`` into quarantine, cut and noted, once each.
_INSERT_REJECTS = f"""INSERT INTO quarantine
    SELECT * FROM (
      SELECT source, row, field, {_noted("reason", "coalesce(length(raw), 0)")},
             CASE WHEN raw IS NOT NULL THEN json_object('text', left(raw, $raw_chars)) END,
             received_at
      FROM _rejects) x (source, row, field, reason, raw, received_at)
    WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.source = x.source
                      AND q.row = x.row AND q.raw IS NOT DISTINCT FROM x.raw)"""


def write_rejects(con: duckdb.DuckDBPyConnection, rejects: list[Reject], *, source: str,
                  consent_required: bool = False, scrub: bool = True) -> int:
    """Quarantine rows a reader could not parse (``Reject`` records); idempotent.

    ``scrub``: the raw text is scrubbed as text; ``consent_required``: a row that could not be
    read has no consent that can be read, so only its number and reason are kept (no raw text).
    The text is kept as ``{"text": ...}``, cut to :data:`RAW_CHARS` (the reason says so).
    """
    if not rejects:
        return 0
    now = datetime.now(UTC)

    def raw(text: str | None) -> str | None:
        if consent_required or text is None:
            return None
        return scrub_text(text) if scrub else text

    rows = [(source, r.row, r.field, r.reason, raw(r.raw), now) for r in rejects]
    with transaction(con):
        con.execute("CREATE OR REPLACE TEMP TABLE _rejects (source VARCHAR, row BIGINT, field VARCHAR, "
                    "reason VARCHAR, raw VARCHAR, received_at TIMESTAMPTZ)")
        con.executemany("INSERT INTO _rejects VALUES (?, ?, ?, ?, ?, ?)", rows)
        n = con.execute(_INSERT_REJECTS, {"raw_chars": RAW_CHARS}).fetchall()[0][0]
        con.execute("DROP TABLE _rejects")
    return n


def clear(con: duckdb.DuckDBPyConnection, source: str | None = None) -> int:
    """Delete the quarantined rows, all or those of ``source`` (exactly as the ``source``
    column has it: a file's name); returns how many were deleted."""
    return con.execute("DELETE FROM quarantine WHERE $source IS NULL OR source = $source",
                       {"source": source}).fetchall()[0][0]
