"""The data-quality analysis: arrivals per source and day, late and future events, the
commonest quarantine reasons and the identity merges, hand-counted on a real store, through
file ingest and a real collector on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

import microjourney as mj
from microjourney.registry.data_quality import COLLECTOR
from microjourney.server.storing import SOURCE
from microjourney.store import connect
from microjourney.store.batches import Tally, minute

from .live_server import LiveServer

SPEC = """\
name: dq
journeys: []
privacy: {consent: required}
identity: {keys: [email]}
"""
NOW = datetime.now(UTC)
HOUR_AGO = (NOW - timedelta(hours=1)).isoformat()
CONSENT = {"consent": {"analytics": True}}


def _row(event_id: str, ts: str = HOUR_AGO, context: dict | None = None, **fields: str) -> str:
    row = {"event_id": event_id, "timestamp": ts, "event": "view",
           "context": CONSENT if context is None else context, **fields}
    return json.dumps({k: v for k, v in row.items() if v is not None})


def _file(path: Path) -> Path:
    """Eleven lines: 6 accepted (one 3 days old: late), 1 duplicate, 3 rejected (a broken
    line, no event name, a timestamp 3 days ahead: future), 1 withheld (no consent)."""
    lines = [
        _row("e1", anonymous_id="a1"),
        _row("e1", anonymous_id="a1"),                                     # duplicate
        "{broken",                                                          # rejected
        _row("e4", anonymous_id="a1", event=None),                          # rejected
        _row("e5", anonymous_id="a9", context={}),                          # withheld
        _row("e6", (NOW + timedelta(days=3)).isoformat(), anonymous_id="a1"),  # future
        _row("e7", (NOW - timedelta(days=3)).isoformat(), anonymous_id="a1"),  # late
        _row("e8", user_id="u1"),
        _row("e9", anonymous_id="a4", user_id="u2"),                        # merges on an event
        _row("e10", anonymous_id="a2", context={**CONSENT, "traits": {"email": "Sam@Example.com"}}),
        _row("e11", anonymous_id="a3", context={**CONSENT, "traits": {"email": " sam@example.com"}}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path: Path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "microjourney.yaml").write_text(SPEC, encoding="utf-8")
    with mj.open(root) as opened:
        yield opened


def _by_source(df, source: str) -> dict:
    """A table's rows of ``source``, summed (the days of an ingest straddling midnight)."""
    rows = df[df["source"] == source]
    return {c: int(rows[c].sum()) for c in df.columns if c not in ("day", "source", "late_rate")}


def test_file_ingest_counts_by_hand(ws, tmp_path):
    path = _file(tmp_path / "f.jsonl")
    r = ws.ingest(path)
    assert (r.accepted, r.duplicates, r.rejected, r.withheld) == (6, 1, 3, 1)
    result = ws.analysis("data-quality")
    assert _by_source(result.table("days"), "f.jsonl") == {
        "received": 11, "accepted": 6, "duplicates": 1, "rejected": 3, "withheld": 1}
    timing = result.table("timing").set_index("source").loc["f.jsonl"]
    assert (timing.events, timing.late, timing.arrival_unknown, timing.future) == (6, 1, 0, 1)
    assert timing.late_rate == pytest.approx(1 / 6)
    assert not result.warnings
    # Stamped 3 days before arrival: late by a day, not by four.
    relaxed = ws.analysis("data-quality", late="4d").table("timing").set_index("source")
    assert relaxed.loc["f.jsonl", "late"] == 0
    reasons = {(x["field"], x["reason"]): x["rows"] for x in result.to_dict()["tables"]["reasons"]}
    assert reasons == {
        (None, "not valid JSON"): 1, ("event", "missing event name"): 1,
        ("timestamp", "timestamp … is out of range: the accepted range is 1970-01-01T00:00:00Z "
                      "to its arrival plus one day"): 1}

    # The same file again: everything stored is a duplicate, the broken rows are not
    # quarantined (nor counted) twice, the row without consent is withheld again.
    again = ws.ingest(path)
    assert (again.accepted, again.duplicates, again.rejected, again.withheld) == (0, 7, 0, 1)
    days = ws.analysis("data-quality").table("days")
    assert _by_source(days, "f.jsonl") == {
        "received": 19, "accepted": 6, "duplicates": 8, "rejected": 3, "withheld": 2}
    assert ws.analysis("data-quality", source="other.csv").table("days").empty


def test_identity_merges_by_events_calls_and_keys(ws, tmp_path):
    ws.ingest(_file(tmp_path / "f.jsonl"))
    before = ws.analysis("data-quality").table("identity").iloc[0].to_dict()
    # Ids a1, u1, a4, u2, a2, a3 (a9 was withheld): a4 and u2 on one event; a2 and a3 by
    # one e-mail address, written two ways.
    assert before == {"ids": 6, "persons": 4, "persons_with_several_ids": 2,
                      "merged_by_events": 1, "merged_by_calls": 0, "merged_by_keys": 1,
                      "key_values": 1}
    ws.write_identities([{"call_id": "c1", "kind": "identify", "timestamp": NOW - timedelta(hours=1),
                          "anonymous_id": "a1", "user_id": "u1"}])
    after = ws.analysis("data-quality").table("identity").iloc[0].to_dict()
    assert after == {"ids": 6, "persons": 3, "persons_with_several_ids": 3,
                     "merged_by_events": 1, "merged_by_calls": 1, "merged_by_keys": 1,
                     "key_values": 1}
    # ids − persons, whatever merged them.
    assert after["ids"] - after["persons"] == sum(after[k] for k in after if k.startswith("merged"))


