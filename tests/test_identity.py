"""Identity stitching (identify, alias, shared keys) and erasure, on real DuckDB files.

Rules: docs/identity.md. Hand-worked cases first, then properties of the resolution
(order independence, idempotence, users merged only by alias), then counts of attempts
and funnels over resolved persons, then erasure.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microjourney as mj
from microjourney.errors import IngestError, QueryError, WorkspaceError
from microjourney.identity import BLANKS, id_node, resolve
from microjourney.store import connect
from microjourney.store.db import _MIGRATIONS, SCHEMA_VERSION, schema_version
from microjourney.store.erasure import id_norm
from microjourney.store.identities import write_calls

from .helpers import PAYMENT_YAML, ev, write_events

KEYED_YAML = PAYMENT_YAML + "identity:\n  keys: [email, phone, chat_handle]\n"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(t: str) -> datetime:
    """``2024-01-01T{t}`` UTC as a datetime (for calls), like :func:`helpers.ev` for rows."""
    return datetime.fromisoformat(f"2024-01-01T{t}+00:00")


def identify(call_id: str, t: str, *, anonymous_id: str | None = None, user_id: str | None = None,
             **traits: str) -> dict:
    return {"call_id": call_id, "kind": "identify", "anonymous_id": anonymous_id, "user_id": user_id,
            "previous_id": None, "traits": traits or None, "timestamp": at(t)}


def alias(call_id: str, t: str, previous_id: str, user_id: str) -> dict:
    return {"call_id": call_id, "kind": "alias", "anonymous_id": None, "user_id": user_id,
            "previous_id": previous_id, "traits": None, "timestamp": at(t)}


def anon(t: str, event: str, anonymous_id: str, **extra: object) -> dict:
    row = ev(t, event, None, **extra)
    row["anonymous_id"] = anonymous_id
    return row


def person_map(ws: mj.Workspace) -> dict[tuple[str, str], str]:
    rows = ws.persons().to_pyarrow().to_pylist()
    return {(r["kind"], r["identifier"]): r["person"] for r in rows}


def persons_of_events(ws: mj.Workspace) -> dict[str, str]:
    e = ws.events()
    return {r["event_id"]: r["person"] for r in e.select("event_id", "person").to_pyarrow().to_pylist()}


# -- hand-worked cases ---------------------------------------------------------------


def test_anonymous_events_before_a_login_belong_to_the_user(make_ws):
    ws = make_ws(rows=[anon("10:00:00", "home", "a1"), anon("10:00:05", "login", "a1", user_id="u1"),
                       ev("10:00:09", "checkout_payment_opened", "u1")])
    assert set(persons_of_events(ws).values()) == {"u1"}
    assert person_map(ws) == {("anonymous", "a1"): "u1", ("user", "u1"): "u1"}


def test_an_identify_call_links_an_anonymous_id_with_no_login_event(make_ws):
    ws = make_ws(rows=[anon("10:00:00", "home", "a2"), ev("10:05:00", "orders", "u2")])
    assert set(persons_of_events(ws).values()) == {"a2", "u2"}
    assert ws.write_identities([identify("c1", "10:01:00", anonymous_id="a2", user_id="u2")]).accepted == 1
    assert set(persons_of_events(ws).values()) == {"u2"}


def test_alias_chains_join_user_ids_into_the_smallest(make_ws):
    ws = make_ws(rows=[ev("10:00:00", "a", "u3"), ev("10:01:00", "b", "u1"), ev("10:02:00", "c", "u2"),
                       ev("10:03:00", "d", "u9")])
    ws.write_identities([alias("x1", "11:00:00", "u3", "u2"), alias("x2", "11:05:00", "u2", "u1")])
    m = person_map(ws)
    assert m[("user", "u1")] == m[("user", "u2")] == m[("user", "u3")] == "u1"
    assert m[("user", "u9")] == "u9"
    # An alias from an id never seen as a user id (an old anonymous id) joins it too.
    ws.write_identities([alias("x3", "12:00:00", "old-device", "u9")])
    assert person_map(ws)[("anonymous", "old-device")] == "u9"


def test_two_users_sharing_a_device_are_not_merged(make_ws):
    ws = make_ws(rows=[anon("09:00:00", "home", "tablet"),
                       anon("10:00:00", "login", "tablet", user_id="bob"),
                       anon("11:00:00", "login", "tablet", user_id="amy"),
                       ev("11:05:00", "orders", "amy")])
    by_event = persons_of_events(ws)
    assert set(by_event.values()) == {"bob", "amy"}
    m = person_map(ws)
    assert m[("user", "bob")] == "bob" and m[("user", "amy")] == "amy"
    assert m[("anonymous", "tablet")] == "bob"  # the first user in time keeps the device
    # An identify call for the other user changes nothing: users join only by alias.
    ws.write_identities([identify("c1", "12:00:00", anonymous_id="tablet", user_id="amy")])
    assert person_map(ws)[("anonymous", "tablet")] == "bob"


def test_a_shared_household_email_does_not_merge_two_users(make_ws):
    ws = make_ws(KEYED_YAML, rows=[ev("10:00:00", "x", "p1"), ev("10:00:00", "y", "p2")])
    ws.write_identities([identify("c2", "10:02:00", user_id="p2", email="home@family.org"),
                         identify("c1", "10:01:00", user_id="p1", email="Home@Family.org")])
    m = person_map(ws)
    assert m[("user", "p1")] == "p1" and m[("user", "p2")] == "p2"
    assert m[("email", "home@family.org")] == "p1"


def test_a_shared_email_joins_an_anonymous_chat_handle_to_the_web_user(make_ws):
    rows = [ev("10:00:00", "checkout_payment_opened", "ann", channel="web"),
            anon("10:20:00", "contact_started", "chat-77", channel="chat",
                 context={"traits": {"email": "  ANN@Example.com ", "chat_handle": "annie"}}),
            anon("10:21:00", "message", "chat-77", channel="chat")]
    ws = make_ws(KEYED_YAML, rows=rows)
    assert set(persons_of_events(ws).values()) == {"ann", "chat-77"}
    ws.write_identities([identify("c1", "09:00:00", user_id="ann", email="ann@example.com")])
    assert set(persons_of_events(ws).values()) == {"ann"}
    m = person_map(ws)
    assert m[("email", "ann@example.com")] == m[("chat_handle", "annie")] == "ann"


def test_key_values_are_normalised_before_linking(make_ws):
    rows = [anon("10:00:00", "call", "voice-1", channel="voice",
                 context={"traits": {"phone": "+44 (0)7700 900-123"}}),
            anon("10:30:00", "sms_reply", "sms-9", channel="sms",
                 context={"traits": {"phone": "44 07700900123"}})]
    ws = make_ws(KEYED_YAML, rows=rows)
    m = person_map(ws)
    assert m[("phone", "4407700900123")] == m[("anonymous", "voice-1")] == m[("anonymous", "sms-9")]
    assert m[("anonymous", "sms-9")] == "sms-9"  # anonymous persons: the smallest anonymous id
    # Keys not declared in the workspace link nothing.
    ws2 = make_ws(PAYMENT_YAML, rows=rows, name="nokeys")
    assert set(persons_of_events(ws2).values()) == {"voice-1", "sms-9"}


# -- the store: calls and migration -----------------------------------------------------


def test_calls_are_stored_once_by_call_id(tmp_path):
    con = connect(tmp_path / "s.duckdb")
    calls = [identify("c1", "10:00:00", anonymous_id="a", user_id="u"),
             alias("c2", "10:01:00", "u", "v"), identify("c1", "10:00:00", anonymous_id="a", user_id="u")]
    r = write_calls(con, calls, source="test")
    assert (r.accepted, r.duplicates) == (2, 1)
    r = write_calls(con, calls[:2], source="test")  # a retry
    assert (r.accepted, r.duplicates) == (0, 2)
    rows = con.execute("SELECT call_id, seq, kind, previous_id FROM identities ORDER BY seq").fetchall()
    assert rows == [("c1", 1, "identify", None), ("c2", 2, "alias", "u")]
    con.close()


@pytest.mark.parametrize("bad, message", [
    ({"kind": "identify", "anonymous_id": None, "user_id": None}, "needs a user_id or an anonymous_id"),
    ({"kind": "alias", "previous_id": None}, "needs a previous_id and a user_id"),
    ({"kind": "merge"}, "is not one of identify, alias"),
    ({"timestamp": datetime(2024, 1, 1)}, "time zone"),
    ({"call_id": ""}, "no call_id"),
])
def test_a_call_without_the_ids_its_kind_needs_is_refused_and_nothing_is_stored(tmp_path, bad, message):
    con = connect(tmp_path / "s.duckdb")
    good = alias("ok", "10:00:00", "u", "v")
    with pytest.raises(IngestError, match=message) as info:
        write_calls(con, [good, {**alias("c", "10:00:00", "u", "v"), **bad}], source="test")
    assert info.value.code == "ingest/identity"
    assert con.execute("SELECT count(*) FROM identities").fetchall()[0][0] == 0
    con.close()


def test_a_version_1_store_migrates(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    for statement in _MIGRATIONS[1]:
        con.execute(statement)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.close()
    con = connect(path)
    assert schema_version(con) == SCHEMA_VERSION == 6
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"identities", "erasures", "events", "batches", "changes", "deliveries", "baselines"} <= tables
    con.close()


# -- properties ------------------------------------------------------------------------

USERS, ANONS, EMAILS = ("u0", "u1", "u2", "u3"), ("a0", "a1", "a2", "a3"), ("e0", "e1", "e2")
_SCHEMA = pa.schema([("anonymous_id", pa.string()), ("user_id", pa.string()), ("previous_id", pa.string()),
                     ("alias", pa.bool_()), ("k0", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))])


@st.composite
def sighting(draw: st.DrawFn) -> dict:
    """One event or call, as a sighting row: who was seen with whom, when."""
    ts = T0 + timedelta(minutes=draw(st.integers(0, 5)))
    if draw(st.integers(0, 4)) == 0:  # an alias
        return {"anonymous_id": None, "user_id": draw(st.sampled_from(USERS)),
                "previous_id": draw(st.sampled_from(USERS + ANONS)), "alias": True, "k0": None, "ts": ts}
    a = draw(st.none() | st.sampled_from(ANONS))
    u = draw(st.none() | st.sampled_from(USERS)) if a else draw(st.sampled_from(USERS))
    return {"anonymous_id": a, "user_id": u, "previous_id": None, "alias": False,
            "k0": draw(st.none() | st.sampled_from(EMAILS)), "ts": ts}


def _resolved(rows: list[dict]) -> dict[tuple[str, str], str]:
    out = resolve(pa.Table.from_pylist(rows, schema=_SCHEMA), ["email"]).to_pylist()
    return {(r["kind"], r["identifier"]): r["person"] for r in out}


def _alias_joined(rows: list[dict]) -> dict[str, str]:
    """Union-find over alias rows only: the reference for 'users merge only by alias'."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for r in rows:
        if r["alias"]:
            parent[find(r["previous_id"])] = find(r["user_id"])
    return {x: find(x) for x in parent}


