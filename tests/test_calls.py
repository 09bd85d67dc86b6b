"""The collector's roads for a batch give the same rows.

A batch of track calls with ids is decoded in Python (``track_calls``, ``track_table`` of
tests/helpers.py, then ``TRACKS``: what the writer makes of them); every other body is taken apart in DuckDB
(``CALLS``, ``EVENTS``). For the bodies the fast road takes, both must give exactly the
same rows, so that the writer judges them alike. A fast body whose calls are all plain is
judged in Python (``plain_table``) and stored by ``write_plain``: the stored rows must be
the ones the writer stores.
"""

from __future__ import annotations

import json

import duckdb
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microjourney.ingest.schema import CHANNELS, ROW
from microjourney.ingest.scrub import may_hold_personal_data
from microjourney.server.calls import (
    CALLS,
    EVENT_FIELDS,
    EVENTS,
    MAX_CALLS,
    PAGE,
    id_hashes,
    page_of,
    plain_rows,
    track_calls,
    track_columns,
    track_rows,
)
from microjourney.store.db import migrate
from microjourney.store.writer import normal_json, write_batch, write_plain

from .helpers import plain_table, track_table

#: The fast road's rows as the writer reads them (``write_batch(json_text=True)``).
TRACKS = f"""
SELECT req, idx, event_id, event, timestamp, anonymous_id, user_id, channel, session_id,
  {normal_json("properties")} AS properties, {normal_json("context")} AS context
FROM _http_tracks
"""
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
    rows = track_table(calls)
    con.register("_http_tracks", rows.add_column(0, "req", pa.array([0] * rows.num_rows, pa.int32())))
    return con.execute(f"SELECT {COLUMNS} FROM ({TRACKS}) ORDER BY idx").fetchall()


PAGES = [({"name": "Checkout"}, {"page": "ignored", "url": "https://x.io/a"}),
         ({}, {"page": "basket", "url": "https://x.io/a"}),
         ({"name": 42}, {}),
         ({}, {"page": 3.5}),
         ({}, {"url": "https://shop.example/checkout/pay?step=2#card"}),
         ({}, {"url": "https://shop.example"}),
         ({}, {"url": "/help?q=1"}),
         ({}, {"url": "mailto:someone"}),
         ({}, {"url": ""}),
         ({}, {})]


@pytest.mark.parametrize(("call", "props"), PAGES)
def test_a_page_call_gets_the_same_page_in_python_as_in_the_store(call: dict, props: dict) -> None:
    """The live state follows page calls with :func:`page_of`; the store derives the same
    ``page`` in SQL (:data:`EVENTS`)."""
    body = orjson.dumps({"batch": [{"type": "page", "event_id": "p", **call, "properties": props}]})
    (row,) = slow_rows(body)
    assert row[3] == PAGE
    stored = json.loads(row[9]).get("page")
    assert page_of(call.get("name"), props.get("page"), props.get("url")) == stored


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


def test_the_index_built_from_the_store_knows_the_ids_hashed_in_python() -> None:
    from microjourney.server.ids import IdIndex

    ids = ["e-1", "", "é😀", "mj-0123456789abcdef", "x" * 300, "a\x00b"]
    con = duckdb.connect()
    con.execute("CREATE TABLE events AS SELECT unnest($ids) AS event_id", {"ids": ids})
    index = IdIndex(con.sql("SELECT event_id FROM events"))
    assert index.maybe(id_hashes(list(ids))).all()
    assert not index.maybe(id_hashes(["e-2", " ", "é", "a"])).any()


def _stored(bodies: list[bytes], tmp_path, name: str, journal: bool = False) -> list[tuple]:
    import microjourney as mj
    from microjourney.server.collector import Collector
    from microjourney.store.identities import write_calls

    root = tmp_path / name
    mj.init(root).close()
    with mj.open(root) as ws:
        c = Collector(ws.con.cursor(), identities=write_calls, journal=root / "journal" if journal else None)
        for b in bodies:
            c.submit(b).result(30)
        c.close()
        assert not list((root / "journal").glob("*"))  # emptied (or never made)
        return ws.con.execute(
            "SELECT event_id, seq, CAST(epoch_us(timestamp) AS BIGINT), event, anonymous_id, user_id, "
            "channel, session_id, CAST(properties AS VARCHAR), CAST(context AS VARCHAR) "
            "FROM events ORDER BY event_id"
        ).fetchall()


