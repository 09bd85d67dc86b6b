"""The collector's journal: events acknowledged before they reach the events table.

The collector appends each group of plain events with nothing to scrub to the journal and
syncs it to disk before it answers their requests; a second thread then stores them in the
events table, many groups in one insert. A commit of the events table costs milliseconds of
planning and, now and then, a checkpoint of hundreds; an append to the journal costs a
write and an ``fdatasync``. When the collector starts, the events journaled but not stored
(the process was killed) are stored first, then the journal is emptied.

The journal is a folder of segments, each an Arrow IPC stream: the schema, then one record
batch message per group, in ``seq`` order. A segment is named by its first ``seq``; a new
one is started when the current one is large, and a segment whose events are all stored is
deleted. A message cut short by a crash (its group was never acknowledged) ends the
segment when it is read back.

Writing and syncing are apart, so that one ``fdatasync`` covers every group written
before it (a group commit of the journal): :meth:`Journal.write` returns a ticket, and
:meth:`Journal.sync` returns once the journal is on disk up to that ticket, or raises if
the sync that covered it failed. A segment whose sync failed is written no further (after
a failed ``fdatasync`` Linux may report later ones as good though pages were lost); the
next group starts a new one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from .private import FILE_MODE, make_dir

#: The columns of a journaled event: what :func:`~microjourney.store.writer.write_plain` stores.
SCHEMA = pa.schema([
    ("event_id", pa.string()), ("event", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC")),
    ("anonymous_id", pa.string()), ("user_id", pa.string()), ("channel", pa.string()),
    ("session_id", pa.string()), ("properties", pa.string()), ("context", pa.string()),
    ("seq", pa.int64()),
])
SUFFIX = ".arrows"


class Journal:
    """Append groups of events (:data:`SCHEMA`); durable once synced; read back what is left.

    One thread writes (the collector, holding its commit lock); any thread may sync."""

    def __init__(self, directory: str | os.PathLike[str], *, segment_bytes: int = 64 << 20) -> None:
        self.directory = make_dir(Path(directory))
        self._segment_bytes = segment_bytes
        self._fd: int | None = None
        self._size = 0
        #: Segments written and closed, with the last seq each holds.
        self._closed: list[tuple[Path, int]] = []
        self._current: Path | None = None
        self._last = 0
        # Tickets: bytes written since the journal was opened, over every segment.
        self._written = self._synced = 0
        #: The tickets (low, high] of syncs that failed.
        self._failed: list[tuple[int, int]] = []
        #: Descriptors of segments left, not synced since their last write.
        self._left: list[int] = []
        self._lock = threading.Lock()  # the state above; the storing thread deletes segments
        self._sync_lock = threading.Lock()  # one fdatasync at a time

    def segments(self) -> list[Path]:
        """The segments on disk, oldest first."""
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def read(self) -> Iterator[pa.Table]:
        """Every whole group in the journal, in order (a group cut short ends its segment)."""
        for path in self.segments():
            try:
                reader = pa.ipc.open_stream(pa.memory_map(str(path)))
            except (pa.ArrowInvalid, OSError):  # not even the schema was written
                continue
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowInvalid, OSError):  # the message a crash cut short
                    break
                yield pa.Table.from_batches([batch])

    def write(self, rows: pa.Table) -> int:
        """Write one group (its ``seq`` increasing), not synced yet: the ticket to sync to."""
        if not rows.num_rows:
            return self._written
        rows = rows.select(SCHEMA.names).cast(SCHEMA)
        data = b"".join(batch.serialize().to_pybytes() for batch in rows.to_batches())
        with self._lock:
            if self._fd is None or self._size >= self._segment_bytes:
                self._start(int(rows.column("seq")[0].as_py()))
            try:
                written = 0
                while written < len(data):
                    written += os.write(self._fd, data[written:])
            except OSError:
                # Not acknowledged: cut the segment back to its last whole group, or end it,
                # so that no later group follows a broken one.
                try:
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    self._leave_segment()
                raise
            self._size += len(data)
            self._written += len(data)
            self._last = int(rows.column("seq")[-1].as_py())
            return self._written

    def sync(self, ticket: int) -> None:
        """Return once everything written up to ``ticket`` is on disk; raise ``OSError`` if
        the sync that covered it failed."""
        with self._sync_lock:
            self._check(ticket)
            if ticket <= self._synced:
                return
            with self._lock:
                fds = [*self._left, *([] if self._fd is None else [self._fd])]
                upto = self._written
            try:
                for fd in fds:
                    os.fdatasync(fd)
            except OSError:
                with self._lock:  # what the failed sync covered, and every write since
                    self._failed.append((self._synced, self._written))
                    self._leave_segment()
                    self._close_left(list(self._left))
                    self._synced = self._written
                raise
            with self._lock:
                self._close_left(fds)
                self._synced = upto

    def _check(self, ticket: int) -> None:
        for low, high in self._failed:
            if low < ticket <= high:
                raise OSError(f"the journal could not be synced to disk ({self.directory})")

    def _close_left(self, fds: list[int]) -> None:
        for fd in [fd for fd in self._left if fd in fds]:
            self._left.remove(fd)
            os.close(fd)

    def _start(self, first_seq: int) -> None:
        self._leave_segment()
        self._current = self.directory / f"{first_seq:020d}{SUFFIX}"
        self._fd = os.open(self._current, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, FILE_MODE)
        # The mode applies only to a new file: one left under this name keeps its own.
        os.fchmod(self._fd, FILE_MODE)
        header = SCHEMA.serialize().to_pybytes()
        os.write(self._fd, header)
        os.fsync(self._fd)
        self._size = len(header)
        # The new file's name must survive a crash too.
        folder = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

    def _leave_segment(self) -> None:
        """Write no more to the current segment; its descriptor is closed once synced.
        Holding ``_lock``."""
        if self._fd is not None:
            self._left.append(self._fd)
            self._closed.append((self._current, self._last))
            self._fd = None

    def stored(self, seq: int) -> None:
        """Every event up to ``seq`` is in the events table: delete the closed segments that
        hold nothing after it."""
        with self._lock:
            while self._closed and self._closed[0][1] <= seq:
                self._closed.pop(0)[0].unlink(missing_ok=True)

    def clear(self) -> None:
        """Close every segment and delete them all (all of them are stored)."""
        with self._sync_lock, self._lock:
            self._leave_segment()
            self._close_left(list(self._left))
            self._closed.clear()
        for path in self.segments():
            path.unlink()