@settings(max_examples=60, deadline=None)
@given(st.lists(sighting(), min_size=1, max_size=14), st.randoms(use_true_random=False))
def test_resolution_ignores_arrival_order_and_repeats(rows, rnd):
    expected = _resolved(rows)
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert _resolved(shuffled) == expected
    assert _resolved(rows + shuffled) == expected  # every call applied twice


@settings(max_examples=60, deadline=None)
@given(st.lists(sighting(), min_size=1, max_size=14))
def test_user_ids_merge_only_through_aliases(rows):
    m = _resolved(rows)
    joined = _alias_joined(rows)
    users = [i for (kind, i) in m if kind == "user"]
    for x in users:
        for y in users:
            if x < y and m[("user", x)] == m[("user", y)]:
                assert joined.get(x, x) == joined.get(y, y), (x, y)
            if joined.get(x, x) == joined.get(y, y):
                assert m[("user", x)] == m[("user", y)]
    # An identified person is named by its smallest user id; every identifier has a person.
    for (kind, i), p in m.items():
        if kind == "user":
            assert p <= i and ("user", p) in m
        assert p is not None


@settings(max_examples=60, deadline=None)
@given(st.lists(sighting(), min_size=1, max_size=14))
def test_an_anonymous_id_seen_only_with_users_goes_to_the_first(rows):
    m = _resolved(rows)
    for a in ANONS:
        mine = [r for r in rows if a in (r["anonymous_id"], r["previous_id"])]
        if not mine or any(r["user_id"] is None or r["alias"] or r["k0"] for r in mine):
            continue  # only ids seen with users (events, identify calls), and nothing else
        first = min((r["ts"], m[("user", r["user_id"])]) for r in mine)
        assert m[("anonymous", a)] == first[1]