def test_the_store_holds_the_same_events_whichever_road_they_took(tmp_path) -> None:
    calls = [
        {"event_id": "a", "event": "click", "timestamp": "2026-01-02T03:04:05+01:00", "user_id": "u",
         "channel": "web", "properties": {"x": 1.5, "s": "caf\u00e9", "l": [1, None]}},
        {"event_id": "b", "event": "paid", "timestamp": "2026-01-02T03:04:06Z", "anonymous_id": "an",
         "context": {"consent": {"analytics": True}}, "session_id": "s"},
        {"event_id": "c", "event": "bad", "timestamp": "2026-01-02", "user_id": "u"},  # rejected
    ]
    fast = json.dumps({"batch": calls}, indent=2).encode()
    assert track_calls(fast) is not None
    # The same calls with an identify call: the whole body takes the DuckDB road.
    slow = json.dumps({"batch": [*calls, {"type": "identify", "user_id": "u", "anonymous_id": "an",
                                          "timestamp": "2026-01-02T03:04:05Z"}]}, indent=2).encode()
    assert track_calls(slow) is None
    rows = _stored([fast], tmp_path, "fast")
    assert [r[0] for r in rows] == ["a", "b"]
    assert rows == _stored([slow], tmp_path, "slow")


def test_the_id_index_finds_every_stored_hash_and_few_others() -> None:
    import numpy as np

    from microjourney.server.ids import IdIndex

    con = duckdb.connect()
    con.execute("CREATE TABLE events AS SELECT 'e' || i AS event_id FROM range(5000) t(i)")
    index = IdIndex(con.sql("SELECT event_id FROM events"))
    stored = id_hashes([f"e{i}" for i in range(5000)])
    later = id_hashes([f"n{i}" for i in range(3000)])
    others = id_hashes([f"x{i}" for i in range(20000)])
    assert index.maybe(stored).all() and not index.maybe(later).any()
    for part in np.array_split(later, 20):  # more chunks than are kept apart
        index.add(part)
    assert index.maybe(later).all() and index.maybe(stored).all()
    assert not index.maybe(others).any()  # 64-bit hashes: no false hit among these


def test_the_index_keeps_finding_hashes_added_to_an_empty_store() -> None:
    import numpy as np

    from microjourney.server.ids import IdIndex

    index = IdIndex(duckdb.connect().sql("SELECT 'x' AS event_id LIMIT 0"))
    added = id_hashes([f"a{i}" for i in range(6400)])
    for i, part in enumerate(np.array_split(added, 64)):  # merges of every kind on the way
        index.add(part)  # merged in a thread: the runs are looked in until it is done
        assert index.maybe(added[: (i + 1) * 100]).all()
    assert not index.maybe(id_hashes([f"b{i}" for i in range(5000)])).any()
    while index._merge is not None:  # each finished merge takes the place of its runs
        index._merge.join()
        index.add(np.zeros(0, np.uint64))
    kept = [index._sorted, *index._chunks]
    assert len(index._chunks) <= 16 and sum(map(len, kept)) == len(added)  # none lost or twice
    assert index.maybe(added).all()


# -- the plain road ------------------------------------------------------------------------

def _track(**fields) -> bytes:
    call = {"event_id": "p1", "event": "click", "timestamp": "2026-01-02T03:04:05.5+01:00",
            "user_id": "u", **fields}
    return json.dumps({"batch": [call]}).encode()


PLAIN = [
    _track(),
    _track(timestamp="2026-01-02 03:04:05Z", channel="chat", properties={"x": [1, 2.50, "é"]}),
    _track(user_id="", anonymous_id="a", channel="", session_id="", context=None),
    _track(properties=None, context={"consent": {"analytics": True}}),
]
NOT_PLAIN = [
    _track(event=""),  # rejected by the writer: it says why
    _track(user_id=None),
    _track(channel="fax"),
    _track(properties=[1]),
    _track(context="text"),
    _track(timestamp="2026-01-02T03:04:05"),  # no offset
    _track(timestamp="2026-01-02"),
    _track(timestamp=" 2026-01-02T03:04:05Z"),  # valid, but not of the plain form
    _track(timestamp="2026-01-02T03:04:05.1234567Z"),
    _track(timestamp="2026-02-30T03:04:05Z"),  # the plain form, but no such day
    _track(timestamp="2026-01-02T03:04:05+0100"),
    # Outside the range events may carry (ingest.schema): never taken by the plain road.
    _track(timestamp="2026-01-02T03:04:05+14:30"),
    _track(timestamp="2026-01-02T03:04:05-15:00"),
    _track(timestamp="2026-01-02T03:04:05+05:60"),
    _track(timestamp="1969-12-31T23:59:59.999999Z"),
    _track(timestamp="0000-01-01T00:00:00Z"),
    _track(timestamp="9999-12-31T23:59:59Z"),
    _track(timestamp="2100-01-01T00:00:00Z"),
]


