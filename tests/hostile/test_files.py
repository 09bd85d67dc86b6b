"""Hostile files: nothing a file holds can exhaust memory, crash a command or cost good rows.

* compressed bombs (100 MiB of zeros in 100 kB of gzip) are read in bounded memory, measured
  as the peak resident size of a subprocess that ingests them;
* a line that is too long, not UTF-8 or nested too deep is quarantined alone, cut, with its
  line number and what is wrong; the lines after it are loaded;
* a CSV header past the csv module's 128 kB limit is read; one past ``max_line_bytes`` is a
  clear error naming line 1; past ``max_file_bytes`` reading stops and says what was kept;
* timestamps out of range and offsets beyond ±14:00 are rejected in every format;
* a context gets the same consent verdict from file ingest as from the collector's batch.

Every subprocess has a wall-clock bound several times what it needs on a loaded machine.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import microjourney as mj
from microjourney.cli import app
from microjourney.errors import IngestError
from microjourney.ingest.lines import RAW_BYTES, Limits, chunks
from microjourney.ingest.records import records
from microjourney.store.quarantine import RAW_CHARS
from microjourney.store.writer import write_batch

from ..helpers import PAYMENT_YAML

MiB = 2**20
GOOD = {"timestamp": "2024-01-01T10:00:00Z", "event": "a", "user_id": "u1", "channel": "web"}


def _good(i: int) -> dict:
    return {**GOOD, "event_id": f"e{i}"}


def _zeros_gz(path: Path, mib: int, head: bytes = b"") -> Path:
    """``head`` then ``mib`` MiB of zero bytes, gzipped in memory-light steps (about 100 kB)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    block = bytes(MiB)
    with path.open("wb") as fh:
        fh.write(z.compress(head))
        for _ in range(mib):
            fh.write(z.compress(block))
        fh.write(z.compress(b"\n" + json.dumps({**GOOD, "event": "after"}).encode() + b"\n"
                            if path.name.endswith(".jsonl.gz") else b"\n2024-01-01T10:00:00Z,after,u1,web\n"))
        fh.write(z.flush())
    return path


_CHILD = """
import json, resource, sys
import microjourney as mj
from microjourney.errors import MicrojourneyError
with mj.open(sys.argv[1]) as ws:
    try:
        r = ws.ingest(sys.argv[2])
        out = {"accepted": r.accepted, "rejected": r.rejected}
    except MicrojourneyError as exc:
        out = {"error": exc.code, "message": str(exc)}
    out["reasons"] = [x[0] for x in ws.con.execute("SELECT reason FROM quarantine ORDER BY row").fetchall()]
    out["raw"] = ws.con.execute("SELECT max(length(raw ->> 'text')) FROM quarantine").fetchall()[0][0]
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _ingest_in_child(root: Path, path: Path, timeout: float = 120) -> dict:
    """Ingest ``path`` into the workspace ``root`` in a subprocess; its result and peak RSS."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(path)], capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _workspace(tmp_path: Path, extra: str = "") -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "microjourney.yaml").write_text(PAYMENT_YAML + extra, encoding="utf-8")
    return root


def _baseline_mb(root: Path, tmp_path: Path) -> float:
    small = tmp_path / "small.jsonl"
    small.write_text(json.dumps(GOOD) + "\n")
    return _ingest_in_child(root, small)["peak_mb"]


@pytest.mark.parametrize("name", ["z.jsonl.gz", "z.csv.gz"])
def test_gzip_bomb_is_read_in_bounded_memory(tmp_path, name):
    root = _workspace(tmp_path)
    base = _baseline_mb(root, tmp_path)
    head = b"" if name.endswith(".jsonl.gz") else b"timestamp,event,user_id,channel\n"
    bomb = _zeros_gz(tmp_path / name, 120, head)
    assert bomb.stat().st_size < 1 * MiB
    out = _ingest_in_child(root, bomb)
    # One line of 120 MiB: quarantined cut, with its length; the line after it is loaded.
    assert out["accepted"] == 1 and out["rejected"] == 1
    assert f"{120 * MiB:,} bytes long, over ingest.max_line_bytes" in out["reasons"][0]
    assert out["raw"] <= RAW_BYTES
    # The whole 120 MiB went through a few MiB of buffers (it passed 4 GB before).
    assert out["peak_mb"] - base < 150, (out["peak_mb"], base)