def test_ingest_order_and_repeated_calls_do_not_change_persons(make_ws):
    rows = [anon("10:00:00", "home", "a1", event_id="e1"),
            anon("10:00:01", "login", "a1", user_id="u2", event_id="e2"),
            anon("10:00:01", "login", "a1", user_id="u1", event_id="e3"),  # same instant: smallest wins
            anon("10:00:02", "chat", "c5", channel="chat", event_id="e4",
                 context={"traits": {"email": "X@y.org"}}),
            ev("10:00:03", "orders", "u3", event_id="e5"),
            ev("10:00:04", "orders", "u4", event_id="e6")]
    calls = [identify("i1", "09:00:00", user_id="u3", email="x@Y.org"), alias("i2", "11:00:00", "u4", "u2")]
    results = []
    for n, seed in enumerate((1, 2, 3)):
        rnd = random.Random(seed)
        shuffled, order = rows[:], calls[:]
        rnd.shuffle(shuffled)
        rnd.shuffle(order)
        ws = make_ws(KEYED_YAML, rows=shuffled[:3], name=f"w{n}")
        ws.write_identities(order[:1])
        ws.ingest(write_events(ws.root / "more.csv", shuffled[3:]))
        ws.write_identities(order)  # the first call again: a duplicate
        results.append((person_map(ws), persons_of_events(ws)))
    assert results[0] == results[1] == results[2]
    m, by_event = results[0]
    assert m[("anonymous", "a1")] == "u1" and m[("user", "u4")] == "u2"
    assert by_event["e4"] == "u3"


