"""The demo's friction signals: shaped as the detectors expect, inside the attempts they
belong to, and costing completion."""

from __future__ import annotations

import shutil

import duckdb
import pyarrow as pa
import pytest
import yaml

import microjourney as mj
from microjourney.demo import DemoFiles
from microjourney.spec.frictions import KINDS, Frictions
from microjourney.spec.load import load_workspace

from .demo_files import first_sent, one

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
