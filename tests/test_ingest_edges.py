"""Ingest edges a new user meets: clearing the quarantine, a file whose rows are all
rejected (exit 1 and the likeliest fix), ``--value`` in every reader, and the tolerance for
timestamps ahead of their arrival (``ingest.future_tolerance``) in files and the collector."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import microjourney as mj
from microjourney.errors import IngestError
from microjourney.ingest.advice import Rejections, guess_channel, kind

from .helpers import ev, write_events
from .live_server import LiveServer

ALLOWED = "web, app, chat, voice, agent, email, sms, store, other"
ONE_HOUR = "journeys: []\ningest: {future_tolerance: 1h}\n"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "microjourney", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def quarantined(ws: mj.Workspace) -> list[tuple]:
    return ws.con.execute("SELECT source, row, field FROM quarantine ORDER BY source, row").fetchall()


def stored(ws: mj.Workspace, cols: str = "event, user_id, channel") -> list[tuple]:
    return ws.con.execute(f"SELECT {cols} FROM events ORDER BY seq").fetchall()


def closed(make_ws) -> Path:
    """A new workspace's folder, closed so that a command can open it."""
    ws = make_ws()
    ws.close()
    return ws.root


def _csv(path: Path, header: str, *lines: str) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


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


# -- every row rejected: exit 1 and the likeliest fix --------------------------------------

def test_naive_timestamps_exit_1_and_suggest_a_timezone(make_ws, tmp_path):
    root = closed(make_ws)
    path = _csv(tmp_path / "clicks.csv", "timestamp,event,user_id",
                "2024-01-01T10:00:00,a,u1", "2024-01-01T10:00:01,b,u1", "2024-01-01 10:00:02,c,u2")
    done = cli("ingest", str(path), "-w", str(root), cwd=tmp_path)
    assert done.returncode == 1
    assert "clicks.csv: 0 accepted, 0 duplicate, 3 rejected" in done.stdout
    assert "error [ingest/all-rejected]" in done.stderr
    assert "all 3 rows were rejected, all of them for reasons like this one: timestamp " \
           "2024-01-01T10:00:00 has no time zone offset" in done.stderr
    assert "--timezone Europe/Paris" in done.stderr
    with mj.open(root) as ws:  # the rows are quarantined as ever
        assert [r[1:] for r in quarantined(ws)] == [(1, "timestamp"), (2, "timestamp"), (3, "timestamp")]
    # Ingested again as it is: nothing new is quarantined, and it still fails, saying why.
    again = cli("ingest", str(path), "-w", str(root), "--json", cwd=tmp_path)
    assert again.returncode == 1 and json.loads(again.stdout)[0]["rejected"] == 0
    assert "--timezone Europe/Paris" in again.stderr
    fixed = cli("ingest", str(path), "-w", str(root), "--timezone", "Europe/Paris", cwd=tmp_path)
    assert fixed.returncode == 0 and "3 accepted" in fixed.stdout and not fixed.stderr


def test_missing_columns_suggest_map_with_the_files_columns(make_ws, tmp_path):
    ws = make_ws()
    path = _csv(tmp_path / "clicks.csv", "ts,action,customer,platform",
                "2024-01-01T10:00:00Z,click,c1,desktop", "2024-01-01T10:00:01Z,view,c2,desktop")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected, r.invalid) == (0, 2, 2)
    assert r.advice == (
        "all 2 rows were rejected, all of them for reasons like this one: missing event name. "
        "Likeliest fix: say which columns hold the event, timestamp and user_id (or anonymous_id): "
        "--map event=your_column --map timestamp=your_column --map user_id=your_column "
        "(columns that are not event fields: ts, action, customer, platform)")
    r = ws.ingest(path, mapping={"event": "action", "timestamp": "ts"})
    assert r.advice.endswith("say which column holds the user_id (or anonymous_id): "
                             "--map user_id=your_column (columns that are not event fields: "
                             "customer, platform)")


