"""File ingest: every format, quarantine with row and reason, idempotent re-ingest."""

from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from microjourney.errors import IngestError

from .helpers import ev, write_events


def stored(ws, cols="event, user_id, channel, timestamp::VARCHAR AS ts, properties"):
    return ws.con.execute(f"SELECT {cols} FROM events ORDER BY seq").fetchall()


def test_csv_quarantines_bad_rows_with_row_field_and_reason(make_ws, tmp_path):
    ws = make_ws()
    rows = [
        ev("10:00:00", "a"),
        {"timestamp": "2024-01-01T10:00:00", "event": "b", "user_id": "u1", "channel": "web"},
        ev("10:00:00", "c", channel="phone"),
        {"timestamp": "yesterday", "event": "d", "user_id": "u1", "channel": "web"},
        {"timestamp": "2024-01-01T10:00:00Z", "event": "", "user_id": "u1", "channel": "web"},
        {"timestamp": "2024-01-01T10:00:00Z", "event": "f", "channel": "web"},
        ev("10:00:00", "g", properties="[1, 2]"),
        ev("10:00:01", "h", properties={"valid": True}),
    ]
    result = ws.ingest(write_events(tmp_path / "mixed.csv", rows))
    assert (result.accepted, result.duplicates, result.rejected) == (2, 0, 6)
    q = ws.con.execute("SELECT source, row, field, reason FROM quarantine ORDER BY row").fetchall()
    assert q == [
        ("mixed.csv", 2, "timestamp", "timestamp 2024-01-01T10:00:00 has no time zone offset "
                                      "(give one, or ingest with --timezone)"),
        ("mixed.csv", 3, "channel", "unknown channel phone; allowed: web, app, chat, voice, agent, "
                                    "email, sms, store, other"),
        ("mixed.csv", 4, "timestamp", "timestamp yesterday is not an ISO 8601 date-time"),
        ("mixed.csv", 5, "event", "missing event name"),
        ("mixed.csv", 6, "user_id", "neither anonymous_id nor user_id is given"),
        ("mixed.csv", 7, "properties", "properties is not a JSON object"),
    ]
    raw = json.loads(ws.con.execute("SELECT raw FROM quarantine WHERE row = 3").fetchall()[0][0])
    assert raw["channel"] == "phone" and raw["event"] == "c"
    assert [r[0] for r in stored(ws)] == ["a", "h"]


def test_reingest_adds_nothing(make_ws, tmp_path):
    ws = make_ws()
    rows = [ev("10:00:00", "a"), ev("10:00:01", "b"), ev("10:00:01", "b"),
            {"timestamp": "bad", "event": "x", "user_id": "u", "channel": "web"}]
    path = write_events(tmp_path / "e.csv", rows)
    first = ws.ingest(path)
    # Two identical rows in one file are two events; the bad row is quarantined once.
    assert (first.accepted, first.duplicates, first.rejected) == (3, 0, 1)
    again = ws.ingest(path)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert ws.con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 3
    assert ws.con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == 1
    ids = [r[0] for r in ws.con.execute("SELECT event_id FROM events").fetchall()]
    assert len(set(ids)) == 3 and all(i.startswith("mj-") for i in ids)


def test_explicit_event_ids_deduplicate_across_files(make_ws, tmp_path):
    ws = make_ws()
    a = write_events(tmp_path / "a.csv", [ev("10:00:00", "a", event_id="e1"),
                                          ev("10:00:01", "b", event_id="e2"),
                                          ev("10:00:02", "b2", event_id="e2")])
    b = write_events(tmp_path / "b.csv", [ev("10:00:00", "a", event_id="e1"),
                                          ev("10:00:03", "c", event_id="e3")])
    r1, r2 = ws.ingest(a), ws.ingest(b)
    assert (r1.accepted, r1.duplicates) == (2, 1)  # e2 twice in one file: the first is kept
    assert (r2.accepted, r2.duplicates) == (1, 1)
    assert [r[0] for r in stored(ws)] == ["a", "b", "c"]


def test_same_instant_keeps_source_order(make_ws, tmp_path):
    ws = make_ws()
    names = ["z", "a", "m", "b"]
    ws.ingest(write_events(tmp_path / "e.csv", [ev("10:00:00", n) for n in names]))
    assert [r[0] for r in stored(ws)] == names


