"""The collector's two roads for a batch give the same raw rows.

A batch of track calls with ids is decoded in Python (``track_calls``, ``track_table``,
``TRACKS``); every other body is taken apart in DuckDB (``CALLS``, ``EVENTS``). For the
bodies the fast road takes, both must give exactly the same rows, so that the writer
judges them alike.
"""

from __future__ import annotations

import json

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microjourney.server.calls import CALLS, EVENTS, MAX_CALLS, TRACKS, track_calls, track_table

COLUMNS = "req, idx, event_id, event, timestamp, anonymous_id, user_id, channel, session_id, " \
    "properties, context"


def slow_rows(body: bytes) -> list[tuple]:
    con = duckdb.connect()
    con.register("_http_bodies", pa.table({"req": pa.array([0], pa.int32()),
                                           "body": [body.decode("utf-8")]}))
    con.register("_http_calls", con.sql(CALLS).to_arrow_table())
    return con.execute(f"SELECT {COLUMNS} FROM ({EVENTS}) ORDER BY idx").fetchall()


def fast_rows(body: bytes) -> list[tuple]:
    calls = track_calls(body)
    assert calls is not None, body
    con = duckdb.connect()
    con.register("_http_tracks", track_table([(0, calls)]))
    return con.execute(f"SELECT {COLUMNS} FROM ({TRACKS}) ORDER BY idx").fetchall()


TRICKY = [
    # Spaces and layout inside the JSON values: stored in DuckDB's normal form either way.
    b'{"batch": [ {"event_id": "a", "event": "click", "timestamp": "2026-01-02T03:04:05Z",'
    b' "user_id": "u", "properties": { "x" : 1.50, "s": "caf\\u00e9 \\"q\\"", "n": null,'
    b' "l": [1, 2e3, true] } } ]}',
    # Absent, null and empty fields; context with consent; a key the event ignores.
    b'{"batch":[{"event_id":"b","event":null,"timestamp":"","channel":"web","context":'
    b'{"consent":{"analytics":true}},"other":{"deep":[1]}}]}',
    # Values of the wrong JSON type inside properties or context are kept as text.
    b'{"batch":[{"event_id":"c","properties":"not an object","context":[1,2]},'
    b'{"event_id":"d","properties":null,"context":{}}]}',
    # A body that also carries the key (as sendBeacon sends it), and an explicit type.
    b'{"key":"k","batch":[{"type":"track","event_id":"e","event":"x","anonymous_id":"\xc3\xa9"}]}',
    b'{"batch":[]}',
]


@pytest.mark.parametrize("body", TRICKY)
def test_both_roads_give_the_same_rows(body: bytes) -> None:
    assert fast_rows(body) == slow_rows(body)


NOT_FAST = [
    b'{"batch":[{"type":"page","event_id":"a","name":"/home"}]}',  # page call
    b'{"batch":[{"type":"identify","user_id":"u","timestamp":"2026-01-01T00:00:00Z"}]}',
    b'{"batch":[{"event":"click"}]}',  # no event_id: derived from the call's text
    b'{"batch":[{"event_id":""}]}',  # empty event_id: derived too
    b'{"batch":[{"event_id":"a","event":12}]}',  # a number where text is expected
    b'{"batch":[{"event_id":"a","type":null}]}',
    b'{"batch":["not a call"]}',
    b'{"batch":{"event_id":"a"}}',
    b'[{"event_id":"a"}]',
    b'{"batch":[{"event_id":"a"}]',  # not JSON
    b'{"batch":[{"event_id":"\xff"}]}',  # not UTF-8
    ('{"batch":[' + ",".join(['{"event_id":"x"}'] * (MAX_CALLS + 1)) + "]}").encode(),
]


@pytest.mark.parametrize("body", NOT_FAST)
def test_other_bodies_take_the_duckdb_road(body: bytes) -> None:
    assert track_calls(body) is None


_text = st.one_of(st.none(), st.text(max_size=12))
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)
_call = st.fixed_dictionaries(
    {"event_id": st.text(min_size=1, max_size=12)},
    optional={"event": _text, "timestamp": _text, "anonymous_id": _text, "user_id": _text,
              "channel": _text, "session_id": _text, "properties": _json, "context": _json})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(_call, max_size=5), indent=st.booleans())
def test_any_batch_of_track_calls_gives_the_same_rows_on_both_roads(calls: list[dict],
                                                                     indent: bool) -> None:
    text = json.dumps({"batch": calls}, indent=1 if indent else None, ensure_ascii=indent)
    body = text.encode("utf-8", "surrogatepass")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:  # lone surrogates: not a body a client can send
        return
    assert orjson.loads(body)  # a valid body
    assert fast_rows(body) == slow_rows(body)
