"""The Parquet lake: export, append and read back, against real DuckDB stores and files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from microjourney.cli import app
from microjourney.errors import LakeError
from microjourney.store import append, events_glob, export, read_events

from .helpers import ev, rows, store_table, without_freshness

COLUMNS = ["event_id", "seq", "timestamp", "event", "anonymous_id", "user_id", "channel", "session_id",
           "properties", "context", "source"]
ODD = {"quote": 'he said "hi" and \'bye\'', "lines": "one\ntwo\r\nthree\ttab", "back": "C:\\path\\",
       "unicode": "café – 東京 🙂", "nul": "a\u0000b", "nested": {"k": ["x", 1, None, True]}}


def files(lake: Path) -> list[str]:
    return sorted(str(p.relative_to(lake)) for p in lake.rglob("*") if p.is_file())


def test_export_round_trip_reads_back_the_store_rows(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    lake = tmp_path / "lake"
    result = export(ws.con, lake)
    assert result["events"].rows == 4 and result.lake == lake
    expected = store_table(ws.con)
    assert expected.num_rows == 4

    rel = read_events(ws.con, lake)
    assert rel.columns == COLUMNS
    assert [str(t) for t in rel.types] == [r[1] for r in ws.con.sql("DESCRIBE events").fetchall()]
    assert rel.order("seq").to_arrow_table().equals(expected)

    table = ds.dataset(lake / "events", partitioning="hive").to_table().sort_by("seq")
    assert table.drop_columns(["day"]).equals(expected)
    for path in (lake / "events").rglob("*.parquet"):
        assert pq.read_schema(path).names == COLUMNS  # day is the folder only
        assert pq.read_schema(path).field("properties").type == pa.string()


def test_partitions_by_utc_day_whatever_the_session_zone(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    ws.con.execute("SET TimeZone = 'America/Sao_Paulo'")  # a local day would differ
    result = export(ws.con, tmp_path / "lake")
    ws.con.execute("SET TimeZone = 'UTC'")
    assert (result["events"].days, result["events"].files) == (2, 2)
    t = ds.dataset(tmp_path / "lake" / "events", partitioning="hive").to_table()
    by_day = {d: sorted(e for e, dd in zip(t["event"].to_pylist(), t["day"].to_pylist(), strict=True)
                        if dd == d) for d in set(t["day"].to_pylist())}
    # 23:30 at -02:00 is 01:30 UTC the next day; 00:30 at +02:00 is 22:30 UTC the day before.
    assert by_day == {"2024-01-01": ["checkout_payment_opened", "payment_failed", "payment_gateway_loaded"],
                      "2024-01-02": ["payment_succeeded"]}


def test_reexport_is_idempotent_and_replaces(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    lake = tmp_path / "lake"
    export(ws.con, lake)
    first = files(lake)
    append(lake, store_table(ws.con).set_column(0, "event_id", pa.array(["x1", "x2", "x3", "x4"])))
    assert len(files(lake)) == len(first) + 2
    again = export(ws.con, lake)
    assert files(lake) == first  # the appended files were replaced, nothing set aside remains
    assert again["events"].rows == 4
    assert read_events(ws.con, lake).order("seq").to_arrow_table().equals(store_table(ws.con))

    ws.con.execute("DELETE FROM events WHERE event = 'payment_succeeded'")
    third = export(ws.con, lake)
    assert (third["events"].rows, third["events"].days) == (3, 1)
    assert not (lake / "events" / "day=2024-01-02").exists()


def test_export_skips_tables_the_store_lacks_and_refuses_unknown_ones(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    result = export(ws.con, tmp_path / "lake", tables=("events", "identities", "texts"))
    assert [t.table for t in result.tables] == ["events", "identities"]  # the store has no texts
    assert not (tmp_path / "lake" / "texts").exists()
    with pytest.raises(LakeError) as exc:
        export(ws.con, tmp_path / "lake", tables=("quarantine",))
    assert exc.value.code == "lake/unknown-table"


def test_export_of_an_empty_store_gives_an_empty_table(make_ws, tmp_path):
    ws = make_ws()
    result = export(ws.con, tmp_path / "lake")
    assert (result["events"].rows, result["events"].days, result["events"].files) == (0, 0, 0)
    assert (tmp_path / "lake" / "events").is_dir()
    with pytest.raises(LakeError) as exc:
        read_events(ws.con, tmp_path / "lake")
    assert exc.value.code == "lake/no-events" and str(tmp_path / "lake") in exc.value.message


def test_leftovers_of_a_crashed_export_are_invisible_and_cleaned(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    lake = tmp_path / "lake"
    export(ws.con, lake)
    junk = lake / ".events.staging-dead" / "day=2024-01-01"
    junk.mkdir(parents=True)
    pq.write_table(store_table(ws.con), junk / "part-0.parquet")
    assert read_events(ws.con, lake).aggregate("count(*)").fetchall() == [(4,)]
    assert ds.dataset(lake / "events", partitioning="hive").count_rows() == 4
    export(ws.con, lake)
    assert not any(p.name.startswith(".") for p in lake.iterdir())


def test_append_is_durable_readable_at_once_and_leaves_no_temporary_files(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    lake = tmp_path / "lake"
    batch = store_table(ws.con)
    written = append(lake, batch)
    assert sorted(p.parent.name for p in written) == ["day=2024-01-01", "day=2024-01-02"]
    assert all(p.is_file() and p.suffix == ".parquet" for p in written)
    assert [p for p in lake.rglob("*") if p.name.startswith(".")] == []
    assert read_events(ws.con, lake).order("seq").to_arrow_table().equals(batch)

    # Only the required columns: the rest are written as nulls; names never collide.
    slim = batch.select(["event_id", "seq", "timestamp", "event", "channel", "source"]).slice(0, 1)
    more = append(lake, slim)
    assert len(more) == 1 and more[0] not in written
    got = read_events(ws.con, lake).filter("seq = 1").order("user_id").to_arrow_table()
    assert got.num_rows == 2 and got["user_id"].to_pylist() == ["a", None]
    assert pq.read_schema(more[0]).names == COLUMNS
    assert files(lake) == sorted(str(p.relative_to(lake)) for p in [*written, *more])


def test_append_refuses_a_batch_that_does_not_fit(tmp_path):
    good = {"event_id": ["e"], "seq": [1], "event": ["x"], "channel": ["web"], "source": ["s"]}
    for table in (pa.table({**good, "timestamp": pa.array([0], pa.timestamp("us"))}),  # no zone
                  pa.table({**good, "timestamp": pa.array([0], pa.timestamp("us", "UTC")), "day": ["d"]}),
                  pa.table({"event_id": ["e"], "timestamp": pa.array([0], pa.timestamp("us", "UTC"))}),
                  pa.table({**good, "timestamp": pa.array([0], pa.timestamp("us", "UTC")),
                            "event": pa.array([None], pa.string())})):
        with pytest.raises(LakeError) as exc:
            append(tmp_path / "lake", table)
        assert exc.value.code == "lake/bad-batch"
    assert not (tmp_path / "lake" / "events").exists()


def test_odd_text_in_properties_survives(make_ws, tmp_path):
    ws = make_ws(rows=[ev("10:00:00", "checkout_payment_opened", "q\"u\nö", properties=ODD,
                          context={"ua": "Mozilla/5.0 \"x\""})])
    lake = tmp_path / "lake"
    export(ws.con, lake)
    got = read_events(ws.con, lake).to_arrow_table()
    assert got["user_id"].to_pylist() == ["q\"u\nö"]
    assert json.loads(got["properties"][0].as_py()) == ODD
    text = ds.dataset(lake / "events", partitioning="hive").to_table()["properties"][0].as_py()
    assert json.loads(text) == ODD
    (unicode,) = read_events(ws.con, lake).aggregate(
        "json_extract_string(first(properties), '$.unicode')").fetchall()[0]
    assert unicode == ODD["unicode"]


def test_a_lake_path_that_is_a_file_is_a_clear_error(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    path = tmp_path / "lake.txt"
    path.write_text("not a folder")
    calls = [lambda p: export(ws.con, p), lambda p: append(p, store_table(ws.con)),
             lambda p: read_events(ws.con, p)]
    for call in calls:
        for where in (path, path / "sub"):
            with pytest.raises(LakeError) as exc:
                call(where)
            assert exc.value.code == "lake/not-a-folder" and str(path) in exc.value.message
    assert path.read_text() == "not a folder"
    assert events_glob(tmp_path / "l") == str(tmp_path / "l" / "events" / "day=*" / "*.parquet")


def test_cli_export_prints_the_counts(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    ws.close()
    lake = tmp_path / "lake"
    runner = CliRunner()
    res = runner.invoke(app, ["export", "--lake", str(lake), "-w", str(ws.root)])
    assert res.exit_code == 0, res.output
    assert "events: 4 rows, 2 days, 2 files" in res.output
    res = runner.invoke(app, ["export", "--lake", str(lake), "-w", str(ws.root), "--json"])
    assert json.loads(res.output) == {"lake": str(lake), "tables": [
        {"table": "events", "rows": 4, "days": 2, "files": 2}]}

    (tmp_path / "file").write_text("")
    proc = subprocess.run([sys.executable, "-m", "microjourney", "export", "--lake", str(tmp_path / "file"),
                           "-w", str(ws.root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "[lake/not-a-folder]" in proc.stderr and "file" in proc.stderr


def test_cli_reads_a_lake_instead_of_the_store(make_ws, tmp_path):
    ws = make_ws(rows=rows())
    ws.close()
    lake = tmp_path / "lake"
    runner = CliRunner()
    assert runner.invoke(app, ["export", "--lake", str(lake), "-w", str(ws.root)]).exit_code == 0
    store = runner.invoke(app, ["scorecard", "--json", "-w", str(ws.root)])
    over_lake = runner.invoke(app, ["--lake", str(lake), "scorecard", "--json", "-w", str(ws.root)])
    assert store.exit_code == 0 and over_lake.exit_code == 0, over_lake.output
    assert without_freshness(json.loads(over_lake.output)) == without_freshness(json.loads(store.output))
    assert sum(r["attempts"] for r in json.loads(store.output)["tables"]["moments"]) == 1
    # Quarantine stays in the store, whatever reads the events.
    assert runner.invoke(app, ["--lake", str(lake), "quarantine", "-w", str(ws.root)]).exit_code == 0
    # Ingest writes the store, never the lake.
    bad = runner.invoke(app, ["--lake", str(lake), "ingest", str(tmp_path / "x.csv"), "-w", str(ws.root)])
    assert bad.exit_code != 0
    proc = subprocess.run([sys.executable, "-m", "microjourney", "--engine", "trino", "scorecard",
                           "-w", str(ws.root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "[workspace/engine]" in proc.stderr
