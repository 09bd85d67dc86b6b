"""Served answers kept until the next refresh (microjourney/server/results.py)."""

from __future__ import annotations

import threading
import time

import pytest

from microjourney.server.results import MAX_ROWS, Results

from .helpers import write_events


def answer(rows: int = 1, stale: float = 0.0) -> dict:
    return {"ok": True, "meta": {"stale_s": stale}, "tables": {"t": [{"n": i} for i in range(rows)]}}


def test_an_answer_is_kept_for_the_tables_it_read_and_ages_with_each_refresh():
    kept = Results()
    kept.put("k", ("v1", 100.0), answer(), lambda ws: answer())
    assert kept.get("k", ("v2", 101.0)) is None  # other tables: computed again
    assert kept.get("other", ("v1", 100.0)) is None
    got = kept.get("k", ("v1", 100.0))
    assert got is not None and got["tables"] == answer()["tables"]
    assert got["meta"]["stale_s"] == pytest.approx(time.time() - 100.0, abs=5)
    # A later refresh that found nothing new: the same tables, kept, as fresh as that refresh.
    later = kept.get("k", ("v1", time.time() - 1))
    assert later is not None and later["meta"]["stale_s"] == pytest.approx(1, abs=0.5)
    assert later["meta"]["refreshed_at"].endswith("+00:00")
    kept.clear()
    assert kept.get("k", ("v1", 100.0)) is None


def test_large_answers_and_unrefreshed_tables_are_not_kept_and_the_oldest_go_first():
    kept = Results(size=2)
    kept.put("big", ("v", 1.0), answer(MAX_ROWS + 1), lambda ws: {})
    kept.put("none", (None, None), answer(), lambda ws: {})
    assert kept.get("big", ("v", 1.0)) is None and kept.get("none", (None, None)) is None
    for key in ("a", "b"):
        kept.put(key, ("v", 1.0), answer(), lambda ws: {})
    assert kept.get("a", ("v", 1.0)) is not None  # asked: the most recent now
    kept.put("c", ("v", 1.0), answer(), lambda ws: {})
    assert kept.get("b", ("v", 1.0)) is None and kept.get("a", ("v", 1.0)) is not None


def test_while_tables_are_renewed_the_last_two_versions_answers_are_given_as_they_stand():
    kept = Results()
    kept.put("k", ("v1", 100.0), answer(), lambda ws: answer())
    got = kept.latest("k")
    assert got is not None and got["meta"]["refreshed_at"].startswith("1970-01-01T00:01:40")
    assert kept.latest("other") is None
    kept.get("k", ("v1", 200.0))  # a refresh that found nothing new: as of it now
    kept.put("j", ("v2", 300.0), answer(), lambda ws: answer())  # the next version's first
    got = kept.latest("k")  # one version behind: given, saying so
    assert got is not None and got["meta"]["refreshed_at"].startswith("1970-01-01T00:03:20")
    assert got["meta"]["stale_s"] == pytest.approx(time.time() - 200.0, abs=5)
    kept.put("i", ("v3", 400.0), answer(), lambda ws: answer())
    assert kept.latest("k") is None  # two versions behind: computed again instead
    assert kept.latest("j") is not None and kept.latest("i") is not None


SPEC = ("journeys: [{name: j, moments: [{name: pay, start: {event: open}, complete: {event: ok}, "
        "timeout: 10m}]}]\n")


def test_warm_computes_the_asked_answers_again_for_the_new_refresh(make_ws, tmp_path):
    from microjourney import registry

    def pay(i: int, event: str) -> dict:
        return {"event_id": f"w{i}{event}", "timestamp": f"2024-01-01T10:0{i}:00+00:00", "event": event,
                "anonymous_id": f"a{i}", "channel": "web"}

    ws = make_ws(SPEC, [pay(1, "open"), pay(1, "ok")])
    ws.refresh()
    reader = ws.reader()

    def compute(r) -> dict:  # noqa: ANN001
        return registry.run(r, "scorecard", {}).to_dict()

    kept, lock = Results(), threading.Lock()
    tables = reader.tables_read()
    kept.put("scorecard", tables, compute(reader), compute)
    assert kept.warm(reader, reader.tables_read, lock) == 0  # fresh already
    ws._fresh = False
    ws.refresh()  # nothing new: the same tables, refreshed later
    assert reader.tables_read()[0] == tables[0] and reader.tables_read()[1] != tables[1]
    assert kept.warm(reader, reader.tables_read, lock) == 0  # kept
    ws.ingest(write_events(tmp_path / "more.csv", [pay(2, "open")]))
    ws.refresh()
    assert reader.tables_read()[0] != tables[0] and kept.get("scorecard", reader.tables_read()) is None
    assert kept.warm(reader, reader.tables_read, lock) == 1
    warmed = kept.get("scorecard", reader.tables_read())
    assert warmed is not None and warmed["tables"] == compute(reader)["tables"]
    assert warmed["tables"]["moments"][0]["attempts"] == 2
    reader.close_reader()