def test_past_max_file_bytes_reading_stops_and_says_what_was_kept(tmp_path):
    root = _workspace(tmp_path, "ingest: {max_file_bytes: 100000}\n")
    lines = [json.dumps(_good(i)) for i in range(5000)]
    path = tmp_path / "e.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with mj.open(root) as ws:
        with pytest.raises(IngestError, match=r"stopped reading after 100,000 bytes.*lines 1 to \d+ "
                                              r"were read and ingested") as err:
            ws.ingest(path)
        assert err.value.code == "ingest/too-large"
        kept = int(str(err.value).split("lines 1 to ")[1].split()[0].replace(",", ""))
        stored = ws.con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        logged = ws.con.execute("SELECT source, accepted FROM ingests").fetchall()
    assert logged == [("e.jsonl.gz", stored)]  # the ingest of the kept rows is logged
    # Every whole line within the first 100,000 bytes, none after.
    read = sum(len(line) + 1 for line in lines[:kept])
    assert stored == kept and read <= 100_000 < read + len(lines[kept]) + 1


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("where", [3, 600])
def test_invalid_utf8_is_quarantined_per_line_and_the_rest_is_kept(make_ws, tmp_path, fmt, where):
    ws = make_ws()
    rows = [_good(i) for i in range(1000)]
    if fmt == "jsonl":
        lines = [json.dumps(r).encode() for r in rows]
    else:
        names = list(rows[0])
        lines = [",".join(names).encode()] + [",".join(str(r[n]) for n in names).encode() for r in rows]
    lines[where] = lines[where].replace(b"u1", b"u\xff\xfe1")
    path = tmp_path / f"e.{fmt}"
    path.write_bytes(b"\n".join(lines) + b"\n")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected) == (999, 1)
    (row, reason), = ws.con.execute("SELECT row, reason FROM quarantine").fetchall()
    number = where + 1  # the physical line
    assert reason.startswith(f"line {number}: not valid UTF-8 (byte 0xff at column ")
    assert row == (number if fmt == "jsonl" else number - 1)  # CSV rows are numbered from the header


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_long_line_is_quarantined_cut_and_reading_resumes(tmp_path, fmt):
    root = _workspace(tmp_path, "ingest: {max_line_bytes: 2000}\n")
    names = list(_good(0))
    good = [json.dumps(_good(i)) if fmt == "jsonl" else ",".join(str(v) for v in _good(i).values())
            for i in range(6)]
    long = (json.dumps({**_good(99), "properties": {"x": "y" * 50_000}}) if fmt == "jsonl"
            else ",".join(["2024-01-01T10:00:00Z", "a", "u1", "web", "z" * 50_000]))
    lines = ([",".join(names)] if fmt == "csv" else []) + good[:3] + [long] + good[3:]
    path = tmp_path / f"e.{fmt}"
    path.write_text("\n".join(lines) + "\n")
    with mj.open(root) as ws:
        r = ws.ingest(path)
        q = ws.con.execute("SELECT reason, CAST(raw AS VARCHAR) FROM quarantine").fetchall()
    assert (r.accepted, r.rejected) == (6, 1)
    number = 5 if fmt == "csv" else 4
    assert q[0][0] == (f"line {number}: {len(long):,} bytes long, over ingest.max_line_bytes (2,000); "
                       f"kept its first {RAW_BYTES:,} bytes")
    assert json.loads(q[0][1])["text"] == long[:RAW_BYTES]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(0, 90), min_size=1, max_size=40),
       limit=st.integers(1, 60), read=st.integers(1, 64), gz=st.booleans())
