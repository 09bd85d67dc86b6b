"""The calls of ``POST /v1/batch``: their shapes, and how each becomes a stored row.

A batch is ``{"batch": [call, ...]}``; each call is an object with a ``type``
(default ``track``):

``track``     an event: the fields of file ingest (``event_id``, ``event``, ``timestamp``,
              ``anonymous_id``/``user_id``, ``channel``, ``session_id``, ``properties``,
              ``context``). The event is judged by the store's writer, exactly as a row of
              a file is (same checks, same reasons).
``page``      a page view: stored as the event ``page_viewed`` with a ``page`` property (the
              call's ``name``, else ``properties.page``, else the path of ``properties.url``).
``identify``  ``user_id`` (required), ``anonymous_id``, ``traits``, ``timestamp``.
``alias``     ``previous_id`` and ``user_id`` (both required), ``timestamp``.

The request bodies of one group commit are taken apart in DuckDB, all at once
(:data:`PROBLEMS`, :data:`CALLS`, :data:`EVENTS`): no Python runs per event on the ingest path. Only what
the writer cannot judge is checked here: that a body is a batch, that a call is an
object of a known type, that identify/alias calls (few, checked in Python by
:func:`identity_row`) carry their ids and a zoned timestamp. Every other value travels
on as text, so the HTTP path and file ingest reject the same rows for the same reasons.
A track or page call without ``event_id`` gets ``mj-`` and the MD5 of its JSON text: a
client that retries the same request stores each call once.

The common body, track calls that each carry an ``event_id`` and give every event field
as a string (or null), takes a faster road: it is decoded by msgspec into lists of values
in the request handler (:func:`track_calls`), and the collector takes the values of many
requests at once (:func:`track_columns`, :func:`track_rows`); plain calls are judged on the
way, for the whole group (:func:`plain_rows`). ``properties`` and ``context`` stay the
JSON text received, which the writer puts in the same normal form as :data:`EVENTS` gives
(``write_batch(json_text=True)``). The rows are the same either way, so every other body
(page, identify or alias calls, a call without an id, a value of another type, a body that
is not JSON) simply takes the road above (tests/test_calls.py holds the two to the same
rows). One difference is left: a key given
twice in one call counts with its last value on the fast road, as in file ingest, and with
its first in DuckDB.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from operator import attrgetter, itemgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ..ingest.schema import CHANNELS, EARLIEST, FUTURE_TOLERANCE, MAX_OFFSET_MINUTES, span_text
from ..ingest.scrub import may_hold_personal_data

TYPES = ("track", "page", "identify", "alias")
#: Fields of a track (or page) call that become event fields; other keys are ignored.
EVENT_FIELDS = ("event_id", "event", "timestamp", "anonymous_id", "user_id", "channel",
                "session_id", "properties", "context")
#: The largest batch accepted in one request.
MAX_CALLS = 5000

#: Why a body (``_http_bodies``: ``req``, ``body``) is not a batch: ``json``, ``batch``
#: or ``size`` (NULL: it is one).
_PROBLEM = f"""CASE WHEN NOT json_valid(body) THEN 'json'
         WHEN json_type(body) <> 'OBJECT' OR coalesce(json_type(body, '$.batch'), '') <> 'ARRAY'
           THEN 'batch'
         WHEN json_array_length(body, '$.batch') > {MAX_CALLS} THEN 'size' END"""
#: The requests whose body is not a batch: ``req, problem``.
PROBLEMS = f"SELECT req, problem FROM (SELECT req, {_PROBLEM} AS problem FROM _http_bodies) " \
    "WHERE problem IS NOT NULL"
#: The calls of the bodies that are batches: ``req, idx, call, shape, type``. Read once into
#: Arrow, then registered as ``_http_calls`` for the queries below (no table is created:
#: DDL costs more than the copy).
CALLS = f"""
SELECT req, idx, call, json_type(call) AS shape,
       CASE WHEN json_type(call) = 'OBJECT' THEN coalesce(call ->> '$.type', 'track') END AS type
