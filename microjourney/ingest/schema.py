"""What ingest adds to the event vocabulary: how a reader carries rows, and the range of
instants an event may carry.

A reader turns a file into Arrow batches of *raw* rows: every field of an event
(:data:`~microjourney.vocabulary.FIELDS`) as a column (text, or a typed column the file
already had), plus ``__row`` — the row's 1-based position in the source (line for JSON
Lines, data row for CSV, event for XES) — so that a rejected row can be found again.
Validation and typing happen in one place, the store's writer, the same for every reader.

The vocabulary itself (channels, fields, ``json_pointer``) lives in
:mod:`microjourney.vocabulary`, below every layer that speaks it.
"""

from __future__ import annotations

# Named here too (`as` marks a re-export), so that imports from this module keep working.
from ..vocabulary import ASSISTED_CHANNELS as ASSISTED_CHANNELS
from ..vocabulary import CHANNELS as CHANNELS
from ..vocabulary import CONVERSATION_CHANNELS as CONVERSATION_CHANNELS
from ..vocabulary import FIELDS as FIELDS
from ..vocabulary import REQUIRED as REQUIRED
from ..vocabulary import json_pointer as json_pointer

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