def test_lines_match_a_plain_split_at_any_read_size(tmp_path, lengths, limit, read, gz):
    """Whatever the read size, every line is either handed over whole or rejected as too long."""
    lines = [bytes([97 + i % 26]) * n for i, n in enumerate(lengths)]
    data = b"\n".join(lines) + b"\n"
    path = tmp_path / ("l.gz" if gz else "l.txt")
    path.write_bytes(gzip.compress(data) if gz else data)
    good, long = {}, {}
    for chunk in chunks(path, Limits(max_line_bytes=limit), read_bytes=read):
        good.update(zip(chunk.numbers.tolist(), chunk.data.split(b"\n"), strict=False))
        long.update((r.row, r.reason) for r in chunk.rejects)
    assert good == {i + 1: line for i, line in enumerate(lines) if len(line) <= limit}
    assert set(long) == {i + 1 for i, line in enumerate(lines) if len(line) > limit}
    for number, reason in long.items():
        assert f"{len(lines[number - 1]):,} bytes long" in reason


def test_csv_header_over_128_kb_is_read_and_over_the_limit_is_an_error(make_ws, tmp_path):
    ws = make_ws()
    key = "k" * 200_000  # past the csv module's default field limit of 131,072
    path = tmp_path / "wide.csv"
    path.write_text(f"timestamp,event,user_id,{key}\n2024-01-01T10:00:00Z,a,u1,v\n")
    assert ws.ingest(path).accepted == 1
    assert json.loads(ws.con.execute("SELECT properties FROM events").fetchall()[0][0]) == {key: "v"}
    huge = tmp_path / "huge.csv"
    huge.write_text("timestamp,event," + "x" * (2 * MiB) + "\n2024-01-01T10:00:00Z,a\n")
    with pytest.raises(IngestError, match=r"huge.csv:1: the CSV header cannot be read: .*bytes long, "
                                          r"over ingest.max_line_bytes") as err:
        ws.ingest(huge)
    assert err.value.code == "ingest/header"


def test_deep_json_line_is_quarantined_and_the_quarantine_command_works(tmp_path):
    root = _workspace(tmp_path)
    deep = '{"event": "a", "user_id": "u", "properties": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "deep.jsonl"
    path.write_text(deep + "\n" + json.dumps(GOOD) + "\n")
    with mj.open(root) as ws:
        r = ws.ingest(path)
    assert (r.accepted, r.rejected) == (1, 1)
    runner = CliRunner()
    for args in (["quarantine"], ["quarantine", "--json"]):
        res = runner.invoke(app, [*args, "-w", str(root)], env={"COLUMNS": "200"})
        assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["meta"]["total"] == 1 and "depth limit exceeded" in out["tables"]["rows"][0]["reason"]


def test_quarantined_row_judged_bad_is_bounded(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({"event": "a", "user_id": "u", "properties": {"x": "y" * 100_000}}) + "\n")
    assert ws.ingest(path).rejected == 1
    reason, raw = ws.con.execute("SELECT reason, CAST(raw AS VARCHAR) FROM quarantine").fetchall()[0]
    assert reason.startswith("missing timestamp; the raw row (")
    assert f"characters) is kept cut to its first {RAW_CHARS:,}" in reason
    assert len(json.loads(raw)["text"]) == RAW_CHARS


OUT_OF_RANGE = ["275760-09-13T00:00:00Z", "-0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
                "2999-01-01T00:00:00Z"]
BAD_OFFSETS = ["2024-01-01T00:00:00+99:00", "2024-01-01T00:00:00-14:01", "2024-01-01T00:00:00+1500"]
FINE = ["2024-01-01T00:00:00+14:00", "2024-01-01T00:00:00-12:00", "1970-01-01T00:00:00Z"]