FROM (SELECT req, unnest(range(CAST(json_array_length(body, '$.batch') AS BIGINT))) AS idx,
             unnest(json_extract(body, '$.batch[*]')) AS call
      FROM _http_bodies WHERE {_PROBLEM} IS NULL)
"""

#: The event a page call is stored as, with a ``page`` property (:func:`page_of`).
PAGE = "page_viewed"
#: The path of a URL (its first group), as :data:`EVENTS` reads a page call's
#: ``properties.url`` (tests/test_calls.py holds the two equal).
_URL_PATH = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)")


def page_of(name: Any, page: Any, url: Any) -> str | None:
    """A page call's ``page`` in Python, as :data:`EVENTS` derives it in the store: its
    ``name``, else ``properties.page``, else the path of ``properties.url`` (``/`` when it
    has none); a value that is not text as its JSON text.

    >>> page_of(None, None, "https://shop.example/checkout?step=2"), page_of(None, None, "https://x.io")
    ('/checkout', '/')
    """
    for value in (name, page):
        if value is not None and not isinstance(value, (dict, list)):
            return value if isinstance(value, str) else orjson.dumps(value).decode()
    if isinstance(url, str):
        found = _URL_PATH.match(url)
        return (found.group(1) if found else "") or "/"
    return None


#: Track and page calls as raw event rows (text, as a file reader gives them), plus
#: ``req`` and ``idx``. Each call's JSON is parsed once for all its fields (a list of
#: paths), not once per field.
EVENTS = r"""
SELECT req, idx,
  coalesce(nullif(f[1], ''), 'mj-' || md5(CAST(call AS VARCHAR))) AS event_id,
  CASE WHEN type = 'page' THEN 'page_viewed' ELSE f[2] END AS event,
  f[3] AS timestamp, f[4] AS anonymous_id, f[5] AS user_id, f[6] AS channel, f[7] AS session_id,
  CASE WHEN type <> 'page' THEN nullif(CAST(j[1] AS VARCHAR), 'null')
       ELSE CAST(json_merge_patch(
         CASE WHEN json_type(j[1]) = 'OBJECT' THEN j[1] ELSE '{}' END,
         json_object('page', coalesce(f[8], f[9], CASE WHEN f[10] IS NOT NULL THEN coalesce(nullif(
           regexp_extract(f[10], '^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)', 1), ''),
           '/') END))) AS VARCHAR) END AS properties,
  nullif(CAST(j[2] AS VARCHAR), 'null') AS context
FROM (
  SELECT req, idx, call, type,
    json_extract_string(call, ['$.event_id', '$.event', '$.timestamp', '$.anonymous_id',
      '$.user_id', '$.channel', '$.session_id', '$.name', '$.properties.page',
      '$.properties.url']) AS f,
    json_extract(call, ['$.properties', '$.context']) AS j
  FROM _http_calls WHERE type IN ('track', 'page'))
"""


class Track(msgspec.Struct, gc=False):
    """A track call as the fast road takes it: every event field a string or null.

    Not tracked by the garbage collector (it holds no other objects): a group holds
    thousands until it is judged, and tracked ones made collections frequent and long
    enough to double the collector's p99 (docs/benchmarks.md)."""

    event_id: str
    type: str = "track"
    event: str | None = None
    timestamp: str | None = None
    anonymous_id: str | None = None
    user_id: str | None = None
    channel: str | None = None
    session_id: str | None = None
    properties: msgspec.Raw = msgspec.Raw(b"null")
    context: msgspec.Raw = msgspec.Raw(b"null")


class _Tracks(msgspec.Struct, gc=False):
    batch: list[Track]


_TRACKS = msgspec.json.Decoder(_Tracks)