# -- attempts and funnels count resolved persons ---------------------------------------------


def test_attempts_and_funnels_count_resolved_persons(make_ws):
    rows = [anon("10:00:00", "checkout_payment_opened", "a1"),
            anon("10:00:02", "payment_gateway_loaded", "a1"),
            ev("10:00:09", "card_details_entered", "u1", properties={"valid": True}),
            ev("10:00:15", "payment_succeeded", "u1")]
    ws = make_ws(rows=rows)
    assert list(ws.attempts("card_payment").to_pandas().person) == ["a1"]
    assert list(ws.funnel("card_payment").to_pandas()["count"]) == [1, 1, 0, 0]
    ws.write_identities([identify("c1", "10:00:05", anonymous_id="a1", user_id="u1")])
    after = ws.attempts("card_payment").to_pandas()
    assert list(after.person) == ["u1"] and list(after.outcome) == ["completed"]
    f = ws.funnel("card_payment").to_pandas()
    assert list(f["count"]) == [1, 1, 1, 1]
    assert ws.summary()["persons"] == 1


# -- erasure ---------------------------------------------------------------------------

ANN = ("user-ann", "anon-ann-web", "chat-ann-77", "ann@example.com", "4477009001", "ann-handle")


def _erasure_ws(make_ws) -> mj.Workspace:
    rows = [anon("10:00:00", "checkout_payment_opened", "anon-ann-web"),
            anon("10:00:02", "payment_gateway_loaded", "anon-ann-web", user_id="user-ann"),
            ev("10:00:09", "card_details_entered", "user-ann", properties={"valid": True}),
            ev("10:00:15", "payment_failed", "user-ann"),
            anon("10:05:00", "contact_started", "chat-ann-77", channel="chat",
                 context={"traits": {"email": "Ann@Example.com", "chat_handle": "ann-handle"}}),
            ev("10:00:00", "checkout_payment_opened", "user-bob"),
            ev("10:00:03", "payment_gateway_loaded", "user-bob"),
            ev("10:00:20", "payment_succeeded", "user-bob"),
            # Rejected rows that carry Ann's identifiers (and one of Bob's).
            {"timestamp": "soon", "event": "x", "user_id": "user-ann", "channel": "web"},
            {"timestamp": "2024-01-01T10:00:00+00:00", "event": "x", "anonymous_id": "chat-ann-77",
             "channel": "pigeon"},
            {"timestamp": "2024-01-01T10:00:00+00:00", "event": "x", "anonymous_id": "voice-3",
             "channel": "voice", "context": {"traits": {"chat_handle": " ann-handle "}, "x": 1},
             "properties": "[broken"},
            {"timestamp": "later", "event": "x", "user_id": "user-bob", "channel": "web"}]
    ws = make_ws(KEYED_YAML, rows=rows)
    ws.write_identities([identify("c1", "09:00:00", user_id="user-ann", email="ann@example.com",
                                  phone="4477009001"),
                         identify("c2", "09:00:00", user_id="user-bob", email="bob@example.com")])
    return ws