def _timestamp_file(tmp_path: Path, fmt: str, stamps: list[str]) -> Path:
    rows = [{**GOOD, "event_id": f"t{i}", "timestamp": t} for i, t in enumerate(stamps)]
    path = tmp_path / f"t.{fmt}"
    if fmt == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    elif fmt == "csv":
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        events = "".join(f'<event><string key="concept:name" value="a"/><string key="identity:id" '
                         f'value="t{i}"/><date key="time:timestamp" value="{t}"/></event>'
                         for i, t in enumerate(stamps))
        path.write_text(f'<log><trace><string key="concept:name" value="u1"/>{events}</trace></log>')
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "xes"])
def test_out_of_range_timestamps_and_offsets_are_rejected_in_text_formats(make_ws, tmp_path, fmt):
    ws = make_ws()
    r = ws.ingest(_timestamp_file(tmp_path, fmt, OUT_OF_RANGE + BAD_OFFSETS + FINE))
    assert (r.accepted, r.rejected) == (len(FINE), len(OUT_OF_RANGE) + len(BAD_OFFSETS))
    q = ws.con.execute("SELECT field, reason FROM quarantine ORDER BY row").fetchall()
    assert {f for f, _ in q} == {"timestamp"}
    for (_, reason), stamp in zip(q, OUT_OF_RANGE + BAD_OFFSETS, strict=True):
        assert reason.startswith(f"timestamp {stamp} ")
        assert (" has a UTC offset beyond ±14:00" in reason if stamp in BAD_OFFSETS else
                "is out of range: the accepted range is 1970-01-01T00:00:00Z to its arrival plus one day"
                in reason)
    # Nothing stored breaks a read.
    assert len(ws.con.execute("SELECT timestamp FROM events").fetchall()) == len(FINE)
    ws.events().to_pandas()