def track_calls(body: bytes) -> list[Track] | None:
    """The calls of ``body`` when it is a batch of track calls that the fast road takes
    (see the module doc), else None: the body is taken apart in DuckDB instead."""
    try:
        # Strings inside properties and context are not decoded: their UTF-8 is checked here
        # (1-2 us for a 25 kB body) so that no row of a group fails to build.
        body.decode()
        calls = _TRACKS.decode(body).batch
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):  # also another shape or type
        return None
    if len(calls) > MAX_CALLS or any(c.type != "track" or not c.event_id for c in calls):
        return None
    return calls


def track_columns(calls: list[Track]) -> dict[str, list]:
    """The values of :func:`track_calls` by field (``properties``/``context`` as the JSON bytes
    received, ``null`` when absent): what :func:`track_rows` builds from. ``calls`` may be
    the calls of many requests, one after the other."""
    values = {name: list(map(attrgetter(name), calls)) for name in EVENT_FIELDS}
    values["properties"] = list(map(bytes, values["properties"]))
    values["context"] = list(map(bytes, values["context"]))
    return values


def track_rows(values: dict[str, list]) -> pa.Table:
    """The raw rows of :func:`track_columns`: the event fields as text (``properties``/
    ``context`` as the JSON text received, ``null`` when absent, put in normal form by the
    writer: ``write_batch(json_text=True)``) and ``h``, the id's hash (:func:`id_hashes`).
    Python objects become Arrow arrays here, holding the GIL: no compute function runs."""
    text = pa.string()
    cols = {name: pa.array(values[name], text) for name in EVENT_FIELDS}  # bytes checked as UTF-8
    cols["h"] = pa.array(id_hashes(values["event_id"]))
    return pa.table(cols)


#: A timestamp the plain road takes: RFC 3339 with seconds, at most 6 decimals and an offset
#: within ±14:00 (``ingest.schema.MAX_OFFSET_MINUTES``; Arrow's parse of these equals DuckDB's:
#: tests/test_calls.py); any other goes to the writer, which says what is wrong.
PLAIN_TS = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
            r"(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)$")
assert MAX_OFFSET_MINUTES == 14 * 60, "PLAIN_TS spells the largest offset out"
#: The earliest instant an event may carry (``ingest.schema.EARLIEST``).
_EARLIEST = datetime.fromisoformat(EARLIEST)
_CHANNEL_OR_NONE = frozenset((*CHANNELS, "", None))
#: How JSON objects and null begin (the text is valid JSON: msgspec read it).
_OBJECT_OR_NULL = frozenset(b"{n")
_NULL = pa.scalar(None, pa.string())
#: The plain road's timestamps, as the events table keeps them.
TIMESTAMP = pa.timestamp("us", tz="UTC")


def plain_calls(values: dict[str, list], sizes: Sequence[int]) -> np.ndarray:
    """Which requests (of ``sizes`` calls, one after the other in ``values``, their
    :func:`track_columns`) have only calls with an event name, a user or anonymous id, a
    known channel (or none), properties and context that are objects or null, and a
    timestamp; the others go to the writer, which says what is wrong. The timestamps' form
    is checked by :func:`plain_rows`. The group is checked at once, with loops that run in
    C; request by request only when something in it fails."""
    return _per_request(_plain, values, sizes, settled=True)


def _per_request(test: Callable[[dict[str, list]], bool], values: dict[str, list], sizes: Sequence[int],
                 *, settled: bool) -> np.ndarray:
    """``test`` of each request's values (requests of ``sizes`` calls, one after the other):
    the whole group is tested first; when that gives ``settled``, so does each request."""
    if test(values) == settled:
        return np.full(len(sizes), settled)
    ends = np.cumsum(sizes).tolist()
    return np.array([test({name: v[end - n:end] for name, v in values.items()})
                     for n, end in zip(sizes, ends, strict=True)], dtype=bool)


def _plain(values: dict[str, list]) -> bool:
    n = len(values["event_id"])
    return bool(
        all(values["event"]) and None not in values["timestamp"]
        and set(values["channel"]) <= _CHANNEL_OR_NONE
        and set(map(itemgetter(0), values["properties"])) <= _OBJECT_OR_NULL
        and set(map(itemgetter(0), values["context"])) <= _OBJECT_OR_NULL
        and (np.fromiter(map(bool, values["anonymous_id"]), bool, n)
             | np.fromiter(map(bool, values["user_id"]), bool, n)).all())