def test_timestamps_stored_utc_and_timezone_option(make_ws, tmp_path):
    ws = make_ws()
    ws.ingest(write_events(tmp_path / "e.csv", [
        {"timestamp": "2024-01-01T12:00:00+02:00", "event": "a", "user_id": "u", "channel": "web"},
        {"timestamp": "2024-01-01T10:30:00Z", "event": "b", "user_id": "u", "channel": "web"}]))
    naive = write_events(tmp_path / "naive.csv", [
        {"timestamp": "2024-07-01 12:00:00", "event": "c", "user_id": "u", "channel": "web"}])
    ws.ingest(naive, timezone="Europe/Amsterdam")
    assert [r[3] for r in stored(ws)] == ["2024-01-01 10:00:00+00", "2024-01-01 10:30:00+00",
                                          "2024-07-01 10:00:00+00"]


def test_jsonl_bad_lines_and_extra_keys(make_ws, tmp_path):
    ws = make_ws()
    lines = [
        json.dumps({"timestamp": "2024-01-01T10:00:00Z", "event": "a", "anonymous_id": "x",
                    "channel": "app", "properties": {"valid": True}, "amount": 12.5}),
        "{not json",
        "[1, 2]",
        "",
        json.dumps({"timestamp": "2024-01-01T10:00:01Z", "event": "b", "anonymous_id": "x"}),
    ]
    path = tmp_path / "e.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    r = ws.ingest(path, channel="app")
    assert (r.accepted, r.rejected) == (2, 2)
    q = ws.con.execute("SELECT row, reason FROM quarantine ORDER BY row").fetchall()
    assert q[0][0] == 2 and q[0][1].startswith("line 2: not valid JSON")
    assert q[1] == (3, "line 3: not a JSON object")
    rows = stored(ws)
    # Keys that are not event fields join the properties, keeping their JSON types.
    assert json.loads(rows[0][4]) == {"valid": True, "amount": 12.5}
    assert rows[1][2] == "app"  # the --channel default fills rows without a channel


def test_parquet_typed_columns(make_ws, tmp_path):
    ws = make_ws()
    table = pa.table({
        "id": ["p1", "p2"],
        "timestamp": pa.array([1704103200000000, 1704103201000000], pa.timestamp("us", tz="UTC")),
        "event": ["a", "b"], "customer": ["c1", "c1"], "channel": ["app", "app"],
        "properties": pa.array([{"valid": True}, {"valid": False}],
                               pa.struct([("valid", pa.bool_())])),
    })
    pq.write_table(table, tmp_path / "e.parquet")
    r = ws.ingest(tmp_path / "e.parquet", mapping={"user_id": "customer", "event_id": "id"})
    assert r.accepted == 2
    rows = ws.con.execute("SELECT event_id, user_id, timestamp::VARCHAR, properties FROM events "
                          "ORDER BY seq").fetchall()
    assert rows[0][:3] == ("p1", "c1", "2024-01-01 10:00:00+00")
    assert json.loads(rows[1][3]) == {"valid": False}