@pytest.mark.parametrize("body", PLAIN)
def test_plain_calls_are_judged_in_python(body: bytes) -> None:
    assert plain_table(track_calls(body)) is not None


@pytest.mark.parametrize("body", NOT_PLAIN)
def test_other_calls_are_judged_by_the_writer(body: bytes) -> None:
    calls = track_calls(body)
    assert calls is not None and plain_table(calls) is None


def test_the_plain_road_takes_the_edges_of_the_range_and_sends_the_rest_to_the_writer() -> None:
    """In one group, a request with a timestamp outside the range goes to the writer whole;
    the requests beside it stay plain, and so do the range's edges (1970, +14:00, a clock
    a little ahead)."""
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(hours=23)).isoformat(timespec="seconds")
    edges = ["1970-01-01T00:00:00Z", "2026-01-02T03:04:05+14:00", "2026-01-02T03:04:05-14:00", soon]
    requests = [[{"event_id": f"r{r}c{i}", "event": "click", "timestamp": ts, "user_id": "u"}
                 for i, ts in enumerate(timestamps)]
                for r, timestamps in enumerate([edges, [edges[0], "1969-12-31T23:59:59Z"], edges[1:],
                                                ["2026-01-02T03:04:05+14:01"]])]
    calls = track_calls(json.dumps({"batch": [c for request in requests for c in request]}).encode())
    values = track_columns(calls)
    rows, plain = plain_rows(values, track_rows(values), [len(r) for r in requests])
    assert plain.tolist() == [True, False, True, False]
    assert rows.column("event_id").to_pylist() == [c["event_id"] for r in (0, 2) for c in requests[r]]


def test_decoded_calls_are_not_tracked_by_the_garbage_collector() -> None:
    import gc

    calls = track_calls(PLAIN[0])
    assert calls and not any(gc.is_tracked(c) for c in calls)


def test_a_group_takes_the_plain_road_request_by_request() -> None:
    call = json.loads(PLAIN[0])["batch"][0]
    two = json.dumps({"batch": [call, {**call, "event_id": "p2", "timestamp": "2026-01-02"}]}).encode()
    bodies = [PLAIN[0], NOT_PLAIN[9], PLAIN[1], two, NOT_PLAIN[7], PLAIN[2], NOT_PLAIN[2], NOT_PLAIN[1],
              NOT_PLAIN[3], PLAIN[3]]
    values = track_columns([call for b in bodies for call in track_calls(b)])
    rows, plain = plain_rows(values, track_rows(values), [1, 1, 1, 2, 1, 1, 1, 1, 1, 1])
    # Feb 30; a date; a space; a channel; no id; properties not an object
    assert plain.tolist() == [True, False, True, False, False, True, False, False, False, True]
    alone = pa.concat_tables([plain_table(track_calls(bodies[i])) for i in (0, 2, 5, 9)])
    assert rows.to_pylist() == alone.drop_columns(["idx"]).to_pylist()
    assert rows.column("channel").to_pylist() == ["other", "chat", "other", "other"]
    assert rows.column("user_id").to_pylist() == ["u", "u", None, "u"]
    assert rows.column("session_id").to_pylist() == [None] * 4


def _written(rows: pa.Table, plain: bool, scrub: bool = True) -> list[tuple]:
    con = duckdb.connect()
    migrate(con)
    if plain:
        seq = pa.array(range(8, rows.num_rows + 8), pa.int64())
        write_plain(con, rows.select(list(EVENT_FIELDS)).append_column("seq", seq), source="http",
                    scrub=scrub)
    else:
        raw = rows.select(list(EVENT_FIELDS))
        raw = raw.append_column(ROW, pa.array(range(1, raw.num_rows + 1), pa.int64()))
        result = write_batch(con, raw, source="http", dedupe=False, json_text=True, base_seq=7)
        assert result.rejected == 0, result.rejects  # a plain call is one the writer accepts
    return con.execute(
        "SELECT event_id, seq, CAST(epoch_us(timestamp) AS BIGINT), event, anonymous_id, user_id, "
        "channel, session_id, CAST(properties AS VARCHAR), CAST(context AS VARCHAR), source "
        "FROM events ORDER BY seq").fetchall()