def test_erasure_leaves_the_counts(ws, tmp_path):
    ws.ingest(_file(tmp_path / "f.jsonl"))
    rows = ws.con.execute("SELECT * FROM batches").fetchall()
    assert ws.forget("u2").counts["events"] == 1
    assert ws.con.execute("SELECT * FROM batches").fetchall() == rows
    assert [c[0] for c in ws.con.execute("DESCRIBE batches").fetchall()] == [
        "source", "minute", "accepted", "duplicates", "rejected", "withheld", "first_seq", "last_seq"]


def test_a_version_3_store_gets_the_arrivals_it_can_date(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "microjourney.yaml").write_text(SPEC.replace("privacy: {consent: required}\n", ""),
                                            encoding="utf-8")
    once, twice = tmp_path / "once.jsonl", tmp_path / "twice.jsonl"
    once.write_text(_row("o1", anonymous_id="a") + "\n" + _row("o2", anonymous_id="a") + "\n")
    twice.write_text(_row("t1", anonymous_id="b") + "\n")
    with mj.open(root) as ws:
        ws.ingest(once)
        ws.ingest(twice)
        with twice.open("a") as fh:
            fh.write(_row("t2", anonymous_id="b", ts=(NOW - timedelta(days=3)).isoformat()) + "\n")
        ws.ingest(twice)
        ws.con.execute("DROP TABLE batches")  # as the store was before arrivals were kept
        ws.con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with mj.open(root) as ws:
        result = ws.analysis("data-quality")
    days = result.table("days")
    assert _by_source(days, "once.jsonl") == {"received": 2, "accepted": 2, "duplicates": 0,
                                              "rejected": 0, "withheld": 0}
    assert _by_source(days, "twice.jsonl") == {"received": 3, "accepted": 2, "duplicates": 1,
                                               "rejected": 0, "withheld": 0}
    timing = result.table("timing").set_index("source")
    # A file ingested once is dated by its ingest; one ingested twice cannot be.
    assert timing.loc["once.jsonl", "arrival_unknown"] == 0
    assert timing.loc["twice.jsonl", ["events", "arrival_unknown", "late"]].tolist() == [2, 2, 0]
    assert [(w.code, dict(w.where)) for w in result.warnings] == [
        ("arrival-unknown", {"source": "twice.jsonl"})]


def test_the_tally_adds_each_minute_once(tmp_path):
    con = connect(tmp_path / "store.duckdb")
    tally = Tally(con.cursor(), "http", seq=10)
    totals = SimpleNamespace(accepted=5, duplicates=1, rejected=2, withheld=0)
    tally.tick(totals, 15)  # the same minute: nothing written yet
    assert con.execute("SELECT count(*) FROM batches").fetchall() == [(0,)]
    tally.flush(totals, 15)
    tally.flush(totals, 15)  # nothing new: nothing added
    totals.accepted, totals.withheld = 8, 4
    tally.tick(totals, 18, now=minute() + timedelta(minutes=1))  # the minute ends
    totals.accepted = 9
    tally.flush(totals, 19)
    rows = con.execute("SELECT accepted, duplicates, rejected, withheld, first_seq, last_seq "
                       "FROM batches ORDER BY minute").fetchall()
    assert rows == [(8, 1, 2, 4, 11, 18), (1, 0, 0, 0, 19, 19)]
    con.close()


def test_the_collector_counts_what_it_answers(tmp_path):
    assert SOURCE == COLLECTOR
    root = tmp_path / "ws"
    mj.init(root).close()
    keys = mj.workspace.keys(root)
    late = (NOW - timedelta(days=2)).isoformat()

    def track(i: int, **kw: str) -> dict:
        return {"type": "track", "event_id": f"h{i}", "event": "view", "timestamp": HOUR_AGO,
                "anonymous_id": "a", "channel": "web", **kw}

    with LiveServer(root) as server:
        with server.client(keys.write_key) as c:
            # Plain calls, journaled: 2 accepted (one 2 days old), 1 duplicate.
            plain = c.post("/v1/batch", json={"batch": [track(1), track(2, timestamp=late), track(1)]})
            # Judged by the writer: 1 accepted, 2 rejected (a channel, a timestamp ahead).
            judged = c.post("/v1/batch", json={"batch": [
                track(3, channel="fax"), track(4, timestamp=(NOW + timedelta(days=3)).isoformat()),
                track(5)]})
        assert [(b["accepted"], b["duplicates"], len(b["rejected"])) for b in
                (plain.json(), judged.json())] == [(2, 1, 0), (1, 0, 2)]
        with server.client(keys.secret_key) as c:
            served = c.get("/v1/analyses/data-quality").json()["tables"]
    with mj.open(root) as ws:
        result = ws.analysis("data-quality")
    expected = {"received": 6, "accepted": 3, "duplicates": 1, "rejected": 2, "withheld": 0}
    for days in (served["days"], result.to_dict()["tables"]["days"]):
        assert {k: sum(d[k] for d in days if d["source"] == "http") for k in expected} == expected
    timing = result.table("timing").set_index("source").loc["http"]
    assert (timing.events, timing.late, timing.arrival_unknown, timing.future) == (3, 1, 0, 1)
    fields = sorted(x.field for x in result.table("reasons").itertuples() if x.source == "http")
    assert fields == ["channel", "timestamp"]
