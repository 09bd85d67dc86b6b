"""The demo generator: deterministic files in three formats that fit the demo workspace."""

from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

import microjourney.demo as demo
from microjourney.demo import DemoFiles, generate
from microjourney.demo.generate import BROKEN
from microjourney.vocabulary import CHANNELS, FIELDS

from .demo_files import SMALL, all_events, first_sent, friction_events, matchers, one, read_events

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
DURATION = re.compile(r"^\d+[smhd]$")
MOMENT_KEYS = {"name", "title", "description", "intent", "start", "steps", "complete", "fail",
               "escalate", "timeout", "sla", "owner", "problem", "target", "failure_cost",
               "contact_cost", "lifetime_value", "keywords", "phrases"}
MATCHER_KEYS = {"event", "where", "channel", "sla"}
FILE_CHANNELS = {"digital.parquet": {"web", "app"}, "contact_centre_live.jsonl": {"chat", "voice", "agent"},
                 "contact_centre.csv": {"chat", "voice", "agent"}, "notifications.jsonl": {"email", "sms"}}


def file_bytes(files: DemoFiles) -> list[bytes]:
    return [p.read_bytes() for p in (files.workspace_yaml, *files.event_files, files.export, files.texts)]


def test_public_surface() -> None:
    assert demo.__all__ == ["DemoFiles", "generate"]


