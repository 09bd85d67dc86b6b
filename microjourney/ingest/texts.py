"""Customer texts (search queries, help-centre searches, chat messages, agent notes) from a
CSV or JSON Lines file as ``customer_text`` events, one per row (docs/intents.md,
"Customer texts").

Like survey answers (:mod:`.responses`), texts travel as events, so consent, scrubbing
(e-mail addresses, phone and card numbers are replaced on the way in), erasure, the lake
and Spark carry them. A blank text is no text; a text longer than :data:`MAX_TEXT`
characters is a reject with its row and column. Event ids come from the text's own id (or
the file and row), so importing a file twice stores it once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from ..errors import IngestError
from ..vocabulary import TEXT_SOURCES
from .lines import Reject
from .responses import parse_time, rows_of
from .schema import ROW

__all__ = ["MAX_TEXT", "SOURCES", "TEXT", "TextColumns", "text_events"]

TEXT = "customer_text"
#: Where texts come from (``--source``).
SOURCES = TEXT_SOURCES
#: Characters of one text.
MAX_TEXT = 5_000


@dataclass(frozen=True)
class TextColumns:
    """Which columns hold what: ``text``; ``time`` (when it was written; None: the time of
    the import) with its ``time_format``; ``person`` (the customer's user id; None: an
    anonymous writer per row); ``ident`` (the text's own id); ``channel`` (a column naming
    each text's channel; None: the import's channel); ``source`` (a column naming each
    text's source, one of :data:`SOURCES`; None: the import's)."""

    text: str
    time: str | None = None
    time_format: str | None = None
    person: str | None = None
    ident: str | None = None
    channel: str | None = None
    source: str | None = None

    def needed(self) -> list[str]:
        named = [self.text, self.time, self.person, self.ident, self.channel, self.source]
        return list(dict.fromkeys(c for c in named if c))

    def check(self, columns: list[str], path: str) -> None:
        """An ``IngestError`` naming a column the file does not have."""
        missing = [c for c in self.needed() if c not in columns]
        if missing:
            raise IngestError(f"{path} has no column {missing[0]!r}; columns: "
                              f"{', '.join(c for c in columns if c != ROW)}", code="ingest/mapping")


def _event_id(source: str, ident: str) -> str:
    return "text-" + hashlib.sha256(f"{source}\x1f{ident}".encode()).hexdigest()[:32]


def text_events(table: pa.Table, cols: TextColumns, *, source: str, kind: str, channel: str,
                file: str, now: datetime) -> tuple[pa.Table, list[Reject]]:
    """Raw ``customer_text`` event rows from a batch of a file's rows, and the rejects;
    ``kind``: where the texts come from (:data:`SOURCES`)."""
    out: dict[str, list[Any]] = {k: [] for k in (
        "event_id", "timestamp", "event", "user_id", "anonymous_id", "channel", ROW, "text",
        "source", "text_id")}
    rejects: list[Reject] = []
    for cells in rows_of(table):
        row = int(cells.get(ROW) or 0)
        raw = orjson.dumps({c: cells.get(c) for c in cols.needed()}, default=str).decode()
        text = str(cells.get(cols.text) or "").strip()
        if not text:
            continue
        if len(text) > MAX_TEXT:
            rejects.append(Reject(row, f"row {row}: {cols.text}: a text of {len(text):,} characters; "
                                  f"at most {MAX_TEXT:,}", raw, cols.text))
            continue
        stamp: str | None = now.isoformat()
        if cols.time:
            when = str(cells.get(cols.time) or "").strip()
            try:
                stamp = parse_time(when, cols.time_format) if when else None
            except ValueError as exc:
                rejects.append(Reject(row, f"row {row}: {cols.time}: {exc}", raw, "timestamp"))
                continue
        named = str(cells.get(cols.source) or "").strip() if cols.source else ""
        if named and named not in SOURCES:
            rejects.append(Reject(row, f"row {row}: {cols.source}: unknown source {named[:40]!r}; "
                                  f"sources: {', '.join(SOURCES)}", raw, cols.source))
            continue
        ident = str(cells.get(cols.ident) or "") if cols.ident else ""
        ident = ident or f"{file}:{row}"
        person = str(cells.get(cols.person) or "") if cols.person else ""
        where = str(cells.get(cols.channel) or "") if cols.channel else ""
        out["event_id"].append(_event_id(named or kind, ident))
        out["timestamp"].append(stamp)
        out["event"].append(TEXT)
        out["user_id"].append(person or None)
        out["anonymous_id"].append(None if person else f"writer:{ident}")
        out["channel"].append(where or channel)
        out[ROW].append(row)
        out["text"].append(text)
        out["source"].append(named or kind)
        out["text_id"].append(ident)
    arrays = {k: pa.array(v, pa.int64() if k == ROW else pa.string()) for k, v in out.items()}
    return pa.table(arrays), rejects

