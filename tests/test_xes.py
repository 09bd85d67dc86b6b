"""Tests of the streaming XES reader, on hand-written logs and on real public logs."""

from __future__ import annotations

import gc
import gzip
import html
import json
import re
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from microjourney.errors import IngestError
from microjourney.ingest.lines import Limits
from microjourney.ingest.schema import FIELDS, ROW
from microjourney.ingest.xes import SCHEMA, read_xes

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "eventlogs"

COLUMNS = [*FIELDS, ROW]

# A small log exercising every mapping rule. The <global> block and the log-level
# attributes must not turn into events or properties; the nested children of
# attributes must be ignored while the parent's own value is kept.
LOG = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" {xmlns}>
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="event">
    <string key="concept:name" value="UNKNOWN"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00.000+01:00"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <string key="source" value="log-level, ignored"/>
  <float key="meta" value="1.0"><float key="nested-meta" value="2.0"/></float>
  <trace>
    <string key="concept:name" value="case-1"/>
    <string key="AMOUNT_REQ" value="20000"/>
    <int key="items" value="3"/>
    <float key="score" value="1.5"/>
    <boolean key="vip" value="true"/>
    <date key="REG_DATE" value="2011-10-01T00:38:44.546+02:00"/>
    <event>
      <string key="concept:name" value="A_SUBMITTED"/>
      <date key="time:timestamp" value="2011-10-01T00:38:44.546+02:00"/>
      <string key="lifecycle:transition" value="COMPLETE"/>
      <string key="org:resource" value="112"/>
      <id key="identity:id" value="e-1"/>
      <int key="count" value="-7"/>
      <float key="amount" value="12.5"/>
      <boolean key="flag" value="false"/>
      <id key="ref" value="r-9"/>
      <string key="parent" value="kept"><int key="child" value="1"/></string>
      <container key="box"><string key="inside" value="ignored"/></container>
      <list key="items-list"><values><string key="x" value="ignored"/></values></list>
    </event>
    <event>
      <string key="concept:name" value="A_PARTLYSUBMITTED"/>
      <string key="AMOUNT_REQ" value="event wins"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="case-2"/>
    <event>
      <date key="time:timestamp" value="2011-10-02T10:00:00Z"/>
      <int key="bad-int" value="seven"/>
      <float key="nan" value="NaN"/>
      <boolean key="yes" value="1"/>
      <int key="huge" value="99999999999999999999"/>
      <int key="underscored" value="1_000"/>
    </event>
  </trace>
  <trace>
    <string key="origin" value="no case id"/>
    <event><string key="concept:name" value="orphan-case"/></event>
  </trace>
  <event><string key="concept:name" value="outside"/></event>
