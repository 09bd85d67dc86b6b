"""CSV records that span lines: a quoted field may hold line breaks (RFC 4180), as exported
notes and addresses often do.

:func:`records` takes the line chunks of :func:`~microjourney.ingest.lines.chunks` and hands
on whole records: a line ends a record when the quotes before its end are balanced (an
escaped quote, ``""``, counts twice, so parity is enough). The lines of a record still open
at the end of a chunk are carried to the next; a record still open after ``max_line_bytes``,
or at the end of the file, is rejected with the line it starts on, and reading goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .lines import Chunk, Limits, Reject, cut


@dataclass
class Records:
    """Whole records of a chunk: ``chunk`` holds their lines; ``joined[i]`` is true when line
    ``i`` is inside a quoted field at its end (the record goes on to the next line)."""

    chunk: Chunk
    joined: np.ndarray

    @property
    def multiline(self) -> bool:
        return bool(self.joined.any())


def _group(part: Chunk) -> tuple[Records, Chunk | None]:
    """The whole records of ``part`` and the lines of a record still open at its end."""
    data = np.frombuffer(part.data, np.uint8)
    ends = np.flatnonzero(data == 10)
    joined = np.searchsorted(np.flatnonzero(data == 34), ends) % 2 == 1  # inside quotes at the end
    closed = np.flatnonzero(~joined)
    whole = int(closed[-1]) + 1 if len(closed) else 0  # the lines up to the last record's end
    if whole == len(ends):
        return Records(part, joined), None
    at = int(ends[whole - 1]) + 1 if whole else 0
    return (Records(Chunk(part.data[:at], part.numbers[:whole], part.rejects, part.stopped), joined[:whole]),
            Chunk(part.data[at:], part.numbers[whole:]))


def _reread(carry: Chunk, why: str, stopped: bool) -> Chunk:
    """``carry`` without the line that opened its quote (rejected): its other lines, again."""
    at = carry.data.find(b"\n") + 1
    number = int(carry.numbers[0])
    unclosed = Reject(number, f"line {number}: a quoted field opened on this line {why}; the line "
                              "is left out and the lines after it are read as records again",
                      cut(carry.data[:at]))
    return Chunk(carry.data[at:], carry.numbers[1:], [unclosed], stopped)


def records(parts: Iterator[Chunk], limits: Limits) -> Iterator[Records]:
    """The chunks of ``parts`` as whole records (see the module's docstring)."""
    carry: Chunk | None = None
    for part in parts:
        if carry is not None:
            part = Chunk(carry.data + part.data, np.concatenate([carry.numbers, part.numbers]),
                         part.rejects, part.stopped)
        while True:
            done, carry = _group(part)
            yield done
            if carry is not None and len(carry.data) > limits.max_line_bytes:
                part = _reread(carry, "is not closed within ingest.max_line_bytes", part.stopped)
            elif carry is not None and part.stopped:
                part = _reread(carry, "is not closed where reading stopped", True)
            else:
                break
    while carry is not None:
        done, carry = _group(_reread(carry, "is not closed by the end of the file", False))
        yield done