def test_same_seed_same_bytes_other_seed_differs(small: DemoFiles, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", persons=SMALL)
    assert file_bytes(again) == file_bytes(small)
    assert again.events == small.events
    other = generate(tmp_path / "other", persons=SMALL, seed=8)
    assert file_bytes(other)[1:] != file_bytes(small)[1:]  # the workspace file is fixed


def test_files_and_columns(small: DemoFiles) -> None:
    root = small.workspace_yaml.parent
    assert small.workspace_yaml == root / "microjourney.yaml"
    assert [p.relative_to(root).as_posix() for p in small.event_files] == [
        "data/digital.parquet", "data/contact_centre_live.jsonl", "data/notifications.jsonl",
        "data/sms_gateway_replay.jsonl"]
    assert small.replay == small.event_files[-1]
    assert small.live == small.event_files[1]
    assert small.export == root / "data" / "contact_centre.csv"
    assert small.texts == root / "data" / "support_texts.csv"
    total = 0
    for path in (*first_sent(small), small.export):
        table = read_events(path)
        assert table.column_names == list(FIELDS)
        assert set(table.column("channel").to_pylist()) == FILE_CHANNELS[path.name]
        total += table.num_rows if path != small.export else 0
    assert total == small.events and small.persons == SMALL


def test_the_replay_sends_deliveries_again_and_holds_the_broken_lines(small: DemoFiles) -> None:
    sent = {json.loads(line)["event_id"]: line for line in
            (small.event_files[2]).read_bytes().splitlines()}
    lines = small.replay.read_bytes().splitlines()
    again = [line for line in lines if line in sent.values()]
    broken = [line for line in lines if line not in sent.values()]
    assert len(again) == 40 and len(set(again)) == 40
    assert len(broken) == len(BROKEN)
    assert b"\xfc" in broken[0] and not broken[0].isascii()  # Latin-1, not UTF-8
    with pytest.raises(ValueError):
        json.loads(broken[1])  # cut
    stamps = [json.loads(line)["timestamp"] for line in broken[2:]]
    assert stamps == [how for _, how in BROKEN[2:]]
    assert all(json.loads(line.decode("latin-1"))["event_id"] not in sent for line in broken[:1])


def test_the_export_holds_the_live_events_in_local_time(small: DemoFiles) -> None:
    """The contact centre's events twice: sent live in UTC, exported in Central European
    time across the summer-time change; the same ids, instants and fields."""
    live, export = read_events(small.live), read_events(small.export)
    assert live.num_rows == export.num_rows > 0
    assert all(t.endswith("+00:00") for t in live.column("timestamp").to_pylist())
    offsets = {t[-6:] for t in export.column("timestamp").to_pylist()}
    assert offsets == {"+02:00", "+01:00"}  # summer time until 25 October, winter time after
    same = duckdb.sql("""select count(*) from live l join export e using (event_id)
        where l.timestamp::timestamptz = e.timestamp::timestamptz and l.event = e.event
          and l.anonymous_id is not distinct from e.anonymous_id
          and l.user_id is not distinct from e.user_id and l.channel = e.channel
          and l.session_id = e.session_id and json(l.properties) = json(e.properties)
          and json(l.context) = json(e.context)""").fetchall()[0][0]
    assert same == live.num_rows


def test_every_row_is_valid(small: DemoFiles) -> None:
    rows = all_events(small).to_pylist()
    assert all(r["channel"] in CHANNELS for r in rows)
    assert all(ISO.match(r["timestamp"]) for r in rows)
    assert all(r["anonymous_id"] or r["user_id"] for r in rows)
    assert all(r["event"] for r in rows)
    ids = [r["event_id"] for r in rows]
    assert len(set(ids)) == len(ids)
    for r in rows[::50]:
        assert isinstance(json.loads(r["properties"]), dict)
        assert isinstance(json.loads(r["context"]), dict)
    linking = [r for r in rows if r["event"] == "logged_in"]
    assert linking and all(r["anonymous_id"] and r["user_id"] for r in linking)
    web = [r for r in rows if r["channel"] in ("web", "app")]
    assert 0.1 < sum(r["user_id"] is None for r in web) / len(web) < 0.5  # anonymous before login


def test_workspace_shape(small: DemoFiles) -> None:
    ws = yaml.safe_load(small.workspace_yaml.read_text(encoding="utf-8"))
    assert set(ws) == {"name", "description", "journeys", "frictions", "surveys", "survey_cooldown",
                       "experiments", "alerts", "interventions"}
    moments = [m for j in ws["journeys"] for m in j["moments"]]
    assert len(ws["journeys"]) >= 4 and len(moments) >= 10
    assert len({m["name"] for m in moments}) == len(moments)
    for m in moments:
        assert set(m) <= MOMENT_KEYS, m["name"]
        for key in ("start", "complete", "timeout", "sla", "owner", "problem", "target"):
            assert key in m, (m["name"], key)
        assert m["intent"] in ("learn", "decide", "act")
        assert DURATION.match(m["timeout"]) and DURATION.match(m["sla"])
        assert set(m["target"]) == {"metric", "value"}
        for step in m["steps"]:
            assert "sla" not in step or DURATION.match(step["sla"]), (m["name"], step)
    for matcher in matchers(ws):
        assert set(matcher) - {"name"} <= MATCHER_KEYS
        channels = matcher.get("channel", [])
        assert set([channels] if isinstance(channels, str) else channels) <= set(CHANNELS)
    spanned = set()
    for matcher in matchers(ws):
        channels = matcher.get("channel", [])
        spanned |= set([channels] if isinstance(channels, str) else channels)
    assert {"web", "app", "chat", "voice", "agent"} <= spanned


def test_surveys_are_shown_answered_and_exported(small: DemoFiles) -> None:
    rows = [r for r in all_events(small).to_pylist() if r["event"].startswith("survey_")]
    props = [json.loads(r["properties"]) for r in rows]
    shown = [p for r, p in zip(rows, props, strict=True) if r["event"] == "survey_shown"]
    answers = [p for r, p in zip(rows, props, strict=True) if r["event"] == "survey_response"]
    assert {r["channel"] for r in rows} <= {"web", "app"} and len(shown) > 50
    assert {p["survey"] for p in props} == {"payment_csat"}
    assert 0.05 < sum(p["control"] for p in shown) / len(shown) < 0.6  # the control sample
    ease = [p["answer"] for p in answers if p["question"] == "ease"]
    assert set(ease) <= {1, 2, 3, 4, 5} and len(set(ease)) >= 4
    assert any(p["question"] == "why" and isinstance(p["answer"], str) for p in answers)
    ivr = list(csv.DictReader(small.ivr.open(encoding="utf-8")))
    assert ivr and {r["keypad_score"] for r in ivr} <= set("12345")
    assert all(DOTTED.match(r["answered_at"]) for r in ivr)


DOTTED = re.compile(r"^\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}$")


def test_every_matched_event_occurs(small: DemoFiles) -> None:
    ws = yaml.safe_load(small.workspace_yaml.read_text(encoding="utf-8"))
    names = set()
    for matcher in matchers(ws):
        names |= set([matcher["event"]] if isinstance(matcher["event"], str) else matcher["event"])
    seen = set(all_events(small).column("event").to_pylist())
    assert (names | friction_events(ws)) - seen == set()
    assert {"page_viewed", "app_opened"} <= seen - names  # noise that matches no moment


def test_payment_outcomes_and_retries(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "select count(*) from ev where event = 'payment_succeeded'") > 0
    assert one(con, "select count(distinct p->>'reason') from ev where event = 'payment_failed'") >= 3
    retried = one(con, """
        select count(*) from ev a join ev b on a.session_id = b.session_id
        where a.event = 'card_details_entered' and b.event = 'card_details_entered'
          and a.p->>'valid' = 'false' and b.p->>'valid' = 'true' and a.ts < b.ts""")
    assert retried > 0
    resends = one(con, """select count(*) from (select user_id from ev
        where event = 'reset_email_sent' group by user_id, date_trunc('hour', ts)
        having count(*) > 1)""")
    assert resends > 0
    repeat_attempts = one(con, """select count(*) from (select who from ev
        where event = 'checkout_payment_opened' group by who having count(*) > 1)""")
    assert repeat_attempts > 0


def test_escalations_follow_failures(con: duckdb.DuckDBPyConnection) -> None:
    contacts = one(con, """select count(*) from ev where event = 'contact_started'
                           and p->>'origin' = 'escalation'""")
    assert contacts > 0
    channels = con.execute("""select distinct channel from ev
                              where event = 'contact_started'""").fetchall()
    assert {c for (c,) in channels} == {"chat", "voice", "agent"}
    # A failed payment followed within minutes by a contact about card payments.
    followed = one(con, """
        select count(*) from ev f join ev c on f.user_id = c.user_id
        where f.event = 'payment_failed' and c.event = 'contact_started'
          and c.p->>'topic' = 'card_payment'
          and c.ts between f.ts and f.ts + interval 30 minute""")
    assert followed > 0


def test_support_texts(small: DemoFiles) -> None:
    table = pacsv.read_csv(small.texts, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ("text_id", "timestamp", "user_id")},
        strings_can_be_null=True))
    assert table.column_names == ["text_id", "timestamp", "channel", "source", "user_id", "text"]
    assert table.num_rows > 50
    rows = table.to_pylist()
    assert len({r["text_id"] for r in rows}) == len(rows)
    assert all(ISO.match(r["timestamp"]) and r["text"] for r in rows)
    assert sum(r["user_id"] is not None for r in rows) > len(rows) / 2


@pytest.mark.slow
def test_default_size(tmp_path: Path) -> None:
    began = time.perf_counter()
    files = generate(tmp_path)
    seconds = time.perf_counter() - began
    assert 330_000 <= files.events <= 500_000  # with the payment help's decisions
    assert seconds < 30
    texts = pacsv.read_csv(files.texts)
    assert 2_000 <= texts.num_rows <= 5_000
    digital = pq.read_table(files.event_files[0])  # noqa: F841 - read by DuckDB
    before, after = duckdb.sql("""
        with x as (select timestamp::timestamptz >= timestamptz '2026-09-29 00:00:00+00' as late,
                   event from digital)
        select late, count(*) filter (event = 'payment_succeeded')
                     / count(*) filter (event = 'checkout_payment_opened')
        from x group by late order by late""").fetchall()
    assert after[1] > before[1] + 0.05  # the gateway change shows in the completion trend
