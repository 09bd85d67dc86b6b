"""The demo's HTTP path: `microjourney demo` sends the contact centre's events through the
collector with the Python client, and the store ends up as if every file had been ingested."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import microjourney as mj
from microjourney.demo.generate import BROKEN
from microjourney.demo.live import Collector, send
from microjourney.demo.surveys import import_exports
from microjourney.errors import MicrojourneyError

PERSONS = 400
SENT = re.compile(r"Sent ([\d,]+) chat/voice/agent events through the collector "
                  r"\((http://127\.0\.0\.1:\d+)\) in [\d.]+s")


def lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def texts_of(data: Path) -> list[dict[str, str]]:
    with (data / "support_texts.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def csv_rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def exported(root: Path) -> int:
    """The post-call survey answers, support texts and journey NPS answers the demo imports
    (one event a row)."""
    return (csv_rows(root / "data" / "ivr_survey.csv") + csv_rows(root / "data" / "support_texts.csv")
            + csv_rows(root / "data" / "shop_nps.csv"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`microjourney demo` on a small population, as a user runs it: its folder and output."""
    root = tmp_path_factory.mktemp("demo") / "demo"
    command = [sys.executable, "-m", "microjourney", "demo", str(root), "--persons", str(PERSONS)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root, done.stdout


def test_the_events_stored_after_the_first_build_are_taken_in_incrementally(demo: tuple[Path, str]) -> None:
    root, out = demo
    text = out.replace("\n", " ")
    built = re.search(r"Derived tables built in [\d.]+s \(([\d,]+) events\)", text)
    since = re.search(r"Incremental refresh: the ([\d,]+) events stored since, ([\d,]+) of ([\d,]+) "
                      r"persons' rows computed again in [\d.]+s", text)
    assert built and since, out
    # After the first build: the notifications (the replay adds none), the post-call survey
    # answers and the support texts.
    later = lines(root / "data" / "notifications.jsonl") + exported(root)
    with mj.open(root) as ws:
        stored = ws.con.execute("select count(*) from events").fetchall()[0][0]
        persons = ws.con.execute("select count(distinct person) from persons").fetchall()[0][0]
    assert int(since[1].replace(",", "")) == later
    assert int(built[1].replace(",", "")) + later == stored
    assert int(since[3].replace(",", "")) == persons
    assert 0 < int(since[2].replace(",", "")) < persons  # some persons, not all


def test_contact_centre_events_arrive_through_the_collector(demo: tuple[Path, str]) -> None:
    root, out = demo
    data = root / "data"
    found = SENT.search(out.replace("\n", " "))
    assert found, out
    live = lines(data / "contact_centre_live.jsonl")
    assert int(found[1].replace(",", "")) == live > 0
    assert "contact_centre.csv" not in out  # the export is not ingested: nothing stored twice
    assert (f"sms_gateway_replay.jsonl: 0 accepted, 40 duplicate, {len(BROKEN)} rejected"
            in out.replace("\n", " ")), out
    assert "see `microjourney quarantine` for the rejected rows and why" in out
    expected = {"digital.parquet": pq.read_table(data / "digital.parquet").num_rows,
                "http": live, "notifications.jsonl": lines(data / "notifications.jsonl")}
    with mj.open(root) as ws:
        rows = ws.con.execute("""select source, list(distinct channel order by channel), count(*),
                                 count(distinct event_id) from events group by source""").fetchall()
        by = {source: (channels, n, ids) for source, channels, n, ids in rows}
        ivr, texts = csv_rows(data / "ivr_survey.csv"), csv_rows(data / "support_texts.csv")
        nps = csv_rows(data / "shop_nps.csv")
        assert by == {"digital.parquet": (["app", "web"], expected["digital.parquet"],
                                          expected["digital.parquet"]),
                      "http": (["agent", "chat", "voice"], live, live),
                      "notifications.jsonl": (["email", "sms"], expected["notifications.jsonl"],
                                              expected["notifications.jsonl"]),
                      "ivr_survey.csv": (["voice"], ivr, ivr),
                      "support_texts.csv": (sorted({r["channel"] for r in texts_of(data)}), texts,
                                            texts),
                      "shop_nps.csv": (["email"], nps, nps)}
        # The SMS gateway's replay: its deliveries are stored already, its broken lines are
        # quarantined with their reasons.
        reasons = ws.con.execute("select source, reason from quarantine order by row").fetchall()
        assert [source for source, _ in reasons] == ["sms_gateway_replay.jsonl"] * len(BROKEN)
        assert [r.split(" ")[0] for _, r in reasons] == ["line", "line", "timestamp", "timestamp",
                                                       "timestamp"]
        assert "not valid UTF-8" in reasons[0][1] and "offset beyond ±14:00" in reasons[3][1]
        # The contact centre's own export holds the same events (same ids): it adds nothing.
        again = ws.ingest(data / "contact_centre.csv")
    assert (again.accepted, again.duplicates, again.rejected) == (0, live, 0)
    # What `microjourney quarantine` shows a newcomer: the replay's lines in file order, a
    # missing field blank (not "nan"), each raw row as a value.
    table = subprocess.run([sys.executable, "-m", "microjourney", "quarantine", "-w", str(root)],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    listing = table.stdout.split("Commonest reasons")[0]  # the rows, not the reasons' table
    rows = [line.split("│")[1:4] for line in listing.splitlines() if "sms_gateway" in line]
    assert [int(n) for _, n, _ in rows] == sorted(int(n) for _, n, _ in rows) and len(rows) == len(BROKEN)
    assert "nan" not in table.stdout and [f.strip() for _, _, f in rows][:2] == ["—", "—"]
    listed = json.loads(subprocess.run([sys.executable, "-m", "microjourney", "quarantine", "--json",
                                        "-w", str(root)], capture_output=True, text=True,
                                       timeout=120, check=True).stdout)
    rows = listed["tables"]["rows"]
    assert listed["meta"]["total"] == len(BROKEN) and rows[0]["field"] is None
    assert rows[2]["raw"]["event_id"] == "replay-broken-3"


def test_same_store_and_scorecard_as_ingesting_every_file(demo: tuple[Path, str], tmp_path: Path) -> None:
    """Ingesting the same data from files (the export in local time for the contact centre)
    stores the same events in the same order and gives the same scorecard."""
    root, _ = demo
    files = tmp_path / "files"
    files.mkdir()
    shutil.copy(root / "microjourney.yaml", files / "microjourney.yaml")
    query = """select event_id, seq, epoch_ms(timestamp), event, anonymous_id, user_id, channel,
               session_id, json(properties)::varchar, json(context)::varchar
               from events order by seq"""
    with mj.open(files) as ws:
        for name in ("digital.parquet", "contact_centre.csv", "notifications.jsonl"):
            ws.ingest(root / "data" / name)
        import_exports(ws, root / "data")
        want_events = ws.con.execute(query).fetchall()
        want = ws.scorecard().to_pandas()
    with mj.open(root) as ws:
        got_events = ws.con.execute(query).fetchall()
        got = ws.scorecard().to_pandas()
    assert got_events == want_events
    assert got.equals(want)


def test_send_fails_unless_every_event_is_accepted(tmp_path: Path) -> None:
    mj.init(tmp_path / "ws").close()
    events = tmp_path / "events.jsonl"
    good = {"event_id": "e1", "event": "chat_requested", "timestamp": "2026-09-01T10:00:00.000+00:00",
            "anonymous_id": None, "user_id": "u1", "channel": "chat", "session_id": "s1",
            "properties": {"topic": "card_payment"}, "context": {}}
    naive = {**good, "event_id": "e2", "timestamp": "2026-09-01T10:00:01"}  # no offset
    events.write_text(f"{json.dumps(good)}\n{json.dumps(naive)}\n", encoding="utf-8")
    with pytest.raises(MicrojourneyError, match="accepted 1 of 2 events.*e2.*no time zone offset"):
        send(tmp_path / "ws", events)
    with mj.open(tmp_path / "ws") as ws:  # the collector stopped and let go of the store
        assert ws.con.execute("select event_id, source from events").fetchall() == [("e1", "http")]


def test_a_collector_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    with Collector(tmp_path / "nothing", timeout=60) as server:
        ended = r"did not start \(it ended with status 2\): error \[workspace/missing\]: no workspace"
        with pytest.raises(MicrojourneyError, match=ended):
            server.start()


def test_the_collector_listens_on_loopback_only(tmp_path: Path) -> None:
    mj.init(tmp_path / "ws").close()
    with Collector(tmp_path / "ws") as server:
        url = server.start()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        with mj.Client(url, mj.workspace.keys(tmp_path / "ws").write_key) as client:
            client.track("chat_requested", user_id="u1", channel="chat")
            assert client.flush().accepted == 1
        server.stop()
    with mj.open(tmp_path / "ws") as ws:
        assert ws.con.execute("select count(*) from events").fetchall()[0][0] == 1