def _stamp(y: int, mo: int, d: int, sep: str, h: int, mi: int, s: int, frac: str, off: str) -> str:
    return f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{off}"


def _stamps(wide: bool) -> st.SearchStrategy[str]:
    """Timestamps of the plain form; ``wide``: many of them impossible (month 13, hour 24,
    offset +25:61)."""
    def n(low: int, high: int, over: int) -> st.SearchStrategy[int]:
        return st.integers(0 if wide else low, high + over if wide else high)
    offset = st.builds(lambda sign, hh, mm: f"{sign}{hh:02d}:{mm:02d}", st.sampled_from("+-"),
                       n(0, 23, 2), n(0, 59, 2))
    return st.builds(
        _stamp, n(1, 9999, 0), n(1, 12, 1), n(1, 28, 4), st.sampled_from("T "), n(0, 23, 2),
        n(0, 59, 2), n(0, 59, 2),
        st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=6).map(lambda f: "." + f)),
        st.one_of(st.just("Z"), offset))


_id = st.one_of(st.none(), st.just(""), st.text(max_size=6))
_object = st.one_of(st.none(), st.dictionaries(st.text(max_size=5), _json, max_size=3))
_plainish = st.fixed_dictionaries(
    {"event_id": st.text(min_size=1, max_size=8), "event": st.text(min_size=1, max_size=6),
     "timestamp": st.one_of(_stamps(False), _stamps(True)), "anonymous_id": _id,
     "user_id": st.text(min_size=1, max_size=6),
     "channel": st.one_of(st.none(), st.just(""), st.sampled_from(CHANNELS)),
     "session_id": _id, "properties": _object, "context": _object})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=st.lists(_plainish, min_size=1, max_size=3, unique_by=lambda c: c["event_id"]),
       indent=st.booleans())
def test_the_plain_road_stores_what_the_writer_stores(calls: list[dict], indent: bool) -> None:
    body = json.dumps({"batch": calls}, indent=1 if indent else None, ensure_ascii=indent).encode(
        "utf-8", "surrogatepass")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return
    tracks = track_calls(body)
    assert tracks is not None
    plain = plain_table(tracks)
    if plain is None:
        return
    written = _written(track_table(tracks), plain=False)
    assert _written(plain, plain=True) == written
    # What the collector journals (nothing to scrub, by the quick test) is stored unscrubbed.
    values = track_columns(tracks)
    if not may_hold_personal_data(values["properties"] + values["context"]):
        assert _written(plain, plain=True, scrub=False) == written


def test_the_store_holds_the_same_events_from_the_plain_road(tmp_path) -> None:
    calls = [
        {"event_id": "a", "event": "click", "timestamp": "2026-01-02T03:04:05.123+01:00", "user_id": "u",
         "channel": "web", "properties": {"x": 1.50, "note": "mail me: ann@example.com"}},
        {"event_id": "b", "event": "paid", "timestamp": "2026-01-02T03:04:06Z", "anonymous_id": "an",
         "context": {"traits": {"email": "ann@example.com"}, "ip": "+44 20 7946 0958"}},
    ]
    plain = json.dumps({"batch": calls}).encode()
    assert plain_table(track_calls(plain)) is not None
    slow = json.dumps({"batch": [*calls, {"type": "identify", "user_id": "u", "anonymous_id": "an",
                                          "timestamp": "2026-01-02T03:04:05Z"}]}).encode()
    rows = _stored([plain], tmp_path, "plain")
    assert [r[0] for r in rows] == ["a", "b"]
    assert "[email]" in rows[0][8] and "[phone]" in rows[1][9] and "ann@example.com" in rows[1][9]
    assert rows == _stored([slow], tmp_path, "slow")
    # With a journal: a body with nothing to scrub is journaled, the other stored at once.
    clean = json.dumps({"batch": [{**calls[0], "event_id": "c", "properties": {"x": 1.50}}]}).encode()
    journaled = _stored([plain, clean], tmp_path, "journaled", journal=True)
    assert journaled == _stored([slow, clean], tmp_path, "slow2")
    assert [r[0] for r in journaled] == ["a", "b", "c"]
