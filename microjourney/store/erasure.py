"""Erasure (the right to be forgotten): remove every stored row carrying a person's
identifiers, in one transaction, and log the erasure without personal data.

The caller (the workspace, which knows who is who) gives the person's identifiers as
``(kind, identifier, norm)`` rows: kind ``id`` for user and anonymous ids, else the
shared key's name with the normalisation of its values (``email``, ``phone``,
``text``; see :mod:`microjourney.identity`). They are loaded as an Arrow table into the
temporary table ``_forget``; each table in :data:`ERASABLE` names the SQL condition
selecting its rows that carry one of them. **Adding a table that holds personal data
is one line there.** Derived tables lose the rows of the person by the column their
declaration names (:mod:`microjourney.engine.derived`; the caller gives them).

The log (``erasures``) keeps an erasure id, the time and the rows removed per table.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from .db import keep_seq_mark, transaction
from .writer import quote_ident

__all__ = ["ERASABLE", "ErasureResult", "erase", "id_norm"]


#: The characters trimmed from ids and key values: those Ibis's ``strip()`` trims, as
#: :func:`microjourney.identity.normalise` and :func:`~microjourney.identity.id_node` do
#: (space, tab, newlines, vertical tab, form feed); ``tests/test_identity.py`` holds them equal.
_SPACE = "' \t\n\r' || chr(11) || chr(12)"


def id_norm(value: str) -> str:
    """SQL: the id ``value`` as it links (the twin of :func:`microjourney.identity.id_node`):
    trimmed, unless nothing but spaces is left."""
    return f"coalesce(nullif(trim({value}, {_SPACE}), ''), {value})"


def _norm(value: str) -> str:
    """``value`` normalised as the identifier's key says (the SQL twin of
    :func:`microjourney.identity.normalise`)."""
    return (f"nullif(CASE f.norm WHEN 'email' THEN lower(trim({value}, {_SPACE})) "
            f"WHEN 'phone' THEN regexp_replace({value}, '[^0-9]', '', 'g') "
            f"ELSE trim({value}, {_SPACE}) END, '')")


def _key(doc: str, under: str | None = "traits") -> str:
    """``doc`` (JSON text) holds, as ``[under.]<key>``, one of the key values to forget."""
    # A JSON Pointer (/traits/<key>, ~1 for /, ~0 for ~): any key name works.
    path = ("'/" + (under + "/" if under else "")
            + "' || replace(replace(f.kind, '~', '~0'), '/', '~1')")
    value = f"CASE WHEN json_valid({doc}) THEN json_extract_string({doc}, {path}) END"
    return f"(f.kind <> 'id' AND f.identifier = {_norm(value)})"


def _ids(*columns: str) -> str:
    """One of ``columns`` holds an id to forget, compared as linking compares ids."""
    return "(f.kind = 'id' AND f.id IN (" + ", ".join(id_norm(c) for c in columns) + "))"


def _carries(*conditions: str) -> str:
    return "EXISTS (SELECT 1 FROM _forget f WHERE " + " OR ".join(conditions) + ")"


_RAW = "CAST(raw AS VARCHAR)"
_RAW_CONTEXT = "json_extract_string(raw, '$.context')"
_JSON_ID = "CAST(to_json(f.identifier) AS VARCHAR)"
_JSON_JSON_ID = f"CAST(to_json({_JSON_ID}) AS VARCHAR)"
# Blanks around an id inside a JSON string of the raw text: whitespace, or its escapes
# (``\t``, ``\n``..., doubled when the raw line is kept as a JSON string).
_BLANKS = "'(?:\\s|\\\\+[tnrfv]|\\\\+u00(?:0[9abcd]|20))*'"
_PADDED_ID = (f"regexp_matches({_RAW}, '\\\\*\"' || {_BLANKS} || regexp_escape(f.id) || {_BLANKS} "
              "|| '\\\\*\"')")

#: Each table holding personal data, with the condition selecting the rows that carry an
#: identifier of ``_forget`` (``f``). Ids are compared trimmed, as linking compares them
#: (``f.id``), so an id stored with spaces around it goes with the person. Quarantined rows
#: are raw: their id fields, the key values in their context or traits, and any id (with
#: blanks around it or not) or e-mail written anywhere in them as a JSON string.
ERASABLE: dict[str, str] = {
    "events": _carries(_ids("anonymous_id", "user_id"), _key("CAST(context AS VARCHAR)")),
    "identities": _carries(_ids("anonymous_id", "user_id", "previous_id"),
                           _key("CAST(traits AS VARCHAR)", None)),
    "quarantine": _carries(
        _ids("raw->>'anonymous_id'", "raw->>'user_id'", "raw->>'previous_id'"),
        _key(_RAW_CONTEXT), _key("json_extract_string(raw, '$.traits')", None),
        # The id as a JSON string, or as one inside a JSON string (a raw line kept as text).
        f"(f.kind = 'id' AND (contains({_RAW}, {_JSON_ID}) OR contains({_RAW}, "
        f"substring({_JSON_JSON_ID}, 2, length({_JSON_JSON_ID}) - 2)) OR {_PADDED_ID}))",
        f"(f.norm = 'email' AND contains(lower({_RAW}), f.identifier))"),
}


@dataclass(frozen=True)
class ErasureResult:
    """One erasure: its id, time and the rows removed per table (no personal data)."""

    erasure_id: str
    erased_at: datetime
    counts: dict[str, int] = field(default_factory=dict)
    #: Rows removed from each derived table (the rest is refreshed on the next analysis).
    derived: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


_FORGET = pa.schema([("kind", pa.string()), ("identifier", pa.string()), ("norm", pa.string())])


def erase(con: duckdb.DuckDBPyConnection, identifiers: Iterable[tuple[str, str, str | None]], *,
          derived: Mapping[str, tuple[str, Sequence[str]]] | None = None) -> ErasureResult:
    """Delete the rows carrying ``identifiers`` from every table of :data:`ERASABLE` the
    store has, and from each ``derived`` table (name → (column, values)) the rows whose
    column holds one of the values; log the erasure; one transaction, then a checkpoint
    (deleted rows leave the write-ahead log and the file's live blocks)."""
    forget = pa.Table.from_pylist(
        [{"kind": k, "identifier": i, "norm": n} for k, i, n in identifiers], schema=_FORGET)
    present = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    ).fetchall()}
    counts: dict[str, int] = {}
    con.register("_forget_rows", forget)
    try:
        with transaction(con):
            keep_seq_mark(con)  # numbers of erased rows are never given again
            # ``id``: an id as it links (trimmed), what every table's condition compares.
            con.execute("CREATE OR REPLACE TEMP TABLE _forget AS SELECT *, CASE kind WHEN 'id' "
                        "THEN " + id_norm("identifier") + " END AS id FROM _forget_rows")
            # Statements are built from the constants above and quoted table names only.
            for table, condition in ERASABLE.items():
                if table in present:
                    delete = "DELETE FROM " + quote_ident(table) + " WHERE " + condition
                    counts[table] = int(con.execute(delete).fetchall()[0][0])
            removed: dict[str, int] = {}
            for table, (column, values) in (derived or {}).items():
                if table in present:
                    delete = ("DELETE FROM " + quote_ident(table) + " WHERE list_contains(?, "
                              + quote_ident(column) + ")")
                    removed[table] = int(con.execute(delete, [list(values)]).fetchall()[0][0])
            erasure_id, at = uuid.uuid4().hex, datetime.now(UTC)
            con.execute("INSERT INTO erasures VALUES (?, ?, ?)", [erasure_id, at, json.dumps(counts)])
            con.execute("DROP TABLE _forget")
    finally:
        con.unregister("_forget_rows")
    con.execute("CHECKPOINT")
    return ErasureResult(erasure_id, at, counts, removed)