def test_unknown_channels_list_the_allowed_and_suggest_value(make_ws, tmp_path):
    root = closed(make_ws)
    path = _csv(tmp_path / "clicks.csv", "ts,action,customer,platform",
                "2024-01-01T10:00:00Z,click,c1,desktop", "2024-01-01T10:00:01Z,view,c2,desktop",
                "2024-01-01T10:00:02Z,view,c2,iOS", "2024-01-01T10:00:03Z,view,c3,kiosk")
    maps = ["--map", "event=action", "--map", "timestamp=ts", "--map", "user_id=customer",
            "--map", "channel=platform"]
    done = cli("ingest", str(path), *maps, "-w", str(root), cwd=tmp_path)
    assert done.returncode == 1
    assert (f"all 4 rows were rejected, all of them for reasons like this one: unknown channel desktop; "
            f"allowed: {ALLOWED}. Likeliest fix: name the channels as microjourney does ({ALLOWED}), "
            "e.g. --value channel:desktop=web --value channel:iOS=app --value channel:kiosk=other") \
        in " ".join(done.stderr.split())
    fixed = cli("ingest", str(path), *maps, "--value", "channel:desktop=web", "--value", "channel:iOS=app",
                "--value", "channel:kiosk=store", "-w", str(root), cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    with mj.open(root) as ws:
        assert stored(ws) == [("click", "c1", "web"), ("view", "c2", "web"), ("view", "c2", "app"),
                              ("view", "c3", "store")]


def test_a_file_partly_kept_exits_0(make_ws, tmp_path):
    root = closed(make_ws)
    path = write_events(tmp_path / "e.csv", [ev("10:00:00", "a"), ev("10:00:01", "b", channel="fax")])
    done = cli("ingest", str(path), "-w", str(root), cwd=tmp_path)
    assert done.returncode == 0 and "1 accepted, 0 duplicate, 1 rejected" in done.stdout
    # A file of duplicates only is not a rejected file either.
    again = cli("ingest", str(path), "-w", str(root), cwd=tmp_path)
    assert again.returncode == 0 and "0 accepted, 1 duplicate, 0 rejected" in again.stdout


def test_one_file_rejected_among_several_exits_1_after_ingesting_all(make_ws, tmp_path):
    root = closed(make_ws)
    good = write_events(tmp_path / "good.csv", [ev("10:00:00", "a")])
    bad = _csv(tmp_path / "bad.csv", "timestamp,event,user_id", "2024-01-01T10:00:00,a,u1")
    later = write_events(tmp_path / "later.csv", [ev("10:00:01", "b")])
    done = cli("ingest", str(good), str(bad), str(later), "-w", str(root), cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.count("ingest/all-rejected") == 1
    assert f"{bad}: all 1 rows were rejected" in " ".join(done.stderr.split())
    with mj.open(root) as ws:
        assert stored(ws, "event") == [("a",), ("b",)]


def test_unreadable_lines_advise_the_format(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "e.jsonl"
    path.write_text("timestamp,event,user_id\n2024-01-01T10:00:00Z,a,u1\n", encoding="utf-8")
    r = ws.ingest(path)
    assert (r.accepted, r.rejected, r.invalid) == (0, 2, 2)
    assert "line 1: not valid JSON" in r.advice and "check the format (--format csv" in r.advice


def test_parquet_rows_all_rejected_are_counted_across_slices(make_ws, tmp_path):
    from microjourney.ingest.readers import parquet_columns
    from microjourney.store import write_parquet

    ws = make_ws()
    table = pa.table({"timestamp": [f"2024-01-01T10:00:0{i}" for i in range(5)],
                      "event": ["a"] * 5, "user_id": ["u"] * 5})
    pq.write_table(table, tmp_path / "e.parquet")
    r = ws.ingest(tmp_path / "e.parquet")
    assert (r.accepted, r.rejected, r.invalid) == (0, 5, 5)
    assert "--timezone Europe/Paris" in r.advice
    # The writer hands each slice's invalid rows over: 5 rows in slices of 2 are 2 + 2 + 1.
    seen: list[int] = []
    columns, schema = parquet_columns(tmp_path / "e.parquet")
    write_parquet(ws.con, str(tmp_path / "e.parquet"), columns, schema, source="again.parquet",
                  batch_rows=2, on_rejects=lambda rejects: seen.append(len(rejects)))
    assert seen == [2, 2, 1]


def test_rejections_count_kinds_and_pick_the_commonest():
    r = Rejections()
    r.add([(1, "channel", f"unknown channel Mobile App; allowed: {ALLOWED}"),
           (2, "timestamp", "timestamp 2024-01-01 10:00 has no time zone offset (give one)"),
           (3, "channel", f"unknown channel Mobile App; allowed: {ALLOWED}")],
          columns=["timestamp", "event", "user_id", "channel", "__row"])
    assert (r.rows, dict(r.kinds), dict(r.channels)) == (3, {"channel": 2, "naive": 1}, {"Mobile App": 2})
    assert r.advice(kept=1) is None
    text = r.advice(kept=0)
    assert text.startswith("all 3 rows were rejected, 2 of them for reasons like this one: unknown "
                           "channel Mobile App")
    assert text.endswith("e.g. --value 'channel:Mobile App=app'")  # quoted for the shell
    assert [kind("timestamp", t) for t in ("missing timestamp", "timestamp x is not an ISO 8601 "
            "date-time", "timestamp x has a UTC offset beyond ±14:00", "timestamp x is out of range")] \
        == ["no-timestamp", "not-iso", "offset", "range"]
    assert [guess_channel(v) for v in ("Desktop", "android", "web", "kiosk")] == \
        ["web", "app", "web", "other"]


# -- --value in every reader ----------------------------------------------------------------

def test_value_maps_csv_before_judging_and_keeps_the_raw_value(make_ws, tmp_path):
    ws = make_ws()
    path = _csv(tmp_path / "c.csv", "timestamp,action,customer,platform",
                "2024-01-01T10:00:00Z,click,c1,desktop", "2024-01-01T10:00:01Z,click,N/A,desktop",
                "2024-01-01T10:00:02Z,click,c2,tv")
    r = ws.ingest(path, mapping={"event": "action", "user_id": "customer", "channel": "platform"},
                  values={"channel": {"desktop": "web"}, "user_id": {"N/A": ""}, "event": {"click": "tap"}})
    assert (r.accepted, r.rejected) == (1, 2)
    assert stored(ws) == [("tap", "c1", "web")]
    q = ws.con.execute("SELECT row, field, reason, raw FROM quarantine ORDER BY row").fetchall()
    # A value mapped to nothing is missing; the quarantined row is the file's, as it was.
    assert [(row, field, reason) for row, field, reason, _ in q] == [
        (2, "user_id", "neither anonymous_id nor user_id is given"),
        (3, "channel", f"unknown channel tv; allowed: {ALLOWED}")]
    raw = json.loads(q[0][3])
    assert (raw["user_id"], raw["channel"]) == ("N/A", "desktop")


def test_value_maps_jsonl(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "e.jsonl.gz"
    lines = [{"timestamp": "2024-01-01T10:00:00Z", "event": "a", "user_id": "u1", "platform": "desktop"},
             {"timestamp": "2024-01-01T10:00:01Z", "event": "b", "user_id": "u1", "platform": "ios"},
             {"timestamp": "2024-01-01T10:00:02Z", "event": "c", "user_id": "u1"}]
    path.write_bytes(gzip.compress("\n".join(json.dumps(x) for x in lines).encode()))
    r = ws.ingest(path, mapping={"channel": "platform"}, values={"channel": {"desktop": "web", "ios": "app"}},
                  channel="email")
    assert (r.accepted, r.rejected) == (3, 0)
    assert stored(ws) == [("a", "u1", "web"), ("b", "u1", "app"), ("c", "u1", "email")]


def test_value_maps_parquet_typed_and_text_columns(make_ws, tmp_path):
    ws = make_ws()
    table = pa.table({
        "ts": pa.array([datetime(2024, 1, 1, 10, i, tzinfo=UTC) for i in range(3)],
                       pa.timestamp("us", "UTC")),
        "name": ["a", "b", "c"], "who": pa.array(["u1", "u2", "u3"]).dictionary_encode(),
        "platform": ["desktop", "web", "shop"]})
    pq.write_table(table, tmp_path / "e.parquet")
    r = ws.ingest(tmp_path / "e.parquet", mapping={"timestamp": "ts", "event": "name", "user_id": "who",
                                                    "channel": "platform"},
                  values={"channel": {"desktop": "web", "shop": "store"}, "user_id": {"u3": "u1"}})
    assert (r.accepted, r.rejected) == (3, 0)
    assert stored(ws) == [("a", "u1", "web"), ("b", "u2", "web"), ("c", "u1", "store")]


def test_value_maps_xes(make_ws, tmp_path):
    ws = make_ws()
    path = tmp_path / "log.xes"
    event = '<event><string key="concept:name" value="{}"/><date key="time:timestamp" value="{}"/></event>'
    path.write_text(f"""<log xes.version="1.0">
  <trace><string key="concept:name" value="case-1"/>
    {event.format("A", "2024-01-01T10:00:00Z")}
    {event.format("B", "2024-01-01T10:00:01Z")}
  </trace>
</log>
""", encoding="utf-8")
    r = ws.ingest(path, values={"event": {"A": "payment_opened"}, "user_id": {"case-1": "u9"}})
    assert (r.accepted, r.rejected) == (2, 0)
    assert stored(ws) == [("payment_opened", "u9", "other"), ("B", "u9", "other")]


def test_value_option_is_checked(make_ws, tmp_path):
    root = closed(make_ws)
    path = write_events(tmp_path / "e.csv", [ev("10:00:00", "a")])
    for option, says in (("timestamp:x=y", "the values of 'timestamp' cannot be mapped"),
                         ("channel", "write FIELD:FROM=TO"), ("channel:=web", "write FIELD:FROM=TO")):
        done = cli("ingest", str(path), "--value", option, "-w", str(root), cwd=tmp_path)
        assert done.returncode == 2 and "[ingest/mapping]" in done.stderr and says in done.stderr, option
    twice = cli("ingest", str(path), "--value", "channel:a=web", "--value", "channel:a=app", "-w", str(root),
                cwd=tmp_path)
    assert twice.returncode == 2 and "'a' is already mapped to 'web'" in twice.stderr
    # FROM may hold '=' (it is the file's value); TO is after the last one.
    from microjourney.ingest.readers import parse_value, value_map
    assert parse_value("event:a=b=c") == ("event", "a=b", "c")
    assert value_map(["user_id:n/a=", "channel:pc=web"]) == {"user_id": {"n/a": ""}, "channel": {"pc": "web"}}
    with mj.open(root) as ws, pytest.raises(IngestError, match="cannot be mapped"):
        ws.ingest(path, values={"properties": {"a": "b"}})


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
    assert (r.accepted, r.rejected, r.advice) == (1, 2, None)
    # All rows too far ahead: the advice names the setting.
    r = ws.ingest(write_events(tmp_path / "late.csv", rows[1:]))
    assert r.invalid == 1 and "raise ingest.future_tolerance" in r.advice


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