def plain_rows(values: dict[str, list], rows: pa.Table, sizes: Sequence[int], *,
               future_tolerance: float = FUTURE_TOLERANCE) -> tuple[pa.Table, np.ndarray]:
    """The rows of the plain requests, typed as the plain road stores them, and which
    requests those are. ``rows``: the :func:`track_rows` of ``values`` (and any other
    columns) of requests of ``sizes`` calls, one after the other; ``future_tolerance``: how
    many seconds after now a timestamp may lie (``ingest.future_tolerance``, as the writer
    is given it).

    A request is plain when :func:`plain_calls` says so and its timestamps all have the
    plain form (:data:`PLAIN_TS`) and parse. A plain call is one the writer would accept,
    and its row is the one the writer would store once ``properties``/``context``, the JSON
    text received, are put in normal form (and scrubbed) by
    :func:`~microjourney.store.writer.write_plain`: the timestamps are instants
    (:data:`TIMESTAMP`), empty ids are missing, and a missing channel is ``other``."""
    plain = plain_calls(values, sizes)
    timestamps = rows.column("timestamp")
    owner = np.repeat(np.arange(len(sizes)), sizes)
    ok = pc.fill_null(pc.match_substring_regex(timestamps, PLAIN_TS), False).to_numpy(zero_copy_only=False)
    plain &= np.bincount(owner[~ok], minlength=len(sizes)) == 0
    kept = rows if plain.all() else rows.filter(pa.array(plain[owner]))
    try:
        instants = kept.column("timestamp").cast(TIMESTAMP)
    except pa.ArrowInvalid:  # a day that does not exist, say: its request goes to the writer
        plain &= [_parses(timestamps.filter(pa.array(owner == r))) for r in range(len(sizes))]
        kept = rows.filter(pa.array(plain[owner]))
        instants = kept.column("timestamp").cast(TIMESTAMP)
    # In microseconds since 1970 (year 0 parses, and Python's datetime cannot hold it).
    early = int(_EARLIEST.timestamp() * 1_000_000)
    late = int((time.time() + future_tolerance) * 1_000_000)
    span = pc.min_max(instants)  # one call for the group; row by row only when one is outside
    if kept.num_rows and (span["min"].value < early or span["max"].value > late):
        # Outside the range events may carry (ingest.schema): the writer rejects it, with a reason.
        micros = instants.cast(pa.int64())
        outside = pc.or_(pc.less(micros, early), pc.greater(micros, late))
        kept_owner = owner[plain[owner]]
        plain[np.unique(kept_owner[outside.to_numpy(zero_copy_only=False)])] = False
        still = pa.array(plain[kept_owner])  # the whole request goes to the writer
        kept, instants = kept.filter(still), instants.filter(still)
    kept = kept.set_column(kept.schema.get_field_index("timestamp"), "timestamp", instants)
    for name in ("anonymous_id", "user_id", "session_id"):
        if "" in values[name]:
            kept = _replace(kept, name, pc.if_else(pc.equal(kept.column(name), ""), _NULL, kept.column(name)))
    if None in values["channel"] or "" in values["channel"]:
        channel = kept.column("channel")
        channel = pc.fill_null(pc.if_else(pc.equal(channel, ""), _NULL, channel), "other")
        kept = _replace(kept, "channel", channel)
    return kept, plain


def _replace(rows: pa.Table, name: str, column: pa.ChunkedArray) -> pa.Table:
    return rows.set_column(rows.schema.get_field_index(name), name, column)


