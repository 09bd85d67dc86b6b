"""The demo generator: deterministic files in three formats that fit the demo workspace."""

from __future__ import annotations

import csv
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml

import microjourney as mj
import microjourney.demo as demo
from microjourney.demo import DemoFiles, generate
from microjourney.demo.generate import BROKEN
from microjourney.spec.frictions import KINDS, Frictions
from microjourney.spec.load import load_workspace
from microjourney.vocabulary import CHANNELS, FIELDS

SMALL = 1500
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
DURATION = re.compile(r"^\d+[smhd]$")
MOMENT_KEYS = {"name", "title", "description", "intent", "start", "steps", "complete", "fail",
               "escalate", "timeout", "sla", "owner", "problem", "target", "failure_cost",
               "contact_cost", "lifetime_value", "keywords", "phrases"}
MATCHER_KEYS = {"event", "where", "channel", "sla"}
FILE_CHANNELS = {"digital.parquet": {"web", "app"}, "contact_centre_live.jsonl": {"chat", "voice", "agent"},
                 "contact_centre.csv": {"chat", "voice", "agent"}, "notifications.jsonl": {"email", "sms"}}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return generate(tmp_path_factory.mktemp("demo"), persons=SMALL)


def read_events(path: Path) -> pa.Table:
    """One event file as a table of text columns (JSON objects as text)."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".csv":
        types = {f: pa.string() for f in FIELDS}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        assert isinstance(row["properties"], dict) and isinstance(row["context"], dict)
        row["properties"], row["context"] = json.dumps(row["properties"]), json.dumps(row["context"])
    return pa.Table.from_pylist(rows, schema=pa.schema([(f, pa.string()) for f in FIELDS]))


def first_sent(files: DemoFiles) -> list[Path]:
    """The event files of first deliveries (not the replay, which sends some again)."""
    return [p for p in files.event_files if p != files.replay]


def all_events(files: DemoFiles) -> pa.Table:
    return pa.concat_tables([read_events(p).select(list(FIELDS)) for p in first_sent(files)])


def matchers(workspace: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for journey in workspace["journeys"]:
        for m in journey["moments"]:
            out += [m["start"], *m.get("steps", []), m["complete"]]
            out += [m[k] for k in ("fail", "escalate") if k in m]
    return out


def friction_events(workspace: dict[str, Any]) -> set[str]:
    """Event names the ``frictions:`` section names (keys ending in ``events``)."""
    return {name for settings in workspace["frictions"].values()
            for key, value in settings.items() if key.endswith("events") for name in value}


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
    assert set(ws) == {"name", "description", "journeys", "frictions", "surveys", "survey_cooldown"}
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


@pytest.fixture(scope="module")
def con(small: DemoFiles) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    events = all_events(small)  # noqa: F841 - read by DuckDB through the variable name
    c.execute("""create table ev as select * exclude (timestamp),
                 timestamp::timestamptz as ts, coalesce(user_id, anonymous_id) as who,
                 properties::json as p from events""")
    return c


def one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


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


# -- friction signals -------------------------------------------------------------------

SIGNALS = ("click", "field_edited", "error_shown", "help_opened")


def test_frictions_section_validates(small: DemoFiles) -> None:
    ws = yaml.safe_load(small.workspace_yaml.read_text(encoding="utf-8"))
    settings = Frictions.model_validate(ws["frictions"])
    assert set(ws["frictions"]) <= set(KINDS)
    assert settings.uncertainty.events == ("tracking_status_loaded",)
    assert set(settings.repeated_auth.events) == {"logged_in", "caller_identified"}
    assert load_workspace(small.workspace_yaml).frictions == settings
    slas = {step["name"]: step["sla"] for j in ws["journeys"] for m in j["moments"]
            for step in m["steps"] if "sla" in step}
    assert slas["gateway_loaded"] == "3s" and slas["agent_answered"] == "2m"


def test_signal_properties_are_shaped(con: duckdb.DuckDBPyConnection) -> None:
    keys = dict(con.execute("""select event, list(distinct k order by k) from
        (select event, unnest(json_keys(p)) k from ev where event in ?) group by event""",
                            [list(SIGNALS)]).fetchall())
    assert set(keys) == set(SIGNALS)
    assert set(keys["click"]) == {"dead", "selector", "x", "y"}
    assert set(keys["field_edited"]) == {"dwell_ms", "edits", "field"}  # never the value
    assert set(keys["error_shown"]) == {"code", "field", "message"}
    assert keys["help_opened"] == ["topic"]
    assert one(con, f"""select count(*) from ev where event in {SIGNALS}
                        and channel not in ('web', 'app')""") == 0
    assert one(con, """select count(*) from ev where event = 'click' and not (
        json_type(p->'x') in ('UBIGINT', 'BIGINT', 'DOUBLE')
        and json_type(p->'y') in ('UBIGINT', 'BIGINT', 'DOUBLE')
        and p->>'selector' like '#%' and coalesce(p->>'dead', 'true') = 'true')""") == 0
    assert one(con, """select count(*) from ev where event = 'field_edited' and not (
        json_type(p->'edits') = 'UBIGINT' and (p->>'edits')::int >= 1
        and json_type(p->'dwell_ms') = 'UBIGINT' and p->>'field' similar to '[a-z_]+')""") == 0
    assert one(con, """select count(*) from ev where event = 'error_shown'
                       and (coalesce(p->>'message', '') = '' or coalesce(p->>'code', '') = '')""") == 0


def bursts(con: duckdb.DuckDBPyConnection, selector: str) -> list[int]:
    """Rage bursts on ``selector`` into table ``rage`` (session, first and last click, size),
    each click within 1 s and 30 px of the one before; returns the burst sizes."""
    con.execute("""create or replace temp table rage as
        with c as (select session_id, ts, (p->>'x')::double x, (p->>'y')::double y,
                   lag(ts) over w pts, lag((p->>'x')::double) over w px,
                   lag((p->>'y')::double) over w py
            from ev where event = 'click' and p->>'selector' = ? and p->>'dead' is null
            window w as (partition by session_id order by ts)),
        g as (select *, sum(case when pts is not null and ts - pts <= interval 1 second
                            and sqrt((x - px) ^ 2 + (y - py) ^ 2) <= 30 then 0 else 1 end)
                        over (partition by session_id order by ts) burst from c)
        select session_id, min(ts) first, max(ts) last, count(*) clicks from g
        group by session_id, burst having count(*) >= 3""", [selector])
    return [n for (n,) in con.execute("select clicks from rage").fetchall()]


def test_rage_clicks_while_the_gateway_loads(con: duckdb.DuckDBPyConnection) -> None:
    sizes = bursts(con, "#pay-button")
    assert len(sizes) >= 20 and set(sizes) <= {3, 4, 5, 6}
    # Each burst falls after the payment step opened (seconds before) and is answered by
    # the gateway (or its time-out error), not by anything else.
    outside = one(con, """select count(*) from rage r where not (
        (select max(ts) from ev where session_id = r.session_id and ts <= r.first
         and event = 'checkout_payment_opened') >= r.first - interval 31 second
        and (select arg_min(event, ts) from ev where session_id = r.session_id and ts > r.last
             and event != 'click') in ('payment_gateway_loaded', 'error_shown'))""")
    assert outside == 0
    # Slow loads cause them: the gateway before the change, and phones.
    slow = one(con, """select median((g.p->>'load_ms')::int) from rage r join ev g
        on g.session_id = r.session_id and g.event = 'payment_gateway_loaded'
        and g.ts between r.last and r.last + interval 2 second""")
    assert slow > 8_000
    phones = one(con, """select avg((e.context::json->>'device' != 'desktop')::int) from rage r
        join ev e on e.session_id = r.session_id and e.ts = r.first and e.event = 'click'""")
    everyone = one(con, """select avg((context::json->>'device' != 'desktop')::int) from ev
                           where event = 'checkout_payment_opened'""")
    assert phones > everyone


def test_dead_clicks_are_followed_by_silence(con: duckdb.DuckDBPyConnection) -> None:
    gaps = con.execute("""with d as (select *, lead(ts) over (partition by session_id
            order by ts) next_ts from ev where channel in ('web', 'app'))
        select p->>'selector', epoch_ms(next_ts) - epoch_ms(ts) from d
        where event = 'click' and p->>'dead' = 'true'""").fetchall()
    assert len(gaps) >= 20
    assert {s for s, _ in gaps} <= {"#pay-button", "#confirm-block"}
    assert all(gap is None or gap >= 2_500 for _, gap in gaps)


def test_ordinary_clicks_get_an_answer(con: duckdb.DuckDBPyConnection) -> None:
    """A press on the pay button is answered by the card step within a second."""
    answered = one(con, """select count(*) from ev c join ev s on s.session_id = c.session_id
        and s.event = 'card_details_entered' and s.ts between c.ts and c.ts + interval 1 second
        where c.event = 'click' and c.p->>'selector' = '#pay-button'""")
    valid = one(con, """select count(*) from ev where event = 'card_details_entered'
                        and p->>'valid' = 'true'""")
    assert answered >= valid  # every submission (most attempts) follows a press


def test_field_edits_show_cognitive_load(con: duckdb.DuckDBPyConnection) -> None:
    fields = dict(con.execute("""select p->>'field', count(*) from ev
                                 where event = 'field_edited' group by 1""").fetchall())
    assert {"card_number", "expiry", "cvc", "cardholder_name", "password", "email", "address",
            "date_of_birth", "tax_id", "new_password"} <= set(fields)
    heavy = one(con, """select count(*) from ev where event = 'field_edited'
        and ((p->>'edits')::int >= 5 or (p->>'dwell_ms')::int >= 30000)""")
    assert 0.01 < heavy / sum(fields.values()) < 0.2
    phone, desktop = (one(con, f"""select avg((p->>'dwell_ms')::int) from ev
        where event = 'field_edited' and p->>'field' = 'card_number'
        and context::json->>'device' {op} 'desktop'""") for op in ("!=", "="))
    assert phone > 1.2 * desktop


def test_errors_come_with_invalid_input(con: duckdb.DuckDBPyConnection) -> None:
    invalid = one(con, """select count(*) from ev where event = 'card_details_entered'
                          and p->>'valid' = 'false'""")
    shown = one(con, """select count(*) from ev s where s.event = 'card_details_entered'
        and s.p->>'valid' = 'false' and exists (select 1 from ev e where e.event = 'error_shown'
        and e.session_id = s.session_id and e.p->>'field' = s.p->>'field'
        and e.ts between s.ts - interval 1 second and s.ts)""")
    assert invalid > 0 and shown == invalid
    codes = {c for (c,) in con.execute("select distinct p->>'code' from ev "
                                       "where event = 'error_shown'").fetchall()}
    assert {"invalid_card_number", "wrong_password", "payment_declined"} <= codes


def test_help_and_redundant_input_in_onboarding(con: duckdb.DuckDBPyConnection) -> None:
    topics = {t for (t,) in con.execute("select distinct p->>'topic' from ev "
                                        "where event = 'help_opened'").fetchall()}
    assert "tax_id" in topics and topics <= {"tax_id", "annual_income", "document_photo_tips"}
    # The same field asked at a later step: the email again at the terms, the address
    # again at the ID check for passports.
    twice = dict(con.execute("""select field, count(*) from (select anonymous_id, p->>'field' field
        from ev e where event = 'field_edited' and p->>'field' in ('email', 'address')
        and exists (select 1 from ev a where a.event = 'application_started'
                    and a.anonymous_id = e.anonymous_id)
        group by all having count(*) >= 2) group by field""").fetchall())
    assert twice.get("email", 0) > 10 and twice.get("address", 0) > 5


def test_repeated_authentication(con: duckdb.DuckDBPyConnection) -> None:
    """A second login inside account opening or card blocking; security questions
    again after a call transfer."""
    for start, end in (("application_started", "terms_accepted"),
                       ("card_block_opened", "block_reason_chosen")):
        again = one(con, f"""select count(*) from ev s where s.event = '{start}' and (
            select count(*) from ev l where l.event = 'logged_in'
            and l.anonymous_id = s.anonymous_id and l.ts between s.ts and (
                select min(ts) from ev x where x.event = '{end}'
                and x.anonymous_id = s.anonymous_id and x.ts > s.ts)) >= 2""")
        assert again >= 1, start
    transferred, asked = con.execute("""select count(*), count(*) filter (exists (
        select 1 from ev c where c.event = 'caller_identified' and c.session_id = t.session_id
        and c.ts > t.ts)) from ev t where t.event = 'call_transferred'""").fetchone() or (0, 0)
    assert transferred > 0 and asked / transferred > 0.5


def test_uncertainty_and_u_turns(con: duckdb.DuckDBPyConnection) -> None:
    anxious = one(con, """select count(*) from (select session_id from ev
        where event = 'tracking_status_loaded' group by session_id, p->>'order_id'
        having count(*) >= 3 and max(ts) - min(ts) < interval 10 minute
        and bool_or(p->>'status' = 'delayed'))""")
    assert anxious >= 5
    uturns = one(con, """with v as (select session_id, ts, p->>'page' page,
            lag(p->>'page', 1) over w prev, lag(p->>'page', 2) over w prev2,
            ts - lag(ts, 1) over w away
        from ev where event = 'page_viewed' window w as (partition by session_id order by ts))
        select count(*) from v where page = 'payment' and prev = 'basket' and prev2 = 'payment'
        and away < interval 30 second""")
    assert uturns >= 5


def test_late_answers_and_transfers(con: duckdb.DuckDBPyConnection) -> None:
    late_calls = one(con, """select count(*) from ev where event = 'agent_answered'
                             and (p->>'hold_seconds')::int > 120""")
    late_chats = one(con, """select count(*) from ev where event = 'agent_joined'
                             and (p->>'queue_seconds')::int > 120""")
    assert late_calls > 0 and late_chats > 0
    assert one(con, "select count(*) from ev where event = 'call_transferred'") > 0


@pytest.fixture(scope="module")
def analysed(small: DemoFiles, tmp_path_factory: pytest.TempPathFactory
             ) -> duckdb.DuckDBPyConnection:
    """The small demo ingested: attempts with their span, and the signals, by person."""
    root = tmp_path_factory.mktemp("analysed")
    shutil.copy(small.workspace_yaml, root / "microjourney.yaml")
    with mj.open(root) as ws:
        for path in first_sent(small):
            ws.ingest(path)
        attempts = ws.attempts().select("person", "moment", "start_ts", "end_ts",
                                        "outcome").to_pyarrow()
        events = ws.events()
        signals = events.filter(events.event.isin(SIGNALS)).select(
            "person", "event", "timestamp", "properties").to_pyarrow()
        timeouts = pa.table({"moment": list(ws.moments),
                             "timeout_s": [m.timeout for m in ws.moments.values()]})
    c = duckdb.connect()
    c.register("attempts_in", attempts)
    c.register("signals_in", signals)
    c.register("timeouts", timeouts)
    c.execute("""create table attempts as select row_number() over () attempt, a.*, timeout_s,
                 outcome in ('abandoned', 'in_progress') as open_end
                 from attempts_in a join timeouts using (moment)""")
    c.execute("""create table signals as select row_number() over () signal, *,
                 properties::json as p from signals_in""")
    # A signal belongs to the attempts of its person whose span holds it; an attempt
    # left open (abandoned) holds what its person did until it timed out.
    c.execute("""create table owned as select s.*, a.attempt, a.moment,
                 s.timestamp <= a.end_ts as strictly from signals s join attempts a
                 on a.person = s.person and s.timestamp >= a.start_ts
                 and s.timestamp <= a.end_ts + case when a.open_end
                     then to_seconds(a.timeout_s) else interval 0 second end""")
    return c


def test_signals_fall_inside_attempts(analysed: duckdb.DuckDBPyConnection) -> None:
    total, owned, strict = analysed.execute("""select count(*),
        count(*) filter (signal in (select signal from owned)),
        count(*) filter (signal in (select signal from owned where strictly))
        from signals where coalesce(p->>'code', '') != 'link_expired'""").fetchone() or (0, 0, 0)
    # An expired reset link is opened after its attempt timed out: it belongs to none.
    assert total > 1_000 and owned == total
    assert strict / total > 0.9
    kinds = {m for (m,) in analysed.execute("select distinct moment from owned").fetchall()}
    assert {"card_payment", "login", "password_reset", "account_opening", "id_verification",
            "card_block", "three_ds_verification", "delivery_tracking"} <= kinds


def test_frictions_hurt_completion(analysed: duckdb.DuckDBPyConnection) -> None:
    analysed.execute("""create temp table flagged as select a.attempt, a.moment,
        a.outcome = 'completed' as done,
        exists (select 1 from owned o where o.attempt = a.attempt and o.event = 'error_shown')
            as erred,
        (select count(*) from owned o where o.attempt = a.attempt and o.event = 'click'
         and o.p->>'dead' is null) >= 3 as clicked
        from attempts a where moment = 'card_payment'""")
    rates = dict(analysed.execute("""select erred, avg(done::int) from flagged
                                     group by erred""").fetchall())
    assert rates[True] < rates[False] - 0.15
    raged = dict(analysed.execute("""select clicked, avg(done::int) from flagged
                                     group by clicked""").fetchall())
    assert raged[True] < raged[False] - 0.1


@pytest.mark.slow
def test_default_size(tmp_path: Path) -> None:
    began = time.perf_counter()
    files = generate(tmp_path)
    seconds = time.perf_counter() - began
    assert 330_000 <= files.events <= 480_000
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
