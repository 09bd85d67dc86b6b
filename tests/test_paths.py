"""Process maps and path variants: hand-worked cases and real logs against independent counts."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict

import pytest

from microjourney.errors import QueryError

from .helpers import REALDATA, ev, write_events
from .test_attempts import SPEC


def _as_dict(table, key_cols, value_col):
    df = table.to_pandas()
    return {tuple(r[c] for c in key_cols) if len(key_cols) > 1 else r[key_cols[0]]: r[value_col]
            for r in df.to_dict("records")}


def test_process_map_and_variants_by_hand(make_ws):
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a"), ev("10:00:10", "loaded", "a"), ev("10:00:40", "ok", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:20", "loaded", "b"), ev("10:00:30", "failed", "b"),
        ev("10:00:00", "open", "c"), ev("10:00:30", "loaded", "c"), ev("10:01:30", "ok", "c"),
        ev("10:05:00", "open", "c"), ev("10:05:01", "noise", "c"),
    ])
    pm = ws.process_map("pay")  # cases are attempts: a, b, c's first and c's second
    edges = _as_dict(pm.edges, ["source", "target"], "count")
    assert edges == {("open", "loaded"): 3, ("loaded", "ok"): 2, ("loaded", "failed"): 1}
    median = _as_dict(pm.edges, ["source", "target"], "median_s")
    assert median[("open", "loaded")] == 20.0 and median[("loaded", "ok")] == 45.0
    assert _as_dict(pm.starts, ["name"], "count") == {"open": 4}
    assert _as_dict(pm.ends, ["name"], "count") == {"ok": 2, "failed": 1, "open": 1}
    assert _as_dict(pm.nodes, ["name"], "count") == {"open": 4, "loaded": 3, "ok": 2, "failed": 1}

    v = ws.variants("pay").to_pandas()
    assert list(v.variant) == ["open → loaded → ok", "open", "open → loaded → failed"]
    assert list(v.cases) == [2, 1, 1] and list(v["share"]) == [0.5, 0.25, 0.25]
    assert v.duration_median_s[0] == 65.0  # 40 s and 90 s
    # Per person, all of c's moment events make one path; over all events, noise too.
    per_person = ws.variants("pay", by="person").to_pandas()
    assert "open → loaded → ok → open" in set(per_person.variant)
    everything = ws.variants(top=1).to_pandas()
    assert len(everything) == 1 and everything.cases[0] == 1
    with pytest.raises(QueryError, match="--by attempt needs --moment"):
        ws.variants(by="attempt")


def test_the_drawn_process_map_keeps_the_commonest_edges_and_the_designed_path(make_ws):
    from microjourney.registry.process_map import TIME_BANDS, graph

    card = {"properties": {"valid": True}}
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a"), ev("10:00:10", "loaded", "a"), ev("10:00:20", "card", "a", **card),
        ev("10:00:40", "ok", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:20", "loaded", "b"), ev("10:00:30", "failed", "b"),
        ev("10:00:00", "open", "c"), ev("10:00:30", "loaded", "c"), ev("10:00:50", "card", "c", **card),
        ev("10:08:50", "ok", "c"),
    ])
    result = ws.analysis("process-map", moment="pay").to_dict()
    path = result["meta"]["path"]
    assert path == ["open", "loaded", "card", "ok"]  # start, steps, completion
    drawn = graph(result["tables"]["edges"], result["tables"]["nodes"], path)
    edges = {(e["source"], e["target"]): e for e in drawn["edges"]}
    assert set(edges) == {("open", "loaded"), ("loaded", "card"), ("card", "ok"), ("loaded", "failed")}
    assert {k for k, e in edges.items() if e["designed"]} == {("open", "loaded"), ("loaded", "card"),
                                                              ("card", "ok")}
    # Colour by median time: 20 s is in the second band, (20 s + 8 min) / 2 in the fourth.
    assert edges[("open", "loaded")]["color"] == TIME_BANDS[1][1]
    assert edges[("card", "ok")]["color"] == TIME_BANDS[3][1]
    # Wider and taller the more often: 3 > 2 > 1 transitions, nodes 3 > 2 > 1 occurrences.
    widths = [edges[k]["width"] for k in (("open", "loaded"), ("loaded", "card"), ("loaded", "failed"))]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    nodes = {n["id"]: n for n in drawn["nodes"]}
    assert [n["id"] for n in drawn["nodes"]] == ["open", "loaded", "card", "ok", "failed"]  # path first
    assert nodes["open"]["h"] > nodes["ok"]["h"] > nodes["failed"]["h"]
    assert not nodes["failed"]["designed"] and nodes["ok"]["designed"]
    assert edges[("loaded", "failed")]["title"] == "loaded → failed: 1 times, median 10.0 s"
    # With top=1 only the commonest edge is kept, but the designed path stays drawn.
    one = graph(result["tables"]["edges"], result["tables"]["nodes"], path, top=1)
    designed = {k for k, e in edges.items() if e["designed"]}
    assert {(e["source"], e["target"]) for e in one["edges"]} == designed
    assert one["total_edges"] == 4 and "failed" not in {n["id"] for n in one["nodes"]}


def _independent(path):
    from .test_realdata import parse_log

    cases = parse_log(path)
    edges, gaps, variants, durations = Counter(), defaultdict(list), Counter(), defaultdict(list)
    starts, ends = Counter(), Counter()
    for evs in cases.values():
        evs = sorted(evs)
        names = tuple(a for _, _, a in evs)
        for (t1, _, a), (t2, _, b) in zip(evs, evs[1:], strict=False):
            edges[(a, b)] += 1
            gaps[(a, b)].append((t2 - t1).total_seconds())
        starts[names[0]] += 1
        ends[names[-1]] += 1
        variants[names] += 1
        durations[names].append((evs[-1][0] - evs[0][0]).total_seconds())
    return edges, gaps, starts, ends, variants, durations


def test_timeline_agrees_with_sorting_again_and_follows_new_events(make_ws, tmp_path):
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a"), ev("10:00:10", "loaded", "a"), ev("10:00:40", "ok", "a"),
        {**ev("10:00:05", "loaded"), "user_id": None, "anonymous_id": "anon-b"},
        {**ev("10:00:00", "open", "b"), "anonymous_id": "anon-b"},
    ])
    # The whole-journey map reads the timeline; a period filter sorts the events again.
    fast, slow = ws.process_map(), ws.process_map(since="2024-01-01")
    def records(pm, part):
        key = ["source", "target"] if part == "edges" else ["name"]
        return getattr(pm, part).to_pandas().sort_values(key).to_dict("records")

    for part in ("nodes", "edges", "starts", "ends"):
        assert records(fast, part) == records(slow, part)
    # b's anonymous `loaded` belongs to b, after b's `open`.
    assert _as_dict(fast.edges, ["source", "target"], "count") == {
        ("open", "loaded"): 2, ("loaded", "ok"): 1}
    ws.ingest(write_events(tmp_path / "more.csv", [ev("10:01:00", "ok", "b")]))
    assert _as_dict(ws.process_map().edges, ["source", "target"], "count") == {
        ("open", "loaded"): 2, ("loaded", "ok"): 2}
    v = ws.variants().to_pandas()
    assert dict(zip(v.variant, v.cases, strict=True)) == {"open → loaded → ok": 2}


def _check_log(make_ws, name):
    path = REALDATA / "eventlogs" / name
    ws = make_ws("journeys: []\n")
    ws.ingest(path)
    edges, gaps, starts, ends, variants, durations = _independent(path)
    pm = ws.process_map()
    assert _as_dict(pm.edges, ["source", "target"], "count") == dict(edges)
    median = _as_dict(pm.edges, ["source", "target"], "median_s")
    assert median == pytest.approx({k: statistics.median(v) for k, v in gaps.items()}, abs=1e-3)
    assert _as_dict(pm.starts, ["name"], "count") == dict(starts)
    assert _as_dict(pm.ends, ["name"], "count") == dict(ends)
    v = ws.variants().to_pandas()
    assert dict(zip(v.variant, v.cases, strict=True)) == {
        " → ".join(k): n for k, n in variants.items()}
    got = dict(zip(v.variant, v.duration_median_s, strict=True))
    assert got == pytest.approx({" → ".join(k): statistics.median(d) for k, d in durations.items()},
                                abs=1e-3)


@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real data folder {REALDATA} is absent")
def test_helpdesk_process_map_and_variants(make_ws):
    _check_log(make_ws, "helpdesk.xes.gz")


@pytest.mark.slow
@pytest.mark.skipif(not REALDATA.is_dir(), reason=f"real data folder {REALDATA} is absent")
def test_bpic2012_process_map_and_variants(make_ws):
    _check_log(make_ws, "bpic2012.xes.gz")


def test_paths_after_and_before_a_step(make_ws):
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a"), ev("10:00:10", "loaded", "a"), ev("10:00:40", "ok", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:20", "loaded", "b"), ev("10:00:30", "failed", "b"),
        ev("10:00:00", "open", "c"), ev("10:00:05", "ok", "c"), ev("10:00:09", "loaded", "c"),
    ])
    after = ws.paths("loaded", moment="pay").to_pandas()
    # c's `loaded` comes after its attempt completed, so no attempt of c passes through it.
    assert dict(zip(after.variant, after.cases, strict=True)) == {"loaded → ok": 1, "loaded → failed": 1}
    before = ws.paths("ok", after=False, length=2).to_pandas()  # all events, per person
    assert dict(zip(before.variant, before.cases, strict=True)) == {"loaded → ok": 1, "open → ok": 1}
    assert dict(zip(before.variant, before.duration_median_s, strict=True)) == {
        "loaded → ok": 30.0, "open → ok": 5.0}
    with pytest.raises(QueryError, match="--length must be at least 1"):
        ws.paths("ok", length=0)


def test_filters_by_channel_and_period(make_ws):
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a", channel="app"), ev("10:00:10", "loaded", "a", channel="app"),
        {**ev("10:00:00", "open", "b"), "timestamp": "2024-01-02T10:00:00+00:00"},
        {**ev("10:00:00", "loaded", "b"), "timestamp": "2024-01-02T10:00:05+00:00"},
    ])
    app = ws.process_map(channel="app")
    assert _as_dict(app.edges, ["source", "target"], "count") == {("open", "loaded"): 1}
    later = ws.variants("pay", since="2024-01-02").to_pandas()
    assert list(later.variant) == ["open → loaded"] and list(later.cases) == [1]
    assert ws.variants(until="2024-01-01T10:00:05+00:00").to_pandas().variant.tolist() == ["open"]


def test_filter_by_outcome(make_ws):
    ws = make_ws(SPEC, [
        ev("10:00:00", "open", "a"), ev("10:00:10", "loaded", "a"), ev("10:00:40", "ok", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:20", "failed", "b"),
        ev("10:00:00", "open", "c"), ev("10:00:05", "loaded", "c"), ev("10:00:07", "failed", "c"),
        ev("10:30:00", "open", "c"), ev("10:30:09", "ok", "c"),
    ])
    failed = ws.process_map("pay", outcome="failed")
    assert _as_dict(failed.edges, ["source", "target"], "count") == {
        ("open", "loaded"): 1, ("loaded", "failed"): 1, ("open", "failed"): 1}
    done = ws.variants("pay", outcome="completed").to_pandas()
    assert dict(zip(done.variant, done.cases, strict=True)) == {"open → loaded → ok": 1, "open → ok": 1}
    # By person, a person's attempts with that outcome only: c's failed attempt, not its success.
    by_person = ws.variants("pay", by="person", outcome="failed").to_pandas()
    assert sorted(by_person.variant) == ["open → failed", "open → loaded → failed"]
    with pytest.raises(QueryError, match="--outcome needs --moment"):
        ws.process_map(outcome="failed")
    with pytest.raises(QueryError, match="unknown outcome 'lost'"):
        ws.variants("pay", outcome="lost")


def test_cli_json_shapes(make_ws):
    import json
    import subprocess
    import sys

    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:00:10", "loaded", "a"),
                        ev("10:00:40", "ok", "a")])
    root = str(ws.root)
    ws.close()  # one process at a time may hold the store

    def cli(*args):
        proc = subprocess.run([sys.executable, "-m", "microjourney", *args, "--json", "-w", root],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    pm = cli("process-map", "--moment", "pay")["tables"]
    assert set(pm) == {"nodes", "edges", "starts", "ends"}
    assert pm["starts"] == [{"name": "open", "count": 1}] and pm["ends"] == [{"name": "ok", "count": 1}]
    assert {"source": "open", "target": "loaded", "count": 1, "median_s": 10.0,
            "mean_s": 10.0} in pm["edges"]
    assert cli("variants", "-m", "pay")["tables"]["variants"][0]["variant"] == "open → loaded → ok"
    paths = cli("paths", "--to", "ok", "--length", "2")
    assert paths["tables"]["paths"][0]["variant"] == "loaded → ok"
    assert paths["meta"]["params"]["to"] == "ok" and paths["meta"]["params"]["from"] is None