def test_served_answers_are_kept_until_the_next_refresh_and_dropped_by_an_erasure(tmp_path):
    import microjourney as mj

    from .live_server import LiveServer, make_workspace

    root = tmp_path / "ws"
    keys = make_workspace(root, server="{refresh_every: 1h}", journeys=SPEC.split(": ", 1)[1].strip())
    rows = [{"event_id": f"s{i}", "timestamp": f"2026-11-02T10:0{i}:00+00:00", "event": "open",
             "anonymous_id": f"p{i}", "channel": "web"} for i in (1, 2)]
    with mj.open(root) as ws:  # stored before the server's first refresh
        ws.ingest(write_events(tmp_path / "e.csv", rows))
    with LiveServer(root) as server:
        with server.client(keys["secret_key"]) as http:
            first = http.get("/v1/analyses/attempts", params={"moment": "pay"}).json()
            time.sleep(0.3)
            again = http.get("/v1/analyses/attempts", params={"moment": "pay"}).json()
            # Both answers read the first refresh (the next is an hour away), the second
            # from memory, only older.
            assert again["tables"] == first["tables"]
            assert again["meta"]["refreshed_at"] == first["meta"]["refreshed_at"]
            assert again["meta"]["stale_s"] > first["meta"]["stale_s"]
            persons = {r["person"] for r in first["tables"]["attempts"]}
            assert len(persons) == 2
            for person in persons:
                assert http.delete(f"/v1/persons/{person}").status_code == 200
            after = http.get("/v1/analyses/attempts", params={"moment": "pay"}).json()
            assert not persons & {r["person"] for r in after["tables"]["attempts"]}


def test_the_store_version_changes_with_every_write(make_ws, tmp_path):
    rows = [{"event_id": "v1", "timestamp": "2024-01-01T10:00:00+00:00", "event": "open",
             "anonymous_id": "p1", "channel": "web"},
            {"event_id": "v2", "timestamp": "not a time", "event": "open", "anonymous_id": "p2",
             "channel": "web"}]
    ws = make_ws(SPEC)
    empty = ws.store_read()
    assert ws.store_read() == empty  # nothing written: the same version
    ws.ingest(write_events(tmp_path / "a.csv", rows))  # one stored, one quarantined
    stored = ws.store_read()
    assert stored != empty
    ws.clear_quarantine()
    cleared = ws.store_read()
    assert cleared != stored
    ws.ingest(write_events(tmp_path / "b.csv", rows[:1]))  # a duplicate only: received grows
    assert ws.store_read() not in (empty, stored, cleared)


def test_served_data_quality_is_kept_until_the_collector_commits(tmp_path):
    from .live_server import LiveServer, make_workspace

    root = tmp_path / "ws"
    keys = make_workspace(root, server="{refresh_every: 1h}", journeys=SPEC.split(": ", 1)[1].strip())
    with LiveServer(root) as server, server.client(keys["secret_key"]) as api, \
            server.client(keys["write_key"]) as collector:
        def rejected() -> int:
            days = api.get("/v1/analyses/data-quality").json()["tables"]["days"]
            return sum(d["rejected"] for d in days)

        assert rejected() == rejected() == 0
        bad = {"type": "track", "event": "open", "anonymous_id": "p1", "timestamp": "yesterday"}
        assert collector.post("/v1/batch", json={"batch": [bad]}).status_code < 300
        # The next refresh is an hour away, yet the kept answer is not served: the store moved.
        assert rejected() == 1


def test_an_answer_reads_one_refresh_though_the_next_commits_meanwhile(make_ws, tmp_path):
    """Under the reader's lock (``Reading``) the version an answer is kept under and the
    answer itself read one committed refresh: a refresh that commits in between is seen
    only once the lock is let go (with a plain lock, the answer read it and was kept under
    the version before)."""
    from microjourney import registry
    from microjourney.server.results import Reading

    def pay(i: int, event: str) -> dict:
        return {"event_id": f"r{i}{event}", "timestamp": f"2024-01-01T10:0{i}:00+00:00",
                "event": event, "anonymous_id": f"a{i}", "channel": "web"}

    def attempts(r) -> int:  # noqa: ANN001
        return registry.run(r, "scorecard", {}).to_dict()["tables"]["moments"][0]["attempts"]

    ws = make_ws(SPEC, [pay(1, "open"), pay(1, "ok")])
    ws.refresh()
    reader = ws.reader()
    with Reading(reader.con):
        version = reader.tables_read()
        ws.ingest(write_events(tmp_path / "more.csv", [pay(2, "open")]))
        ws.refresh()  # committed by the writing connection meanwhile
        assert attempts(reader) == 1 and reader.tables_read() == version
    assert attempts(reader) == 2 and reader.tables_read()[0] != version[0]
    reader.close_reader()
