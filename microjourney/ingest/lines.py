"""Lines of a file in bounded memory: decompressed as a stream, cut at a length, checked as UTF-8.

JSON Lines and CSV are read through :func:`chunks`, which hands over the file's good lines
a few megabytes at a time and turns every line it cannot pass on into a :class:`Reject`:

* a line longer than ``max_line_bytes`` is skipped without being held (only its first
  :data:`RAW_BYTES` are kept, for the quarantine) and its length is given in the reason;
* a line that is not valid UTF-8 is rejected on its own, naming the byte and its column;
* past ``max_file_bytes`` (counted after decompression) reading stops; :class:`Chunk.stopped`
  says so, and the caller reports how much was kept.

Memory is one read (:data:`READ_BYTES`) plus at most one unfinished line, whatever the file.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import IngestError

#: Bytes read from the (decompressed) stream at a time.
READ_BYTES = 4 * 2**20
#: Bytes of a rejected line kept for the quarantine (the reason gives its full length).
RAW_BYTES = 4096
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Limits:
    """What one file may hold (``ingest`` in ``microjourney.yaml``, docs/workspace.md)."""

    max_line_bytes: int = 2**20
    max_file_bytes: int = 64 * 2**30


@dataclass(frozen=True)
class Reject:
    """A row a reader could not read as a row at all (bad JSON, wrong column count)."""

    row: int
    reason: str
    raw: str
    field: str | None = None


@dataclass
class Chunk:
    """Good lines, each ending in a newline, with the 1-based number of each in the file."""

    data: bytes
    numbers: np.ndarray
    rejects: list[Reject] = field(default_factory=list)
    #: Set on the last chunk when reading stopped at ``max_file_bytes``.
    stopped: bool = False


def open_bytes(path: Path, what: str = "the file") -> io.BufferedIOBase:
    """``path`` as a stream of bytes, decompressed as it is read when it starts with the gzip
    magic (the content is sniffed, not the suffix: files are often gzipped without being
    renamed, and vice versa). ``what``: what the error calls the file."""
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == _GZIP_MAGIC
        return gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        code = "ingest/missing" if isinstance(exc, FileNotFoundError) else "ingest/unreadable"
        raise IngestError(f"{path}: cannot open {what}: {exc.strerror or exc}", code=code) from None


def cut(raw: bytes) -> str:
    """The first :data:`RAW_BYTES` of a line as text (a broken last character dropped)."""
    return raw[:RAW_BYTES].decode("utf-8", "replace").rstrip("\ufffd") if len(raw) > RAW_BYTES \
        else raw.decode("utf-8", "replace")


def _too_long(number: int, head: bytes, length: int, limits: Limits) -> Reject:
    """The reject for line ``number``, ``length`` bytes long (over the limit), starting ``head``."""
    return Reject(number, f"line {number}: {length:,} bytes long, over ingest.max_line_bytes "
                          f"({limits.max_line_bytes:,}); kept its first {RAW_BYTES:,} bytes", cut(head))


def stopped_reading(limits: Limits, kept: str) -> str:
    """Why a file cut at ``limits.max_file_bytes`` ends in an error; ``kept``: what of it was
    read and ingested (``lines 1 to 935``)."""
    return (f"stopped reading after {limits.max_file_bytes:,} bytes (ingest.max_file_bytes, "
            f"counted after decompression): {kept} were read and ingested, the rest of the file "
            "was not; raise ingest.max_file_bytes in microjourney.yaml to read it all")


def chunks(path: Path, limits: Limits, read_bytes: int = READ_BYTES) -> Iterator[Chunk]:
    """The good lines of ``path`` in chunks, bad ones as rejects (see the module's docstring);
    ``read_bytes``: how much is read at a time."""
    with open_bytes(path) as stream:
        try:
            yield from _chunks(stream, limits, read_bytes)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:  # a corrupt or truncated gzip stream
            raise IngestError(f"{path}: cannot read the file ({exc})", code="ingest/unreadable") from None


def _chunks(stream: io.BufferedIOBase, limits: Limits, read_bytes: int) -> Iterator[Chunk]:
    pending = b""  # the unfinished last line, never longer than max_line_bytes
    number = 1  # the number of the line ``pending`` starts
    skipping: tuple[int, bytes, int] | None = None  # an overlong line: number, head, length so far
    total = 0
    while True:
        data = stream.read(read_bytes)
        stopped = bool(data) and total + len(data) > limits.max_file_bytes
        if stopped:
            data = data[: max(0, limits.max_file_bytes - total)]
        if total == 0:
            data = data.removeprefix(_BOM)
        total += len(data)
        if not data and not stopped:
            break
        rejects: list[Reject] = []
        if skipping is not None:
            end = data.find(b"\n")
            line, head, length = skipping
            if end < 0:
                skipping = (line, head, length + len(data))
                if stopped:
                    yield Chunk(b"", np.empty(0, np.int64), stopped=True)
                    return
                continue
            rejects.append(_too_long(line, head, length + end, limits))
            skipping, data, number = None, data[end + 1:], line + 1
        last = data.rfind(b"\n")
        if last < 0:
            done, pending = b"", pending + data
        else:
            done, pending = pending + data[: last + 1], data[last + 1:]
        chunk = _good(done, number, limits)
        chunk.rejects[:0] = rejects
        chunk.stopped = stopped
        number += done.count(b"\n")
        if len(pending) > limits.max_line_bytes:
            skipping, pending = (number, pending[:RAW_BYTES], len(pending)), b""
        if done or chunk.rejects or stopped:
            yield chunk
        if stopped:
            return
    if skipping is not None:
        yield Chunk(b"", np.empty(0, np.int64), [_too_long(*skipping, limits)])
    elif pending:
        yield _good(pending + b"\n", number, limits)


def _good(done: bytes, number: int, limits: Limits) -> Chunk:
    """Split ``done`` (whole lines, the first numbered ``number``) into good lines and rejects."""
    if not done:
        return Chunk(b"", np.empty(0, np.int64))
    ends = np.flatnonzero(np.frombuffer(done, np.uint8) == 10)
    starts = np.concatenate(([0], ends[:-1] + 1))
    numbers = np.arange(number, number + len(ends), dtype=np.int64)
    bad = np.flatnonzero(ends - starts > limits.max_line_bytes)
    if not len(bad) and _utf8(done):
        return Chunk(done, numbers)
    # The rare road: some lines go; look at them one by one.
    rejects: list[Reject] = []
    keep = np.ones(len(ends), dtype=bool)
    for i in bad:
        keep[i] = False
        line = done[starts[i]:ends[i]]
        rejects.append(_too_long(int(numbers[i]), line, len(line), limits))
    for i in np.flatnonzero(keep):
        line = done[starts[i]:ends[i]]
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            keep[i] = False
            byte = line[exc.start:exc.start + 1].hex()
            rejects.append(Reject(int(numbers[i]), f"line {numbers[i]}: not valid UTF-8 (byte 0x{byte} "
                                                   f"at column {exc.start + 1}: {exc.reason})", cut(line)))
    rejects.sort(key=lambda r: r.row)
    kept = b"".join(done[starts[i]:ends[i] + 1] for i in np.flatnonzero(keep))
    return Chunk(kept, numbers[keep], rejects)


def _utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8, checked by Arrow without decoding it into Python text."""
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True
