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
as a string (or null), takes a faster road (:func:`track_calls`, :func:`track_table`):
it is decoded by msgspec and its columns built in Python in the request handler, with
``properties`` and ``context`` kept as their JSON text, which the writer puts in the same
normal form as :data:`EVENTS` gives (``write_batch(json_text=True)``). The rows are the
same either way, so every other body (page, identify or alias calls, a call without an
id, a value of another type, a body that is not JSON) simply takes the road above
(tests/test_calls.py holds the two to the same rows). One difference is left: a key given
twice in one call counts with its last value on the fast road, as in file ingest, and with
its first in DuckDB.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
from msgspec.structs import astuple

from ..ingest.schema import CHANNELS

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


class Track(msgspec.Struct):
    """A track call as the fast road takes it: every event field a string or null."""

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


class _Tracks(msgspec.Struct):
    batch: list[Track]


_TRACKS = msgspec.json.Decoder(_Tracks)


def track_calls(body: bytes) -> list[Track] | None:
    """The calls of ``body`` when it is a batch of track calls that the fast road takes
    (see the module doc), else None: the body is taken apart in DuckDB instead."""
    try:
        calls = _TRACKS.decode(body).batch
    except (msgspec.DecodeError, UnicodeDecodeError):  # also another shape or type
        return None
    if len(calls) > MAX_CALLS or any(c.type != "track" or not c.event_id for c in calls):
        return None
    return calls


def track_columns(calls: list[Track]) -> dict[str, list]:
    """The values of :func:`track_calls` by field (``properties``/``context`` as the JSON bytes
    received, ``null`` when absent): what :func:`track_table` and :func:`plain_table` build from."""
    # One tuple per call, turned into columns by zip (loops in C, not a lookup per value).
    columns = list(zip(*map(astuple, calls), strict=True)) or [()] * len(Track.__struct_fields__)
    values = dict(zip(Track.__struct_fields__, map(list, columns), strict=True))
    values["properties"] = list(map(bytes, values["properties"]))
    values["context"] = list(map(bytes, values["context"]))
    return values


def _common(values: dict[str, list]) -> dict[str, pa.Array]:
    """The columns both tables share: ``idx``, the id, the JSON as text and ``h``."""
    return {"idx": pa.array(range(len(values["event_id"])), pa.int64()),
            "event_id": pa.array(values["event_id"], pa.string()),
            "properties": pa.array(values["properties"], pa.binary()).cast(pa.string()),
            "context": pa.array(values["context"], pa.binary()).cast(pa.string()),
            "h": pa.array(id_hashes(values["event_id"]))}


def _table(cols: dict[str, pa.Array]) -> pa.Table:
    return pa.table({name: cols[name] for name in ("idx", *EVENT_FIELDS, "h")})


def track_table(calls: list[Track], values: dict[str, list] | None = None) -> pa.Table:
    """The raw rows of one request's :func:`track_calls`: ``idx``, the event fields, and
    ``properties``/``context`` as the JSON text received (``null`` when absent), put
    in normal form by the writer (``write_batch(json_text=True)``). ``values``: the calls'
    :func:`track_columns`, when the caller has them."""
    values = track_columns(calls) if values is None else values
    cols = _common(values)
    for name in ("event", "timestamp", "anonymous_id", "user_id", "channel", "session_id"):
        cols[name] = pa.array(values[name], pa.string())
    return _table(cols)


#: A timestamp the plain road takes: RFC 3339 with seconds, at most 6 decimals and an offset
#: (Arrow's parse of these equals DuckDB's: tests/test_calls.py); any other goes to the writer.
_PLAIN_TS = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
_CHANNELS = frozenset(CHANNELS)
#: The plain road's timestamps, as the events table keeps them.
TIMESTAMP = pa.timestamp("us", tz="UTC")


def _object_or_null(text: bytes) -> bool:
    return text[:1] == b"{" or text == b"null"


def plain_table(calls: list[Track], values: dict[str, list] | None = None,
                channel: str = "other") -> pa.Table | None:
    """The rows of one request's :func:`track_calls` judged and typed here, when every call is
    *plain* (else None: the writer judges them, :func:`track_table`): an event name, a user or
    anonymous id, a known channel (or none: ``channel``), properties and context that are
    objects or null, and a timestamp of the plain form (:data:`_PLAIN_TS`) that parses.
    A plain call is one the writer would accept; its row is the one the writer would store:
    empty text is missing, the timestamp is an instant (``TIMESTAMP``), and ``properties``/
    ``context`` are the JSON text received, put in normal form (and scrubbed) by
    :func:`~microjourney.store.writer.write_plain`. Columns as :func:`track_table` gives;
    ``values`` as there."""
    if not calls:
        return None
    v = track_columns(calls) if values is None else values
    if not (all(v["event"]) and all(a or u for a, u in zip(v["anonymous_id"], v["user_id"], strict=True))
            and all(not c or c in _CHANNELS for c in v["channel"])
            and all(t is not None and _PLAIN_TS.fullmatch(t) for t in v["timestamp"])
            and all(map(_object_or_null, v["properties"])) and all(map(_object_or_null, v["context"]))):
        return None
    try:
        instants = pa.array(v["timestamp"], pa.string()).cast(TIMESTAMP)
    except pa.ArrowInvalid:  # a date that does not exist, say: the writer says why
        return None
    text = pa.string()
    return _table({
        **_common(v), "event": pa.array(v["event"], text), "timestamp": instants,
        "anonymous_id": pa.array([a or None for a in v["anonymous_id"]], text),
        "user_id": pa.array([u or None for u in v["user_id"]], text),
        "channel": pa.array([c or channel for c in v["channel"]], text),
        "session_id": pa.array([s or None for s in v["session_id"]], text),
    })


def id_hashes(ids: Iterable[str]) -> np.ndarray:
    """DuckDB's ``md5_number_lower`` of each id (the last 8 bytes of its MD5, little
    endian), computed here so that the writer thread need not ask DuckDB."""
    digests = b"".join(hashlib.md5(i.encode(), usedforsecurity=False).digest() for i in ids)
    return np.frombuffer(digests, dtype="<u8")[1::2].astype(np.uint64)


def derived_id(call: dict[str, Any]) -> str:
    digest = hashlib.blake2b(orjson.dumps(call, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return "mj-" + digest.hexdigest()


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) <= 10:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


def identity_row(call: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, str]:
    """An identify/alias call as the identity store keeps it, or (None, field, reason)."""
    kind = call["type"]
    need = ("user_id",) if kind == "identify" else ("previous_id", "user_id")
    for name in need:
        if not isinstance(call.get(name), str) or not call[name]:
            return None, name, f"{kind} needs {name} (a non-empty string)"
    anonymous = call.get("anonymous_id")
    if anonymous is not None and not isinstance(anonymous, str):
        return None, "anonymous_id", "anonymous_id is not a string"
    traits = call.get("traits")
    if traits is not None and not isinstance(traits, dict):
        return None, "traits", "traits is not a JSON object"
    ts = _timestamp(call.get("timestamp"))
    if ts is None:
        return None, "timestamp", (f"timestamp {call.get('timestamp')!r} is not an ISO 8601 "
                                   "date-time with a time zone offset")
    call_id = call.get("message_id") or call.get("event_id")
    return {
        "call_id": call_id if isinstance(call_id, str) and call_id else derived_id(call),
        "kind": kind, "anonymous_id": anonymous or None, "user_id": call["user_id"],
        "previous_id": call.get("previous_id") if kind == "alias" else None,
        "traits": traits if kind == "identify" else None, "timestamp": ts,
    }, None, ""