def test_out_of_range_typed_parquet_timestamps_are_rejected(make_ws, tmp_path):
    ws = make_ws()
    micros = [-1, 0, 1704103200000000, 253402300799000000, 8_640_000_000_000_000_000 // 1000]
    table = pa.table({"event_id": [f"p{i}" for i in range(5)],
                      "timestamp": pa.array(micros, pa.timestamp("us", tz="UTC")),
                      "event": ["a"] * 5, "user_id": ["u"] * 5})
    pq.write_table(table, tmp_path / "t.parquet")
    r = ws.ingest(tmp_path / "t.parquet")
    assert (r.accepted, r.rejected) == (2, 3)
    rows = [x[0] for x in ws.con.execute("SELECT row FROM quarantine ORDER BY row").fetchall()]
    assert rows == [1, 4, 5]


def test_collector_batches_reject_the_same_timestamps(make_ws):
    ws = make_ws()
    stamps = OUT_OF_RANGE + BAD_OFFSETS + FINE
    batch = pa.table({"event_id": [f"h{i}" for i in range(len(stamps))], "timestamp": stamps,
                      "event": ["a"] * len(stamps), "user_id": ["u"] * len(stamps),
                      "properties": ["{}"] * len(stamps), "context": [None] * len(stamps)})
    r = write_batch(ws.con, batch, source="http", dedupe=False, json_text=True)
    assert (r.accepted, r.rejected) == (len(FINE), len(OUT_OF_RANGE) + len(BAD_OFFSETS))
    assert {field for _, field, _ in r.rejects} == {"timestamp"}


CONTEXTS = [
    '{"consent": {"analytics": true}}',
    '{"consent": {"analytics": false, "analytics": true}}',
    '{"consent": {"analytics": true, "analytics": false}}',
    '{"consent": {"analytics": true}, "consent": {"analytics": false}}',
    '{"consent": {"analytics": false}, "consent": {"analytics": true}}',
    json.dumps(json.dumps({"consent": {"analytics": True}})),  # a JSON string holding the object
    json.dumps(json.dumps({"consent": {"analytics": False}})),
    '{"consent": {"analytics": "true"}}',
    '{"consent": "{\\"analytics\\": true}"}',
    '{"consent": [true]}',
    "[1]",
    "null",
]


def _expected(text: str) -> bool:
    """The documented rule, as orjson reads JSON: the last of a repeated key, a string once unwrapped."""
    value = orjson.loads(text)
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return False
    consent = value.get("consent") if isinstance(value, dict) else None
    return isinstance(consent, dict) and consent.get("analytics") is True


def test_consent_verdicts_are_the_same_for_files_and_the_collector(make_ws, tmp_path):
    spec = PAYMENT_YAML + "privacy: {consent: required}\n"
    expected = [_expected(c) for c in CONTEXTS]
    assert expected.count(True) == 4
    # File ingest: one JSON line per context, as written.
    ws = make_ws(spec, name="file")
    path = tmp_path / "c.jsonl"
    path.write_text("".join(f'{{"event_id": "c{i}", "timestamp": "2024-01-01T10:00:00Z", "event": "a", '
                            f'"user_id": "u", "context": {c}}}\n' for i, c in enumerate(CONTEXTS)))
    ws.ingest(path)
    by_file = {r[0] for r in ws.con.execute("SELECT event_id FROM events").fetchall()}
    # The collector's batch: the context as the JSON text received.
    http = make_ws(spec, name="http")
    n = len(CONTEXTS)
    batch = pa.table({"event_id": [f"c{i}" for i in range(n)], "timestamp": ["2024-01-01T10:00:00Z"] * n,
                      "event": ["a"] * n, "user_id": ["u"] * n, "properties": [None] * n,
                      "context": [None if c == "null" else c for c in CONTEXTS]})
    r = write_batch(http.con, batch, source="http", json_text=True, consent_required=True)
    by_http = {x[0] for x in http.con.execute("SELECT event_id FROM events").fetchall()}
    assert by_file == by_http == {f"c{i}" for i, ok in enumerate(expected) if ok}
    assert r.withheld == n - 4


def test_a_store_written_before_the_limits_is_upgraded_and_reads_again(tmp_path):
    # A version-2 store holding what the old code let in: a deep line quarantined as a bare
    # JSON string, and events outside the timestamp range.
    root = _workspace(tmp_path)
    path = tmp_path / "good.jsonl"
    path.write_text(json.dumps(_good(1)) + "\n")
    with mj.open(root) as ws:
        assert ws.ingest(path).accepted == 1
        con = ws.con
        con.execute("INSERT INTO quarantine VALUES ('old.jsonl', 1, NULL, 'not JSON', ?, now())",
                    [json.dumps("[" * 100_000)])
        for i, ts in enumerate(["275760-09-13 00:00:00+00", "1900-01-01 00:00:00+00"]):
            con.execute("INSERT INTO events SELECT ?, 100 + ?, CAST(? AS TIMESTAMPTZ), 'a', NULL, "
                        "'u-old', 'web', NULL, NULL, NULL, 'old.jsonl'", [f"old{i}", i, ts])
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with mj.open(root) as ws:
        summary = ws.summary()
        assert summary["events"] == 1 and summary["quarantined"] == 3
        assert summary["period"][0].startswith("2024-01-01")
        moved = ws.con.execute("SELECT reason, raw ->> '$.user_id' FROM quarantine "
                               "WHERE field = 'timestamp' ORDER BY reason").fetchall()
        assert [u for _, u in moved] == ["u-old", "u-old"]
        assert all("outside 1970-01-01 to arrival plus one day" in r for r, _ in moved)
        (text,) = ws.con.execute("SELECT raw ->> '$.text' FROM quarantine "
                                 "WHERE source = 'old.jsonl' AND reason = 'not JSON'").fetchall()[0]
        assert len(text) == RAW_CHARS
    res = CliRunner().invoke(app, ["quarantine", "--json", "-w", str(root)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["meta"]["total"] == 3


# -- CSV records that span lines ------------------------------------------------------

FIELD_TEXT = st.text(alphabet=['a', 'é', ' ', ',', '"', '\n', 'x'], max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(FIELD_TEXT, min_size=3, max_size=3), min_size=1, max_size=25),
       read=st.integers(1, 64))
def test_csv_records_with_line_breaks_are_whole_at_any_read_size(tmp_path, rows, read):
    """Quoted fields may hold line breaks: whatever the read size, records are handed over
    whole, numbered by their first line, and parse to the rows written."""
    path = tmp_path / "r.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    got, rejected = [], []
    for whole in records(chunks(path, Limits(), read_bytes=read), Limits()):
        rejected += whole.chunk.rejects
        lines = whole.chunk.data.split(b"\n")
        start = 0
        for i, goes_on in enumerate(whole.joined.tolist()):
            if not goes_on:
                got.append((int(whole.chunk.numbers[start]), b"\n".join(lines[start:i + 1])))
                start = i + 1
    assert rejected == []
    assert [next(csv.reader([text.decode()])) for _, text in got] == rows
    starts = [1]
    for r in rows[:-1]:  # each record starts after the line breaks the rows before it hold
        starts.append(starts[-1] + 1 + sum(f.count("\n") for f in r))
    assert [n for n, _ in got] == starts


def test_csv_notes_with_line_breaks_are_ingested_across_reads(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "notes.csv"
    n = 60_000  # about 6 MB: records cross the reader's 4 MiB reads
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["event_id", "timestamp", "event", "user_id", "channel", "note"])
        for i in range(n):
            note = f'called back, "line" {i}\nsecond line\r\nthird' if i % 3 == 0 else f"plain {i}"
            out.writerow([f"e{i}", "2024-01-01T10:00:00Z", "a", f"u{i % 50}", "web", note])
    r = ws.ingest(path)
    assert (r.accepted, r.rejected) == (n, 0)
    got = dict(ws.con.execute("SELECT event_id, properties ->> '$.note' FROM events "
                              "WHERE event_id IN ('e0', 'e1', 'e59997')").fetchall())
    assert got == {"e0": 'called back, "line" 0\nsecond line\r\nthird', "e1": "plain 1",
                   "e59997": 'called back, "line" 59997\nsecond line\r\nthird'}


@pytest.mark.parametrize("limit", [MiB, 300])
def test_a_stray_quote_costs_its_line_only(tmp_path, limit):
    root = _workspace(tmp_path, f"ingest: {{max_line_bytes: {limit}}}\n")
    path = tmp_path / "stray.csv"
    lines = ["timestamp,event,user_id,channel"]
    lines += [f'2024-01-01T10:00:{i:02d}Z,{"b" if i == 3 else "a"},u{i},web' for i in range(40)]
    lines[4] = '2024-01-01T10:00:03Z,b"roken,u3,web'  # one quote, never closed
    path.write_text("\n".join(lines) + "\n")
    with mj.open(root) as ws:
        r = ws.ingest(path)
        (reason,) = ws.con.execute("SELECT reason FROM quarantine").fetchall()[0]
    assert (r.accepted, r.rejected) == (39, 1)
    assert reason.startswith("line 5: a quoted field opened on this line is not closed")


def test_a_line_nested_deeper_than_json_is_written_back_is_quarantined(make_ws, tmp_path):
    # orjson reads 1,024 levels but writes 254: such a line is a reject, not a crashed ingest.
    ws = make_ws()
    deep: dict = {"a": 1}
    for _ in range(300):
        deep = {"x": deep}
    path = tmp_path / "e.jsonl"
    path.write_text(json.dumps({**GOOD, "properties": deep}) + "\n" + json.dumps(_good(2)) + "\n")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected) == (1, 1)
    (reason,) = ws.con.execute("SELECT reason FROM quarantine").fetchall()[0]
    assert reason.startswith("line 1: properties is nested too deep to store")