</log>
"""

XES_NS = 'xmlns="http://www.xes-standard.org/"'


def _write(tmp_path: Path, text: str, name: str = "log.xes", *, gz: bool = False) -> Path:
    path = tmp_path / name
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def _rows(path: Path, **kwargs) -> list[dict]:
    tables = list(read_xes(path, **kwargs))
    return pa.concat_tables(tables).to_pylist() if tables else []


@pytest.fixture(params=["namespaced", "plain-tags"])
def log_text(request) -> str:
    return LOG.format(xmlns=XES_NS if request.param == "namespaced" else "")


def test_schema_is_exact(tmp_path, log_text):
    (table,) = read_xes(_write(tmp_path, log_text))
    assert table.schema.names == COLUMNS
    assert table.schema == SCHEMA
    for field in table.schema:
        assert field.type == (pa.int64() if field.name == "__row" else pa.string())


def test_event_mapping(tmp_path, log_text):
    first = _rows(_write(tmp_path, log_text))[0]
    assert first["event_id"] == "e-1"
    assert first["timestamp"] == "2011-10-01T00:38:44.546+02:00"  # verbatim, not parsed
    assert first["event"] == "A_SUBMITTED"
    assert first["user_id"] == "case-1"
    for column in ("anonymous_id", "channel", "session_id", "context"):
        assert first[column] is None
    assert first["__row"] == 1
    assert json.loads(first["properties"]) == {
        "lifecycle:transition": "COMPLETE",
        "org:resource": "112",
        "count": -7,
        "amount": 12.5,
        "flag": False,
        "ref": "r-9",
        "parent": "kept",
        "case:AMOUNT_REQ": "20000",
        "case:items": 3,
        "case:score": 1.5,
        "case:vip": True,
        "case:REG_DATE": "2011-10-01T00:38:44.546+02:00",
    }


def test_properties_are_compact_json(tmp_path, log_text):
    props = _rows(_write(tmp_path, log_text))[0]["properties"]
    assert ": " not in props and ", " not in props
    assert '"count":-7' in props and '"flag":false' in props


def test_missing_attributes_become_null(tmp_path, log_text):
    rows = _rows(_write(tmp_path, log_text))
    second, third, fourth, fifth = rows[1:]
    assert second["timestamp"] is None and second["event_id"] is None
    assert second["event"] == "A_PARTLYSUBMITTED"
    # Event and trace attributes of the same key do not collide: the trace's is prefixed.
    assert json.loads(second["properties"])["AMOUNT_REQ"] == "event wins"
    assert json.loads(second["properties"])["case:AMOUNT_REQ"] == "20000"
    assert third["event"] is None and third["user_id"] == "case-2"
    assert third["timestamp"] == "2011-10-02T10:00:00Z"
    assert fourth["user_id"] is None and fourth["event"] == "orphan-case"
    assert json.loads(fourth["properties"]) == {"case:origin": "no case id"}
    assert fifth["user_id"] is None and fifth["event"] == "outside"
    assert json.loads(fifth["properties"]) == {}


def test_unparseable_typed_values_stay_text(tmp_path, log_text):
    props = json.loads(_rows(_write(tmp_path, log_text))[2]["properties"])
    assert props == {
        "bad-int": "seven",
        "nan": "NaN",
        "yes": True,
        "huge": "99999999999999999999",
        "underscored": "1_000",
    }


def test_rows_numbered_across_traces_and_batches(tmp_path, log_text):
    path = _write(tmp_path, log_text)
    tables = []
    for table in read_xes(path, batch_size=2):
        assert gc.isenabled()  # the reader pauses the collector only while it works
        tables.append(table)
    assert [t.num_rows for t in tables] == [2, 2, 1]
    assert all(t.schema == SCHEMA for t in tables)
    rows = pa.concat_tables(tables).to_pylist()
    assert [r["__row"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows == _rows(path)  # batching changes nothing but the cut


def test_gzip_reads_the_same(tmp_path, log_text):
    plain = _rows(_write(tmp_path, log_text))
    assert _rows(_write(tmp_path, log_text, "log.xes.gz", gz=True)) == plain
    # Compression is recognised by content, not by the file name.
    assert _rows(_write(tmp_path, log_text, "misnamed.xes", gz=True)) == plain


def test_namespaced_and_plain_tags_agree(tmp_path):
    namespaced = _rows(_write(tmp_path, LOG.format(xmlns=XES_NS), "a.xes"))
    other_ns = _rows(_write(tmp_path, LOG.format(xmlns='xmlns="urn:other"'), "b.xes"))
    plain = _rows(_write(tmp_path, LOG.format(xmlns=""), "c.xes"))
    assert namespaced == plain == other_ns
    assert len(plain) == 5


def test_misplaced_structure_is_skipped(tmp_path):
    text = f"""<log {XES_NS}>
      <global scope="event"><event><string key="concept:name" value="in global"/></event></global>
      <trace>
        <string key="concept:name" value="c"/>
        <event>
          <string key="concept:name" value="real"/>
          <container key="box">
            <event><string key="concept:name" value="nested"/></event>
          </container>
        </event>
        <trace><string key="concept:name" value="inner"/><event/></trace>
      </trace>
    </log>"""
    rows = _rows(_write(tmp_path, text))
    assert [(r["event"], r["user_id"], r["__row"]) for r in rows] == [("real", "c", 1)]
    assert json.loads(rows[0]["properties"]) == {}


def test_log_without_events_yields_nothing(tmp_path):
    text = f'<log {XES_NS}><trace><string key="concept:name" value="x"/></trace></log>'
    path = _write(tmp_path, text)
    assert list(read_xes(path)) == []


def test_malformed_xml_names_file_and_line(tmp_path):
    path = _write(tmp_path, '<log>\n<trace>\n<event><string key="a" value="b"></event>\n</log>')
    with pytest.raises(IngestError) as info:
        list(read_xes(path))
    assert str(path) in info.value.message
    assert ":3:" in info.value.message and "not well-formed" in info.value.message
    assert info.value.code == "ingest/unreadable"


def test_truncated_document_is_an_ingest_error(tmp_path):
    path = _write(tmp_path, LOG.format(xmlns="")[:600], "cut.xes.gz", gz=True)
    with pytest.raises(IngestError, match=re.escape(str(path))):
        list(read_xes(path))


def test_corrupt_gzip_is_an_ingest_error(tmp_path):
    path = tmp_path / "corrupt.xes.gz"
    path.write_bytes(gzip.compress(LOG.format(xmlns="").encode())[:200])
    with pytest.raises(IngestError, match=re.escape(str(path))):
        list(read_xes(path))


def test_not_an_xes_log(tmp_path):
    path = _write(tmp_path, "<html><body>hello</body></html>", "page.xes")
    with pytest.raises(IngestError, match=r"page\.xes.*not an XES log"):
        list(read_xes(path))


def test_missing_file(tmp_path):
    with pytest.raises(IngestError, match="nope.xes") as info:
        list(read_xes(tmp_path / "nope.xes"))
    assert info.value.code == "ingest/missing"


def test_batch_size_must_be_positive(tmp_path, log_text):
    with pytest.raises(ValueError):
        list(read_xes(_write(tmp_path, log_text), batch_size=0))


def _events(n: int, *, value: str = "x") -> str:
    events = "".join(f'<event><string key="concept:name" value="e{i}"/><string key="note" value="{value}"/>'
                     f'<date key="time:timestamp" value="2024-01-01T10:00:00Z"/></event>' for i in range(n))
    return f'<log><trace><string key="concept:name" value="c"/>{events}</trace></log>'


def test_past_max_file_bytes_the_events_before_are_yielded_then_an_error(tmp_path):
    path = _write(tmp_path, _events(2000), gz=True)
    got: list[pa.Table] = []
    with pytest.raises(IngestError, match=r"stopped reading after 50,000 bytes \(ingest") as info:
        got.extend(read_xes(path, batch_size=100, limits=Limits(max_file_bytes=50_000)))
    assert info.value.code == "ingest/too-large"
    rows = pa.concat_tables(got).column("event").to_pylist()
    # Every event that ended within the first 50,000 bytes, in order, and none after.
    assert 0 < len(rows) < 2000 and rows == [f"e{i}" for i in range(len(rows))]
    assert len(rows) * 140 < 50_000


def test_an_element_that_never_ends_stops_reading(tmp_path):
    path = _write(tmp_path, _events(3) + "<!-- " + "x" * 300_000)
    with pytest.raises(IngestError, match=r"no element ends in the [\d,]+ bytes after byte") as info:
        list(read_xes(path, limits=Limits(max_line_bytes=100_000)))
    assert info.value.code == "ingest/too-large"
    long_value = _write(tmp_path, _events(2, value="v" * 300_000), name="long.xes")
    with pytest.raises(IngestError, match="ingest.max_line_bytes is 100,000"):
        list(read_xes(long_value, limits=Limits(max_line_bytes=100_000)))
    assert len(_rows(long_value, limits=Limits(max_line_bytes=400_000))) == 2


# --- real logs -------------------------------------------------------------------------


def _real(name: str) -> Path:
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"real data not available: {path} (shared/realdata/ is not beside the repo)")
    return path


_TRACE = re.compile(rb"<trace>(.*?)</trace>", re.S)
_EVENT = re.compile(rb"<event>(.*?)</event>", re.S)
_NAME = re.compile(rb'key="concept:name"\s+value="([^"]*)"')


def _independent_pass(path: Path) -> tuple[int, set[str], dict[str, set[str]]]:
    """Count events, cases and cases per activity with regexes, not the reader.

    Valid for the real logs used here: every event is inside a ``<trace>`` and the
    case id is the trace's first ``concept:name`` before its first event.
    """
    text = gzip.decompress(path.read_bytes())
    events, cases, by_activity = 0, set(), defaultdict(set)
    for trace in _TRACE.finditer(text):
        body = trace.group(1)
        head = body.split(b"<event", 1)[0]
        case_name = _NAME.search(head)
        assert case_name, "every trace of these logs names its case before its events"
        case = html.unescape(case_name.group(1).decode())
        cases.add(case)
        for event in _EVENT.finditer(body):
            events += 1
            activity = _NAME.search(event.group(1))
            if activity:
                by_activity[html.unescape(activity.group(1).decode())].add(case)
    return events, cases, by_activity


def _read_all(path: Path) -> pa.Table:
    return pa.concat_tables(read_xes(path))


def _cases_with(table: pa.Table, activity: str) -> int:
    hit = table.filter(pc.equal(table["event"], activity))
    return pc.count_distinct(hit["user_id"]).as_py()


def _check_against_independent_pass(table: pa.Table, path: Path) -> dict[str, set[str]]:
    events, cases, by_activity = _independent_pass(path)
    assert table.num_rows == events
    assert set(table["user_id"].to_pylist()) == cases
    assert table["__row"].to_pylist() == list(range(1, events + 1))
    # These logs are complete: every event has a case, a name and a timestamp.
    for column in ("user_id", "event", "timestamp"):
        assert table[column].null_count == 0, column
    for activity, activity_cases in by_activity.items():
        assert _cases_with(table, activity) == len(activity_cases), activity
    return by_activity


def test_helpdesk_log():
    path = _real("helpdesk.xes.gz")
    table = _read_all(path)
    _check_against_independent_pass(table, path)
    assert table.num_rows == 21_348
    assert pc.count_distinct(table["user_id"]).as_py() == 4_580
    assert pc.count_distinct(table["event"]).as_py() == 14
    first = table.slice(0, 1).to_pylist()[0]
    assert first["user_id"] == "Case 1" and first["event"] == "Assign seriousness"
    assert first["timestamp"] == "2012-10-09T14:50:17+00:00"
    assert json.loads(first["properties"])["org:resource"] == "Value 1"


# Published counts for BPI Challenge 2012: cases with at least one such event.
BPIC2012_CASES_WITH = {
    "A_SUBMITTED": 13_087,
    "A_PREACCEPTED": 7_367,
    "A_ACCEPTED": 5_113,
    "A_FINALIZED": 5_015,
    "A_APPROVED": 2_246,
    "A_DECLINED": 7_635,
    "A_CANCELLED": 2_807,
}


@pytest.mark.slow
def test_bpic2012_log():
    path = _real("bpic2012.xes.gz")
    table = _read_all(path)
    by_activity = _check_against_independent_pass(table, path)
    assert table.num_rows == 262_200
    assert pc.count_distinct(table["user_id"]).as_py() == 13_087
    assert pc.count_distinct(table["event"]).as_py() == 24
    for activity, published in BPIC2012_CASES_WITH.items():
        assert len(by_activity[activity]) == published, activity
        assert _cases_with(table, activity) == published, activity
    first = table.slice(0, 1).to_pylist()[0]
    assert first["user_id"] == "173688" and first["event"] == "A_SUBMITTED"
    assert first["timestamp"] == "2011-10-01T00:38:44.546+02:00"
    props = json.loads(first["properties"])
    assert props["lifecycle:transition"] == "COMPLETE"
    assert props["case:AMOUNT_REQ"] == "20000"
