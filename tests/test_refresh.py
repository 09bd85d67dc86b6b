"""Derived tables kept fresh: declared once, refreshed incrementally to what a full rebuild
gives, erased by their declarations, and safe when a refresh fails."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microjourney.engine import derived
from microjourney.engine.derived import DERIVED, DerivedTable

from .helpers import write_events

SPEC = """\
journeys:
  - name: payment
    moments:
      - name: pay
        start: {event: open}
        steps:
          - {event: loaded, sla: 20s}
          - {event: card, where: {valid: true}}
        complete: {event: ok}
        fail: {event: failed}
        escalate: {event: contact_started, channel: [chat, voice]}
        timeout: 3m
        escalation_window: 10m
  - name: help
    moments:
      - name: chat
        start: {event: chat_opened, channel: [chat]}
        steps:
          - {event: agent_replied}
        complete: {event: resolved}
        timeout: 5m
identity:
  keys: [email]
"""

#: The same moments with contact windows shorter than the stream: a refresh then cuts
#: again from the last cut, from an attempt whose window reaches the new rows, or after
#: the last row, each in turn.
SHORT_WINDOWS = SPEC.replace("        escalation_window: 10m\n",
                             "        escalation_window: 2m\n        repeat_contact_window: 4m\n").replace(
    "        timeout: 5m\n", "        timeout: 5m\n        repeat_contact_window: 3m\n")
T0 = datetime(2024, 1, 1, 10, tzinfo=UTC)
ANONS = ["a1", "a2", "a3", "a4", "a5"]
USERS = ["u1", "u2", "u3"]
EVENTS = ["open", "loaded", "card", "card_bad", "ok", "failed", "click", "error_shown",
          "page_viewed", "contact_started", "chat_opened", "agent_replied", "resolved",
          "status_checked", "logged_in"]
CHANNELS = {"contact_started": "chat", "chat_opened": "chat", "agent_replied": "chat",
            "resolved": "chat"}


@st.composite
def event(draw: st.DrawFn, n: int) -> dict:
    name = draw(st.sampled_from(EVENTS))
    anon = draw(st.sampled_from(ANONS))
    user = draw(st.none() | st.sampled_from(USERS))
    at = T0 + timedelta(seconds=draw(st.integers(0, 40 * 60)))
    props: dict = {}
    if name == "card_bad":
        name, props = "card", {"valid": False}
    elif name == "card":
        props = {"valid": True}
    elif name == "click":
        props = {"x": draw(st.integers(0, 40)), "y": 10, "selector": "#pay"}
    elif name == "page_viewed":
        props = {"page": draw(st.sampled_from(["payment", "basket"]))}
    context = {"traits": {"email": draw(st.sampled_from(["ann@x.io", "bob@x.io"]))}} \
        if draw(st.integers(0, 9)) == 0 else {}
    return {"event_id": f"e{n}", "timestamp": at.isoformat(), "event": name, "anonymous_id": anon,
            "user_id": user, "channel": CHANNELS.get(name, "web"), "properties": props,
            "context": context}


@st.composite
def call(draw: st.DrawFn, n: int) -> dict:
    at = T0 + timedelta(seconds=draw(st.integers(0, 40 * 60)))
    if draw(st.booleans()):
        return {"call_id": f"c{n}", "kind": "alias", "anonymous_id": None,
                "user_id": draw(st.sampled_from(USERS)), "previous_id": draw(st.sampled_from(USERS + ANONS)),
                "traits": None, "timestamp": at}
    email = draw(st.none() | st.sampled_from(["ann@x.io", "bob@x.io"]))
    return {"call_id": f"c{n}", "kind": "identify", "anonymous_id": draw(st.sampled_from(ANONS)),
            "user_id": draw(st.sampled_from(USERS)), "previous_id": None,
            "traits": {"email": email} if email else None, "timestamp": at}


@st.composite
def stream(draw: st.DrawFn, ordered: bool = False) -> list[tuple[list[dict], list[dict], str | None]]:
    """Batches of (events, calls, a person to forget after the batch or None); ``ordered``:
    the events arrive in time order, as a collector takes them (most persons' new events
    then follow on from their last)."""
    n_events = draw(st.integers(5, 60))
    events = [draw(event(i)) for i in range(n_events)]
    if ordered:
        events.sort(key=lambda e: e["timestamp"])
    calls = [draw(call(i)) for i in range(draw(st.integers(0, 4)))]
    cuts = sorted(draw(st.lists(st.integers(1, n_events - 1), max_size=3, unique=True)))
    bounds = [0, *cuts, n_events]
    batches = []
    for k in range(len(bounds) - 1):
        mine = [c for i, c in enumerate(calls) if i % (len(bounds) - 1) == k]
        forget = draw(st.none() | st.sampled_from(USERS)) if draw(st.integers(0, 5)) == 0 else None
        batches.append((events[bounds[k]:bounds[k + 1]], mine, forget))
    return batches


def _cell(v: object) -> object:
    if isinstance(v, float):
        return None if math.isnan(v) else round(v, 6)
    if isinstance(v, list):
        return tuple(_cell(x) for x in v)
    return v


def snapshot(ws) -> dict[str, list[tuple]]:
    """Every derived table (and view), as sorted rows."""
    out = {}
    for table in DERIVED:
        rows = ws.con.execute(f'SELECT * FROM "{table.name}"').fetchall()
        out[table.name] = sorted((tuple(_cell(v) for v in r) for r in rows), key=repr)
    return out


PROPERTY = settings(max_examples=5, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@PROPERTY
@given(batches=stream())
def test_incremental_refresh_equals_a_full_rebuild(make_ws, batches, tmp_path_factory):
    _incremental_equals_full(make_ws, batches, tmp_path_factory)


@PROPERTY
@given(batches=stream(ordered=True))
def test_incremental_refresh_of_events_in_time_order_equals_a_full_rebuild(make_ws, batches,
                                                                            tmp_path_factory):
    """Events that arrive in time order follow on from each person's last: the refresh
    cuts again only from where they reach (the last cut, a contact window, a timeout)."""
    _incremental_equals_full(make_ws, batches, tmp_path_factory, SHORT_WINDOWS)


def _incremental_equals_full(make_ws, batches, tmp_path_factory, spec: str = SPEC) -> None:
    ws = make_ws(spec, name=f"ws{id(batches)}")
    folder = tmp_path_factory.mktemp("batches")
    modes = []
    for k, (events, calls, forget) in enumerate(batches):
        if events:
            ws.ingest(write_events(folder / f"b{k}.csv", events))
        if calls:
            ws.write_identities(calls)
        modes.append(ws.refresh(frictions=True).mode)  # the friction tables too, from the first
        if forget is not None and any(r["person"] == forget for r in
                                      ws.persons().to_pyarrow().to_pylist()):
            ws.forget(forget)
    modes.append(ws.refresh().mode)  # after the last erasure, if any
    assert modes[0] == "full" and set(modes[1:]) <= {"incremental", "none"}
    incremental = snapshot(ws)
    assert ws.refresh(force=True).mode == "full"
    full = snapshot(ws)
    for name in full:
        assert incremental[name] == full[name], name


def test_the_numbers_of_erased_events_and_calls_are_never_given_again(make_ws, tmp_path):
    """Found by the property above: erasing the person whose event was stored last let the
    next event take its number, and the incremental refresh, which takes the events after
    the last number it saw, left that event out of every table."""
    def at(second: int, event: str, user: str) -> dict:
        return {"event_id": f"{user}-{second}", "event": event, "user_id": user, "channel": "web",
                "timestamp": (T0 + timedelta(seconds=second)).isoformat()}

    ws = make_ws(SPEC, [at(0, "open", "u1"), at(5, "open", "u2")], name="numbers")
    ws.write_identities([{"call_id": "c1", "kind": "identify", "anonymous_id": "a2", "user_id": "u2",
                          "previous_id": None, "traits": None, "timestamp": T0}])
    assert ws.refresh(frictions=True).mode == "full"
    ws.forget("u2")  # its event had the last number, 2, and its call the last call number, 1
    ws.ingest(write_events(tmp_path / "later.csv", [at(9, "loaded", "u1")]))
    ws.write_identities([{"call_id": "c2", "kind": "identify", "anonymous_id": "a1", "user_id": "u1",
                          "previous_id": None, "traits": None, "timestamp": T0}])
    assert ws.con.execute("SELECT max(seq) FROM events").fetchall() == [(3,)]
    assert ws.con.execute("SELECT max(seq) FROM identities").fetchall() == [(2,)]
    assert ws.refresh().mode == "incremental"
    incremental = snapshot(ws)
    assert [r[0] for r in incremental["timeline"]] == [1, 3]
    ws.refresh(force=True)
    assert snapshot(ws) == incremental


def test_every_personal_table_names_whose_rows_it_holds():
    for table in DERIVED:
        assert table.refresh in ("identity", "person", "whole", "view"), table.name
        assert set(table.inputs) <= {"events", "identities"} | {t.name for t in DERIVED}, table.name
        if table.personal and table.refresh != "view":
            assert table.key is not None, table.name
        if table.refresh == "person":
            assert table.key == "person", table.name
    assert derived.derived("attempts").personal and not derived.derived("friction_kinds").personal


def test_a_declared_table_is_erased_without_touching_erasure_code(make_ws, monkeypatch, tmp_path):
    ws = make_ws(SPEC, [
        {"event_id": "x1", "timestamp": "2024-01-01T10:00:00+00:00", "event": "open",
         "anonymous_id": "a1", "user_id": "u1", "channel": "web"},
        {"event_id": "x2", "timestamp": "2024-01-01T10:00:05+00:00", "event": "open",
         "anonymous_id": "a2", "user_id": "u2", "channel": "web"}])
    ws.refresh()
    # A new derived table, declared as holding personal data: one row per person.
    table = DerivedTable("person_notes", ("attempts",), "person", True, "person", "a test table")
    monkeypatch.setattr(derived, "DERIVED", (*DERIVED, table))
    ws.con.execute("CREATE TABLE person_notes AS SELECT DISTINCT person, 'note' AS note FROM attempts")
    result = ws.forget("u1")
    assert result.derived["person_notes"] == 1
    assert ws.con.execute("SELECT person FROM person_notes").fetchall() == [("u2",)]
    assert result.derived["attempts"] == 1 and result.derived["timeline"] == 1


def test_a_failed_refresh_leaves_the_previous_tables_and_the_next_one_completes(make_ws, monkeypatch,
                                                                                   tmp_path):
    rows = [{"event_id": f"y{i}", "timestamp": f"2024-01-01T10:0{i}:00+00:00", "event": e,
             "anonymous_id": "a1", "user_id": None, "channel": "web"}
            for i, e in enumerate(["open", "loaded"])]
    ws = make_ws(SPEC, rows)
    ws.refresh(frictions=True)
    before = snapshot(ws)
    ws.ingest(write_events(tmp_path / "more.csv", [
        {"event_id": "y9", "timestamp": "2024-01-01T10:03:00+00:00", "event": "ok",
         "anonymous_id": "a1", "channel": "web"}]))

    import microjourney.workspace_refresh as refresh

    def broken(self, incremental):
        raise RuntimeError("the machine went away mid-refresh")

    monkeypatch.setattr(refresh.Refresh, "_frictions", broken)
    with pytest.raises(RuntimeError, match="went away"):
        ws.refresh()
    assert snapshot(ws) == before  # rolled back: the previous tables, readable
    monkeypatch.undo()
    assert ws.refresh().mode == "incremental"
    assert ws.attempts().to_pandas().outcome.tolist() == ["completed"]


def test_stores_of_one_process_share_statements_compiled_for_the_same_definitions(make_ws):
    """A refresh's statements are compiled once per definitions in a process: a second
    store with the same definitions compiles none; a store whose moment times out sooner
    compiles its own and gets its own answer."""
    from microjourney.engine import runtime

    rows = [{"event_id": f"z{i}", "timestamp": f"2024-01-01T10:0{m}:00+00:00", "event": e,
             "anonymous_id": "a1", "user_id": None, "channel": "web"}
            for i, (m, e) in enumerate([(0, "open"), (1, "loaded"), (5, "ok")])]
    first = make_ws(SPEC, rows, name="first")
    first.refresh(frictions=True)
    compiled = set(runtime._COMPILED)
    second = make_ws(SPEC, rows, name="second")
    second.refresh(frictions=True)
    assert set(runtime._COMPILED) == compiled  # the first store's statements, run again
    patient = make_ws(SPEC.replace("timeout: 3m", "timeout: 10m"), rows, name="patient")
    patient.refresh(frictions=True)
    assert len(set(runtime._COMPILED) - compiled) >= 10  # its own definitions, its own SQL
    # A 4-minute pause ends the attempt of a 3-minute timeout, not of a 10-minute one.
    assert first.attempts().to_pandas().outcome.tolist() == ["abandoned"]
    assert second.attempts().to_pandas().outcome.tolist() == ["abandoned"]
    assert patient.attempts().to_pandas().outcome.tolist() == ["completed"]
    assert snapshot(first) == snapshot(second)


def test_friction_tables_are_derived_on_first_use_then_kept_fresh(make_ws, tmp_path):
    """An analysis that reads no friction does not pay for detecting them; the first
    friction read derives them from the tables there are, and every refresh after keeps
    them up to date, as a rebuild would make them."""
    friction_tables = {t.name for t in DERIVED if t.name.startswith("friction")}

    def click(i: int, second: int, x: int = 5) -> dict:
        return {"event_id": f"k{i}", "timestamp": f"2024-01-01T10:00:{second:02d}+00:00",
                "event": "click", "anonymous_id": "a1", "channel": "web",
                "properties": {"x": x, "y": 10, "selector": "#pay"}}

    open_ = {"event_id": "o1", "timestamp": "2024-01-01T10:00:00+00:00", "event": "open",
             "anonymous_id": "a1", "channel": "web"}
    ws = make_ws(SPEC, [open_, click(1, 1), click(2, 1), click(3, 1)])
    assert ws.refresh().mode == "full"
    assert not friction_tables & ws.run.tables()  # not derived: nothing read them
    assert ws.attempts().count().execute() == 1
    assert ws.frictions().kind.execute().tolist() == ["rage_click"]  # first use
    assert friction_tables <= ws.run.tables()
    assert ws.refresh().mode == "none"  # and the state says they are there

    # New clicks: an incremental refresh keeps the friction tables, without being asked.
    ws.ingest(write_events(tmp_path / "more.csv", [click(4, 30), click(5, 30), click(6, 31)]))
    assert ws.refresh().mode == "incremental"
    assert ws.frictions(kind="rage_click").count().execute() == 2
    kept = {name: rows for name, rows in snapshot(ws).items() if name in friction_tables}
    assert ws.refresh(force=True).mode == "full"  # a rebuild keeps deriving them too
    assert {name: rows for name, rows in snapshot(ws).items() if name in friction_tables} == kept

    # Opened again, the workspace keeps them: the state records that they are derived.
    ws.ingest(write_events(tmp_path / "last.csv", [click(7, 50), click(8, 50), click(9, 50)]))
    import microjourney as mj

    ws.close()
    with mj.open(ws.root) as again:
        assert again.refresh().mode == "incremental"
        assert friction_tables <= again.run.tables()
        assert again.frictions(kind="rage_click").count().execute() == 3


def test_stopping_the_server_cuts_a_long_refresh_short_and_keeps_the_last_tables(make_ws, monkeypatch,
                                                                                   tmp_path):
    """A refresh of a large store can outlast the server's stop: stop() interrupts it (it
    rolls back) instead of closing the store under it."""
    import threading

    import microjourney.workspace_refresh as refresh
    from microjourney.server.refresher import Refresher

    ws = make_ws(SPEC, [{"event_id": "z1", "timestamp": "2024-01-01T10:00:00+00:00", "event": "open",
                         "anonymous_id": "a1", "channel": "web"}])
    ws.refresh(frictions=True)  # as the server's refresh keeps them
    before = snapshot(ws)
    ws.ingest(write_events(tmp_path / "more.csv", [
        {"event_id": "z2", "timestamp": "2024-01-01T10:01:00+00:00", "event": "ok",
         "anonymous_id": "a1", "channel": "web"}]))
    running = threading.Event()
    frictions = refresh.Refresh._frictions

    def slow(self, incremental):  # a statement of minutes inside the refresh
        running.set()
        self.con.execute("SELECT count(*) FROM range(100000000000) a, range(1000) b").fetchall()
        frictions(self, incremental)

    monkeypatch.setattr(refresh.Refresh, "_frictions", slow)
    refresher = Refresher(ws.catch_up, threading.Lock(), every=3600).start()
    assert running.wait(60)
    started = time.monotonic()
    refresher.stop(timeout=30, interrupt=ws.con.interrupt)
    assert time.monotonic() - started < 10 and not refresher._thread.is_alive()
    assert refresher.failures == 0  # cut short on purpose, not a failure
    assert snapshot(ws) == before  # rolled back: the last refresh's tables
    monkeypatch.undo()
    assert ws.refresh().mode == "incremental"  # the next refresh does the work


LIVE_JOURNEYS = ("[{name: payment, moments: [{name: pay, start: {event: open}, "
                 "complete: {event: ok}, timeout: 10m}]}]")


def _pay(i: int, event: str, second: int) -> dict:
    return {"type": "track", "event_id": f"{event}-{i}", "event": event, "channel": "web",
            "timestamp": f"2026-11-02T10:00:{second:02d}Z", "anonymous_id": f"p{i}"}


def _attempts(http) -> tuple[int, dict]:
    body = http.get("/v1/analyses/scorecard").json()
    rows = body["tables"]["moments"]
    return (rows[0]["attempts"] if rows else 0), body["meta"]


@pytest.mark.slow
def test_served_analyses_read_the_background_refresh_and_say_how_stale(tmp_path):
    from .live_server import LiveServer, make_workspace

    root = tmp_path / "ws"
    keys = make_workspace(root, server="{refresh_every: 1s}", journeys=LIVE_JOURNEYS)
    with LiveServer(root) as server:
        with server.client(keys["write_key"]) as w:
            first = [_pay(1, "open", 1), _pay(1, "ok", 5)]
            assert w.post("/v1/batch", json={"batch": first}).status_code == 200
        with server.client(keys["secret_key"]) as http:
            deadline = time.monotonic() + 30
            while (seen := _attempts(http))[0] < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            n, meta = seen
            assert n == 1 and meta["as_of"].startswith("2026-11-02T10:00:05")
            # Read from the last refresh: at most a refresh interval old, plus its own time.
            assert 0 <= meta["stale_s"] < 5 and meta["refreshed_at"]
            with server.client(keys["write_key"]) as w:
                batch = [_pay(i, "open", 10 + i) for i in range(2, 6)]
                assert w.post("/v1/batch", json={"batch": batch}).json()["accepted"] == 4
            started = time.monotonic()
            while (seen := _attempts(http))[0] < 5 and time.monotonic() - started < 30:
                time.sleep(0.1)
            assert seen[0] == 5, seen
            # Taken in by the next background refresh (every 1 s), incrementally.
            assert time.monotonic() - started < 10
    assert "refreshed the derived tables" not in server.log.read_text(encoding="utf-8")  # not at warning


@pytest.mark.slow
def test_serve_logs_each_refresh_at_info_with_counts_only(tmp_path):
    """`serve --log-level info` writes each background refresh to stderr, with the time, its
    mode and counts, and no value of the events (at the default level it writes none:
    ``test_served_analyses_read_the_background_refresh_and_say_how_stale``)."""
    from .live_server import LiveServer, make_workspace

    root = tmp_path / "ws"
    keys = make_workspace(root, server="{refresh_every: 1s}", journeys=LIVE_JOURNEYS)
    with LiveServer(root, args=("--log-level", "info")) as server:
        with server.client(keys["secret_key"]) as http, server.client(keys["write_key"]) as w:
            # Asked before the events come (after the first refresh): the answer is kept,
            # so the refresh that takes the events in is followed by computing it again.
            assert _attempts(http)[0] == 0
            calls = [{**_pay(1, "open", 1), "anonymous_id": "ann-4477009001"},
                     {**_pay(1, "ok", 5), "anonymous_id": "ann-4477009001"}]
            assert w.post("/v1/batch", json={"batch": calls}).json()["accepted"] == 2
            deadline = time.monotonic() + 30
            while _attempts(http)[0] < 1 and time.monotonic() < deadline:
                time.sleep(0.2)
            while "kept answers again" not in server.log.read_text(encoding="utf-8") \
                    and time.monotonic() < deadline:  # logged once computed
                time.sleep(0.2)
    log = server.log.read_text(encoding="utf-8")
    assert "4477009001" not in log
    line = next(x for x in log.splitlines() if "refreshed the derived tables" in x)
    assert " INFO microjourney.server: " in line and " persons, " in line
    assert re.search(r"INFO microjourney.server: computed [1-9][0-9]* kept answers again in "
                     r"[0-9]+\.[0-9]{2} s$", log, re.MULTILINE)
    assert datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")  # when, to the second