def test_process_mining_csv_columns_map_by_default(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "log.csv"
    path.write_text("case:concept:name,concept:name,time:timestamp,org:resource\n"
                    "case-1,Submit,2011-10-01 00:38:44.546000+02:00,112\n"
                    "case-1,Approve,2011-10-01 08:00:00+02:00,11\n")
    assert ws.ingest(path).accepted == 2
    rows = stored(ws)
    assert rows[0][:2] == ("Submit", "case-1") and rows[0][3] == "2011-09-30 22:38:44.546+00"
    assert json.loads(rows[0][4]) == {"org:resource": "112"}
    assert rows[0][2] == "other"


def test_csv_wrong_column_count_is_quarantined_with_its_line(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "e.csv"
    path.write_text("timestamp,event,user_id,channel\n2024-01-01T10:00:00Z,a,u,web\n"
                    "2024-01-01T10:00:01Z,b,u,web,surplus\n2024-01-01T10:00:02Z,c,u,web\n")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected) == (2, 1)
    assert ws.con.execute("SELECT row, reason FROM quarantine").fetchall() == [
        (2, "line 3: expected 4 columns, found 5")]


def test_file_level_errors(make_ws, tmp_path):
    ws = make_ws()
    with pytest.raises(IngestError, match="no such file"):
        ws.ingest(tmp_path / "missing.csv")
    (tmp_path / "e.txt").write_text("x")
    with pytest.raises(IngestError, match="cannot tell the format.*--format"):
        ws.ingest(tmp_path / "e.txt")
    path = write_events(tmp_path / "e.csv", [ev("10:00:00", "a")])
    with pytest.raises(IngestError, match="'person' is not an event field"):
        ws.ingest(path, mapping={"person": "user_id"})
    with pytest.raises(IngestError, match="has no column 'customer'; columns: timestamp, event"):
        ws.ingest(path, mapping={"user_id": "customer"})
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(IngestError, match="not a readable Parquet file"):
        ws.ingest(tmp_path / "bad.parquet")


def test_hostile_text_is_stored_verbatim(make_ws, tmp_path):
    ws = make_ws()
    evil = "x'); DROP TABLE events; --"
    ws.ingest(write_events(tmp_path / "e.csv", [ev("10:00:00", evil, who=evil,
                                                   properties={"q": evil})]))
    assert stored(ws, "event, user_id, properties ->> 'q'") == [(evil, evil, evil)]


def _parquet(path, rows):
    pq.write_table(pa.table({k: [r.get(k) for r in rows] for k in rows[0]}), path)
    return path


def test_parquet_slices_duplicates_and_bad_rows(make_ws, tmp_path):
    from microjourney.ingest.readers import parquet_columns
    from microjourney.store import write_parquet

    ws = make_ws()
    rows = [{**ev(f"10:00:0{i}", f"e{i}"), "event_id": f"id{i}"} for i in range(7)]
    rows[5]["event_id"] = "id1"  # the same id again, in a later slice
    rows[3]["channel"] = "fax"  # a bad row with an id
    path = _parquet(tmp_path / "e.parquet", rows)
    columns, schema = parquet_columns(path)
    r = write_parquet(ws.con, str(path), columns, schema, source="e.parquet", batch_rows=2)
    assert (r.accepted, r.duplicates, r.rejected) == (5, 1, 1)
    assert ws.con.execute("SELECT row, field FROM quarantine").fetchall() == [(4, "channel")]
    assert [x[0] for x in stored(ws)] == ["e0", "e1", "e2", "e4", "e6"]
    again = write_parquet(ws.con, str(path), columns, schema, source="e.parquet", batch_rows=3)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 6, 0)


def test_parquet_without_some_ids(make_ws, tmp_path):
    ws = make_ws()
    rows = [{**ev("10:00:00", "a"), "event_id": "x1"}, {**ev("10:00:01", "b"), "event_id": None},
            {**ev("10:00:01", "b"), "event_id": ""}]
    path = _parquet(tmp_path / "e.parquet", rows)
    assert ws.ingest(path).accepted == 3  # two identical rows without ids stay two events
    assert ws.ingest(path).duplicates == 3
    ids = [r[0] for r in ws.con.execute("SELECT event_id FROM events ORDER BY seq").fetchall()]
    assert ids[0] == "x1" and ids[1] != ids[2] and ids[1].startswith("mj-")


def test_csv_crlf_bom_blank_lines_keep_their_row_numbers(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "e.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,event,user_id\r\n2024-01-01T10:00:00Z,a,u\r\n\r\n"
                     b"2024-01-01T10:00:01Z,b\r\n2024-01-01T10:00:02Z,c,\xff\r\n2024-01-01T10:00:03Z,d,u\r\n")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected) == (2, 2)
    assert [x[0] for x in stored(ws)] == ["a", "d"]
    assert ws.con.execute("SELECT row, reason FROM quarantine ORDER BY row").fetchall() == [
        (3, "line 4: expected 3 columns, found 2"),
        (4, "line 5: not valid UTF-8 (byte 0xff at column 24: invalid start byte)")]
    assert ws.con.execute("SELECT max(seq) - min(seq) FROM events").fetchall()[0][0] == 4  # rows 1 and 5


def test_jsonl_string_properties_and_context_are_read_as_the_json_they_hold(make_ws, tmp_path):
    """As tools that export JSON columns as text write them (DuckDB, pandas)."""
    ws = make_ws()
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({**ev("10:00:00", "a"), "properties": json.dumps({"n": 1}),
                                "context": json.dumps({"os": "x"})}) + "\n")
    assert ws.ingest(path).accepted == 1
    assert stored(ws, "properties ->> 'n', context ->> 'os'") == [("1", "x")]