def _every_text(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each table of the store as one lower-cased text (every value of every row)."""
    out = {}
    for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                "WHERE table_schema = current_schema()").fetchall():
        rows = con.sql(f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{table}"').fetchall()
        out[table] = "\n".join(str(r) for r in rows).lower()
    return out


def test_forget_removes_every_row_carrying_the_persons_identifiers(make_ws):
    ws = _erasure_ws(make_ws)
    assert ws.persons().filter(lambda t: t.person == "user-ann").count().execute() == 6
    # Build every derived table first, so that erasure has to deal with them.
    ws.frictions().execute()
    ws.friction_summary()
    ws.process_map()
    assert ws.attempts().count().execute() == 2
    texts = _every_text(ws.con)
    assert "user-ann" in texts["timeline"] and "user-ann" in texts["attempts"]
    assert sum("chat-ann-77" in t for t in texts.values()) >= 3

    result = ws.forget("user-ann")
    assert result.counts == {"events": 5, "identities": 1, "quarantine": 3}
    assert result.derived["persons"] == 6 and result.derived["attempts"] >= 1

    texts = _every_text(ws.con)
    for table, text in texts.items():
        for identifier in ANN:
            assert identifier not in text, (table, identifier)
    assert "user-bob" in texts["events"] and "user-bob" in texts["quarantine"]
    log = ws.con.execute("SELECT erasure_id, counts FROM erasures").fetchall()
    assert [json.loads(c) for _, c in log] == [result.counts] and log[0][0] == result.erasure_id
    # Analyses still run, without Ann, and the derived tables are rebuilt.
    assert list(ws.attempts().to_pandas().person) == ["user-bob"]
    assert ws.scorecard().to_pandas().attempts.tolist() == [1]
    ws.frictions().execute()
    assert ws.summary()["persons"] == 1
    for table, text in _every_text(ws.con).items():
        assert not any(i in text for i in ANN), table


def test_forget_by_an_aliased_user_id_and_unknown_persons(make_ws):
    ws = make_ws(rows=[ev("10:00:00", "a", "u7"), ev("10:01:00", "b", "u5"), ev("10:02:00", "c", "u6")])
    ws.write_identities([alias("x", "11:00:00", "u7", "u5")])
    with pytest.raises(QueryError, match="no person 'nobody'") as info:
        ws.forget("nobody")
    assert info.value.code == "query/person"
    assert ws.forget("u7").counts == {"events": 2, "identities": 1, "quarantine": 0}
    assert set(persons_of_events(ws).values()) == {"u6"}
    with pytest.raises(QueryError):
        ws.forget("u5")  # forgotten already


def test_forget_needs_the_store(make_ws, tmp_path):
    ws = make_ws(rows=[ev("10:00:00", "a", "u1")])
    ws.export_lake(tmp_path / "lake")
    with mj.open(ws.root, lake=tmp_path / "lake") as over_lake:
        with pytest.raises(WorkspaceError, match="open over a lake"):
            over_lake.forget("u1")
        assert set(persons_of_events(over_lake).values()) == {"u1"}


def test_cli_forget(make_ws):
    ws = _erasure_ws(make_ws)
    root = ws.root
    ws.close()
    cmd = [sys.executable, "-m", "microjourney", "forget", "user-ann", "-w", str(root), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["counts"] == {"events": 5, "identities": 1, "quarantine": 3}
    assert not any(i in proc.stdout.lower() for i in ANN)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "query/person" in again.stderr


def test_forget_removes_key_values_that_linked_after_trimming_any_whitespace(make_ws):
    """A key value counts after trimming spaces, tabs and newlines; erasure trims the same, so
    every event carrying the forgotten person's e-mail goes (users are not merged by it)."""
    ws = make_ws(KEYED_YAML, rows=[
        ev("10:00:00", "a", "u1", context={"traits": {"email": "ann@x.io"}}),
        ev("10:01:00", "b", "u2", context={"traits": {"email": "ann@x.io\t"}}),
        ev("10:02:00", "c", "u3")])
    assert set(persons_of_events(ws).values()) == {"u1", "u2", "u3"}
    assert ws.forget("u1").counts["events"] == 2
    assert set(persons_of_events(ws).values()) == {"u3"}


# -- ids as they link, and as erasure compares them -------------------------------------


def test_ids_link_trimmed_and_the_map_keeps_every_spelling(make_ws):
    ws = make_ws(rows=[ev("10:00:00", "a", "u1"), ev("10:01:00", "b", " u1\t"), ev("10:02:00", "c", "u2")])
    ws.write_identities([identify("i1", "10:03:00", anonymous_id="a1 ", user_id="\nu1")])
    m = person_map(ws)
    assert m == {("user", "u1"): "u1", ("user", " u1\t"): "u1", ("user", "\nu1"): "u1",
                 ("anonymous", "a1 "): "u1", ("user", "u2"): "u2"}
    assert sorted(persons_of_events(ws).values()) == ["u1", "u1", "u2"]


_BLANKS = st.sampled_from([*BLANKS, "\u00a0", "\u2003", "x", "-"])


_PADDED = st.tuples(st.text(_BLANKS, max_size=4), st.text(max_size=4),
                    st.text(_BLANKS, max_size=3)).map("".join)


@settings(max_examples=80, deadline=None)
@given(st.lists(_PADDED, min_size=1, max_size=20))
def test_erasure_compares_ids_exactly_as_linking_does(ids):
    """``erasure.id_norm`` (SQL, what erasure compares) gives what ``identity.id_node`` (Arrow,
    what linking links) gives, for ids padded with every blank and with look-alikes."""
    ids = [i for i in ids if i]  # the writer stores no empty id
    con = duckdb.connect()
    try:
        got = [r[0] for r in con.execute(f"SELECT {id_norm('x')} FROM unnest(?) AS t(x)", [ids]).fetchall()]
    finally:
        con.close()
    assert got == id_node(pa.array(ids, pa.string())).to_pylist()


@pytest.mark.parametrize("key", ["email", "phone", "account"])
def test_a_value_looked_up_is_normalised_as_stored_values_link(key):
    """The Python form (the agent hand-off's lookup) and the engine's agree."""
    import ibis

    from microjourney.identity import normalise, normalise_text

    con = ibis.duckdb.connect()
    for value in (" Ann@Example.COM ", "+44 (20) 7946-0018", "  ", "x", "Ünïcode Ñame ",
                  "\u00a0ann@x.io\t", "\x0bref\x0c"):  # a no-break space is not trimmed
        got = con.execute(normalise(ibis.literal(value), key))
        assert (got if isinstance(got, str) else "") == normalise_text(value, key), (value, key)
