"""The event schema: the fields every reader produces and the store keeps.

A reader turns a file into Arrow batches of *raw* rows: every field below as a
column (text, or a typed column the file already had), plus ``__row`` — the row's
1-based position in the source (line for JSON Lines, data row for CSV, event for
XES) — so that a rejected row can be found again. Validation and typing happen in
one place, :mod:`microjourney.ingest.validate`, the same for every reader.
"""

from __future__ import annotations

#: Channels an event may come from.
CHANNELS: tuple[str, ...] = ("web", "app", "chat", "voice", "agent", "email", "sms", "store", "other")

#: Assisted channels: a person talks to the company (used for escalation).
ASSISTED_CHANNELS: tuple[str, ...] = ("chat", "voice", "agent", "email")

#: Conversation channels: a person talks with an agent there, so an attempt begun in
#: one is itself a contact (an e-mail may be the company's own notice).
CONVERSATION_CHANNELS: tuple[str, ...] = ("chat", "voice", "agent")

#: Fields of an event, in store order. ``properties`` and ``context`` are JSON objects.
FIELDS: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "event",
    "anonymous_id",
    "user_id",
    "channel",
    "session_id",
    "properties",
    "context",
)

REQUIRED: tuple[str, ...] = ("timestamp", "event")

#: Fields whose values ``--value FIELD:FROM=TO`` may replace before rows are judged (text
#: compared as it is; not the event id, which decides what is a duplicate before judging).
VALUE_FIELDS: tuple[str, ...] = ("event", "anonymous_id", "user_id", "channel", "session_id")

#: Column carrying the source row number through a reader.
ROW = "__row"

#: The range of instants an event may carry (docs/workspace.md, "Timestamps"), the same for
#: files and HTTP: from 1970-01-01T00:00:00Z (``EARLIEST``) to the time the event arrives
#: plus ``FUTURE_TOLERANCE`` (clocks that run ahead). Outside it an event is rejected with a
#: reason, so nothing stored can break a read (Python and Arrow reach only the year 9999).
EARLIEST = "1970-01-01T00:00:00Z"
#: How far past its arrival an event's timestamp may lie, in seconds, unless the workspace
#: says otherwise (``ingest.future_tolerance``): one day.
FUTURE_TOLERANCE = 86_400
#: The largest UTC offset a timestamp may carry, in minutes: ±14:00 (UTC+14 is the furthest
#: zone in use, UTC−12 the furthest behind). Larger offsets are rejected, not shifted.
MAX_OFFSET_MINUTES = 14 * 60


def span_text(seconds: float) -> str:
    """A tolerance as a reason gives it: the largest whole unit, ``one`` for one of it.

    >>> span_text(86_400), span_text(3_600), span_text(5_400), span_text(7_200), span_text(2.5)
    ('one day', 'one hour', '90 minutes', '2 hours', '2.5 seconds')
    """
    for size, unit in ((86_400, "day"), (3_600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds / size
            return f"one {unit}" if count == 1 else f"{count:g} {unit}s"
    return "one second" if seconds == 1 else f"{seconds:g} seconds"


def json_pointer(*keys: str) -> str:
    """The JSON Pointer (RFC 6901) of a member of ``properties`` or ``context``: ``/key`` (or
    ``/key/inner`` for nested ones), ``~1`` for ``/`` and ``~0`` for ``~``. Members reach SQL
    only so, as a string literal or a bound value, so any key works: quotes, backslashes,
    newlines, ``$.a[0]``, even the empty key (sqlglot writes ``$."key"`` paths back
    unescaped).

    >>> json_pointer("org:resource"), json_pointer("a/b~c"), json_pointer("traits", "e-mail")
    ('/org:resource', '/a~1b~0c', '/traits/e-mail')
    """
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)