def personal_requests(values: dict[str, list], sizes: Sequence[int]) -> np.ndarray:
    """Which requests' properties or context may hold personal data
    (:func:`~microjourney.ingest.scrub.may_hold_personal_data`); the group is looked at once,
    request by request only if it may."""
    texts = {"properties": values["properties"], "context": values["context"]}
    return _per_request(lambda v: may_hold_personal_data(v["properties"] + v["context"]), texts, sizes,
                        settled=False)


def _parses(timestamps: pa.ChunkedArray) -> bool:
    try:
        timestamps.cast(TIMESTAMP)
    except pa.ArrowInvalid:
        return False
    return True


def id_hashes(ids: list[str]) -> np.ndarray:
    """A 64-bit hash of each id (Python's, the same for the same text within a process:
    the collector's index of stored ids is built at start)."""
    return np.fromiter(map(hash, ids), np.int64, len(ids)).view(np.uint64)


def derived_id(call: dict[str, Any]) -> str:
    digest = hashlib.blake2b(orjson.dumps(call, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return "mj-" + digest.hexdigest()


def _shown(value: Any) -> str:
    """``value`` as a reason quotes it: short, whatever was sent."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _timestamp_problem(ts: datetime, future_tolerance: float) -> str | None:
    """Why the zoned ``ts`` is outside what an event may carry (``ingest.schema``: offset
    within ±14:00, from 1970 to now plus ``future_tolerance`` seconds), or None."""
    if abs(ts.utcoffset()) > timedelta(minutes=MAX_OFFSET_MINUTES):  # type: ignore[arg-type]
        return f"the offset {ts.isoformat()[-6:]} is beyond ±14:00"
    if ts < _EARLIEST:
        return f"the instant is before {EARLIEST}"
    if ts > datetime.now(UTC) + timedelta(seconds=future_tolerance):
        return f"the instant is more than {span_text(future_tolerance)} after its arrival"
    return None


def _timestamp(value: Any, future_tolerance: float = FUTURE_TOLERANCE) -> tuple[datetime | None, str]:
    """A call's timestamp, or (None, why not)."""
    ts = None
    if isinstance(value, str) and len(value) > 10:
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            pass
    if ts is None or ts.tzinfo is None:
        return None, f"timestamp {_shown(value)} is not an ISO 8601 date-time with a time zone offset"
    problem = _timestamp_problem(ts, future_tolerance)
    return (None, f"timestamp {_shown(value)}: {problem}") if problem else (ts, "")


def identity_row(call: dict[str, Any], *, future_tolerance: float = FUTURE_TOLERANCE,
                 ) -> tuple[dict[str, Any] | None, str | None, str]:
    """An identify/alias call as the identity store keeps it, or (None, field, reason);
    ``future_tolerance`` as for events (``ingest.future_tolerance``)."""
    kind = call["type"]
    need = ("user_id",) if kind == "identify" else ("previous_id", "user_id")
    for name in need:  # blank ids are missing, as the identity store reads them
        if not isinstance(call.get(name), str) or not call[name].strip():
            return None, name, f"{kind} needs {name} (a non-empty string)"
    anonymous = call.get("anonymous_id")
    if anonymous is not None and not isinstance(anonymous, str):
        return None, "anonymous_id", "anonymous_id is not a string"
    traits = call.get("traits")
    if traits is not None and not isinstance(traits, dict):
        return None, "traits", "traits is not a JSON object"
    try:  # the identity store writes traits as JSON, and a call without an id is hashed
        orjson.dumps(call)
    except orjson.JSONEncodeError:
        return None, "traits", "traits nest deeper than 250 levels"
    ts, reason = _timestamp(call.get("timestamp"), future_tolerance)
    if ts is None:
        return None, "timestamp", reason
    call_id = call.get("message_id") or call.get("event_id")
    return {
        "call_id": call_id if isinstance(call_id, str) and call_id.strip() else derived_id(call),
        "kind": kind, "anonymous_id": anonymous or None, "user_id": call["user_id"],
        "previous_id": call.get("previous_id") if kind == "alias" else None,
        "traits": traits if kind == "identify" else None, "timestamp": ts,
    }, None, ""
