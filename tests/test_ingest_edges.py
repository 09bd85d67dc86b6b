"""Ingest edges a new user meets: clearing the quarantine, and the tolerance for timestamps
ahead of their arrival (``ingest.future_tolerance``) in files and the collector."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

import microjourney as mj

from .helpers import ev, write_events
from .live_server import LiveServer

ONE_HOUR = "journeys: []\ningest: {future_tolerance: 1h}\n"

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microjourney", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def quarantined(ws: mj.Workspace) -> list[tuple]:
    return ws.con.execute("SELECT source, row, field FROM quarantine ORDER BY source, row").fetchall()


def stored(ws: mj.Workspace, cols: str = "event, user_id, channel") -> list[tuple]:
    return ws.con.execute(f"SELECT {cols} FROM events ORDER BY seq").fetchall()


# -- quarantine --clear ------------------------------------------------------------------

def test_clear_quarantine_of_one_source_then_all(make_ws, tmp_path):
    ws = make_ws()
    bad = {"timestamp": "nope", "event": "x", "user_id": "u", "channel": "web"}
    ws.ingest(write_events(tmp_path / "a.csv", [ev("10:00:00", "ok"), bad, bad]))
    ws.ingest(write_events(tmp_path / "b.csv", [bad]))
    assert quarantined(ws) == [("a.csv", 2, "timestamp"), ("a.csv", 3, "timestamp"),
                               ("b.csv", 1, "timestamp")]
    assert ws.clear_quarantine("c.csv") == 0
    assert ws.clear_quarantine("a.csv") == 2
    assert quarantined(ws) == [("b.csv", 1, "timestamp")]
    assert ws.clear_quarantine() == 1
    assert quarantined(ws) == [] and stored(ws, "event") == [("ok",)]  # events are left alone
    # Once cleared, the file's bad rows are quarantined again by the next ingest of it.
    assert ws.ingest(tmp_path / "a.csv").rejected == 2


def test_cli_quarantine_clear(make_ws, tmp_path):
    ws = make_ws()
    root = ws.root
    bad = {"timestamp": "nope", "event": "x", "user_id": "u", "channel": "web"}
    ws.ingest(write_events(tmp_path / "a.csv", [bad, bad, bad]))
    ws.ingest(write_events(tmp_path / "b.csv", [bad]))
    ws.close()  # for the commands (the fixture's second close does nothing)
    one = cli("quarantine", "--clear", "--source", "a.csv", "--json", "-w", str(root), cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == {"removed": 3, "source": "a.csv"}
    # A name that matches nothing says which names there are.
    none = cli("quarantine", "--clear", "--source", str(tmp_path / "b.csv"), "-w", str(root), cwd=tmp_path)
    assert none.returncode == 0 and "removed 0 quarantined rows of" in none.stdout
    assert "sources in quarantine: b.csv" in none.stdout
    rest = cli("quarantine", "--clear", "-w", str(root), cwd=tmp_path)
    assert rest.returncode == 0 and rest.stdout.strip() == "removed 1 quarantined row"
    with mj.open(root) as again:
        assert quarantined(again) == []


# -- ingest.future_tolerance ------------------------------------------------------------------

def _ahead(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_file_ingest_honours_the_future_tolerance(make_ws, tmp_path):
    ws = make_ws(ONE_HOUR)
    rows = [{"timestamp": _ahead(minutes=30), "event": "soon", "user_id": "u", "channel": "web"},
            {"timestamp": _ahead(hours=2), "event": "late", "user_id": "u", "channel": "web"}]
    r = ws.ingest(write_events(tmp_path / "e.csv", rows))
    assert (r.accepted, r.rejected) == (1, 1)
    (reason,) = ws.con.execute("SELECT reason FROM quarantine").fetchall()[0]
    assert f"timestamp {rows[1]['timestamp']} is out of range: the accepted range is " \
           "1970-01-01T00:00:00Z to its arrival plus one hour (" in reason
    # The Parquet road (read by DuckDB, typed timestamps) is held to the same setting.
    table = pa.table({"timestamp": pa.array([datetime.now(UTC) + timedelta(hours=h) for h in (0.5, 2, 3)],
                                            pa.timestamp("us", "UTC")),
                      "event": ["a", "b", "c"], "user_id": ["u"] * 3})
    pq.write_table(table, tmp_path / "e.parquet")
    r = ws.ingest(tmp_path / "e.parquet")
    assert (r.accepted, r.rejected) == (1, 2)


def test_default_tolerance_is_one_day(make_ws, tmp_path):
    ws = make_ws("journeys: []\n")
    rows = [{"timestamp": _ahead(hours=20), "event": "a", "user_id": "u", "channel": "web"},
            {"timestamp": _ahead(hours=28), "event": "b", "user_id": "u", "channel": "web"}]
    r = ws.ingest(write_events(tmp_path / "e.csv", rows))
    assert (r.accepted, r.rejected) == (1, 1)
    assert "to its arrival plus one day (" in ws.con.execute("SELECT reason FROM quarantine").fetchall()[0][0]


def _workspace(root: Path, yaml: str) -> dict[str, str]:
    mj.init(root).close()
    (root / "microjourney.yaml").write_text(yaml, encoding="utf-8")
    k = mj.workspace.keys(root)
    return {"write": k.write_key}


def test_collector_honours_the_future_tolerance(tmp_path):
    root = tmp_path / "ws"
    key = _workspace(root, ONE_HOUR + "server: {rate_limit: 1000, burst: 1000}\n")["write"]

    def track(event_id: str | None, ts: str) -> dict:
        call = {"type": "track", "event": "e", "timestamp": ts, "user_id": "u", "channel": "web"}
        return call if event_id is None else {**call, "event_id": event_id}

    soon, late = _ahead(minutes=30), _ahead(hours=2)
    with LiveServer(root) as server, server.client(key) as c:
        answers = [c.post("/v1/batch", json={"batch": batch}) for batch in (
            [track("p1", soon)],  # the plain road: stored without the writer
            [track("p2", late)],  # plain in form: held back by the plain road's own check
            [track(None, soon), track(None, late)],  # no ids: the writer judges them
            [{"type": "identify", "user_id": "u", "timestamp": late}],
        )]
        server.stop()
    bodies = [a.json() for a in answers]
    assert [a.status_code for a in answers] == [200] * 4
    assert [(b["accepted"], len(b["rejected"])) for b in bodies] == [(1, 0), (0, 1), (1, 1), (0, 1)]
    assert bodies[1]["rejected"][0]["reason"].startswith(
        f"timestamp {late} is out of range: the accepted range is 1970-01-01T00:00:00Z to its arrival "
        "plus one hour (")
    assert bodies[2]["rejected"][0]["index"] == 1 and "plus one hour" in bodies[2]["rejected"][0]["reason"]
    assert bodies[3]["rejected"][0] == {"index": 0, "field": "timestamp", "reason":
                                        f"timestamp '{late}': the instant is more than one hour after "
                                        "its arrival"}
    with mj.open(root) as ws:
        assert ws.con.execute("SELECT count(*) FROM events").fetchall()[0][0] == 2
        assert ws.con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == 3


def test_collector_default_tolerance_takes_a_day(tmp_path):
    root = tmp_path / "ws"
    key = _workspace(root, "journeys: []\n")["write"]
    with LiveServer(root) as server, httpx.Client(base_url=server.url, timeout=30,
                                                  headers={"Authorization": f"Bearer {key}"}) as c:
        r = c.post("/v1/batch", json={"batch": [
            {"type": "track", "event_id": "a", "event": "e", "timestamp": _ahead(hours=2), "user_id": "u"}]})
    assert r.status_code == 200 and r.json()["accepted"] == 1
