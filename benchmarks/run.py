"""Timed benchmark of microjourney against the DuckDB floor, on N synthetic events.

    python benchmarks/run.py --events 1000000 [--keep DIR] [--quick] [--explain] [--engines]
                             [--http N]

Generates the events (or reuses a cached file), then runs each stage in a fresh subprocess,
so that peak memory (the process's RSS high-water mark, ``ru_maxrss``) is per stage:

    floor       (a) DuckDB alone: read the Parquet file and sort by (user_id, timestamp) into
                an in-memory table; the floor the engine is compared with
    floor_disk  the same into a DuckDB file (what writing a store costs at least)
    ingest      (b) ``ws.ingest(file)`` into a fresh workspace (target: >= 1M events/s)
    analysis    (c) ``refresh(force=True)`` + ``scorecard()`` + ``funnel(m)`` for every moment
                (target: <= 3x the floor)
    frictions   (e) journey analytics, part 1: every friction detector over every attempt
                (``ws.frictions().count()``, the cache in the store dropped first) and
                ``ws.friction_summary()``
    journey     (e) part 2: ``ws.process_map()`` and ``ws.variants()`` of all events by person
                (target for frictions + journey: <= 3x the floor)
    pandas      the usual Python process-mining approach on the same Parquet file
                (``pandas_baseline.py``: read, sort, groupby + shift, groupby-apply); target:
                at least 10x the time of ``journey``. Run once, with its own time limit
                (``--pandas-timeout``); when it does not finish, the 1M figure is extrapolated
    agreement   (up to 2M events, not timed) microjourney's map and variants against pandas',
                with pandas' simplified cases and with microjourney's persons

and, unless ``--quick``, diagnostic stages that break (b), (c) and (e) down:

    ingest_profile    ``ws.ingest`` again, each SQL statement timed (time outside SQL is the reader
                      and Python), plus the pyarrow Parquet reader alone
    analysis_profile  refresh split into identity (person), tagging and attempt cutting, and
                      the funnel queries alone, each part materialised and timed on its own
    frictions_profile the friction scope materialised, then each detector on it, then all of
                      them in one query as the workspace runs them, then the summary statistics

``--explain`` also writes DuckDB ``EXPLAIN ANALYZE`` output of the refresh, of one funnel and of
the friction scope to ``<data dir>/plans/``. Results are printed as a table and appended as one
JSON line to ``benchmarks/results.jsonl``. Standard library only (plus the project's own
dependencies).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.jsonl"
MAIN_STAGES = ("floor", "floor_disk", "ingest", "analysis", "frictions", "journey")
BASELINE_STAGES = ("pandas", "agreement")
PROFILE_STAGES = ("ingest_profile", "analysis_profile", "frictions_profile")
ENGINE_STAGES = ("lake", "spark")  # with --engines
WS_STAGES = ("analysis", "frictions", "journey", "agreement", "analysis_profile", "frictions_profile",
             *ENGINE_STAGES)
INGEST_TARGET = 1_000_000  # events/s
RATIO_TARGET = 3.0  # analysis / floor, and (frictions + journey) / floor
PANDAS_TARGET = 10.0  # pandas / journey
CHECK_MAX_EVENTS = 2_000_000  # the agreement stage runs up to this many events


# ---------------------------------------------------------------------------------------------
# Child side: one stage per process.
# ---------------------------------------------------------------------------------------------
def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class _Clock:
    """Named wall-clock laps: ``with clock("refresh"): ...`` adds to ``clock.parts``."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    def __call__(self, name: str) -> _Lap:
        return _Lap(self, name)


class _Lap:
    def __init__(self, clock: _Clock, name: str) -> None:
        self.clock, self.name = clock, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.clock.parts[self.name] = self.clock.parts.get(self.name, 0.0) + time.perf_counter() - self.t0


def _stage_floor(data: Path, ws_dir: Path, clock: _Clock, disk: bool) -> dict:
    import duckdb

    db = str(ws_dir / "floor.duckdb") if disk else ":memory:"
    con = duckdb.connect(db)
    con.execute("SET TimeZone = 'UTC'")
    with clock("read_sort"):
        con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?) ORDER BY user_id, timestamp",
                    [str(data)]).fetchall()
    if disk:
        with clock("checkpoint"):
            con.execute("CHECKPOINT").fetchall()
    (rows,) = con.execute("SELECT count(*) FROM t").fetchall()[0]
    con.close()
    if disk:
        Path(db).unlink()
    return {"rows": rows}


def _stage_ingest(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    import microjourney as mj

    with mj.open(ws_dir) as ws:
        with clock("ingest"):
            r = ws.ingest(data)
        with clock("checkpoint"):
            ws.con.execute("CHECKPOINT").fetchall()
    return {"accepted": r.accepted, "duplicates": r.duplicates, "rejected": r.rejected}


def _stage_analysis(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    import microjourney as mj

    out: dict = {"funnels": {}}
    with mj.open(ws_dir) as ws:
        with clock("refresh"):
            ws.refresh(force=True)
        with clock("scorecard"):
            sc = ws.scorecard().to_pandas()
        for name in ws.moments:
            t0 = time.perf_counter()
            with clock("funnels"):
                ws.funnel(name).to_pandas()
            out["funnels"][name] = round(time.perf_counter() - t0, 3)
        out["attempts"] = int(sc["attempts"].sum())
        out["moments"] = len(ws.moments)
    return out


def _stage_frictions(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    """Every friction detector over every attempt, then the summary: the analysis stage's
    rebuild left the friction tables out (they are derived on first use), so the first
    friction read derives them."""
    import microjourney as mj

    out: dict = {}
    with mj.open(ws_dir) as ws:
        with clock("refresh (a check: the tables are fresh)"):
            out["refresh"] = ws.refresh().mode
        with clock("frictions: detect all"):
            out["frictions"] = int(ws.frictions().count().execute())
        with clock("friction_summary()"):
            moments, kinds = ws.friction_summary()
            moments.to_pandas()
            out["kinds_ranked"] = len(kinds.to_pandas())
        out["by_kind"] = dict(ws.con.execute(
            "SELECT kind, count(*) FROM frictions GROUP BY kind ORDER BY 2 DESC").fetchall())
    return out


def _stage_journey(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    """Process map (nodes, edges, starts, ends: one query each) and variants of all events,
    case = person."""
    import microjourney as mj

    out: dict = {}
    with mj.open(ws_dir) as ws:
        with clock("process_map()"):
            pm = ws.process_map()
        for part in ("nodes", "edges", "starts", "ends"):
            with clock(f"process_map: {part}"):
                out[part] = len(getattr(pm, part).to_pandas())
        with clock("variants()"):
            v = ws.variants().to_pandas()
        out["variants"] = len(v)
        out["cases"] = int(v["cases"].sum())
    return out


def _stage_pandas(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    """``pandas_baseline.run`` on the Parquet file: read, sort, map, variants."""
    sys.path.insert(0, str(HERE))
    import pandas_baseline

    out = pandas_baseline.run(data, clock)
    return {"events": out["events"], "cases": out["cases"], "edges": len(out["map"]["edges"]),
            "variants": len(out["variants"])}


def _compare_edges(mj_edges, pd_edges) -> dict:  # noqa: ANN001 - DataFrames
    m = mj_edges.merge(pd_edges, on=["source", "target"], how="outer", suffixes=("_mj", "_pd"))
    same = m["count_mj"].eq(m["count_pd"])
    both = m["count_mj"].notna() & m["count_pd"].notna()
    gap = (m["median_s_mj"] - m["median_s_pd"]).abs()[both]
    return {"edges_mj": int(m["count_mj"].notna().sum()), "edges_pandas": int(m["count_pd"].notna().sum()),
            "edges_same_count": int(same.sum()), "transitions_mj": int(m["count_mj"].sum()),
            "transitions_pandas": int(m["count_pd"].sum()),
            "max_median_gap_s": round(float(gap.max()), 4) if len(gap) else None}


def _stage_agreement(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    """Not timed: microjourney's map and variants against pandas', with pandas' simplified
    cases (user id, else anonymous id) and with microjourney's persons (``linked=True``)."""
    sys.path.insert(0, str(HERE))
    import pandas_baseline

    import microjourney as mj

    with mj.open(ws_dir) as ws:
        pm = ws.process_map()
        mj_edges = pm.edges.to_pandas()
        mj_nodes = pm.nodes.to_pandas().set_index("name")["count"]
        mj_var = ws.variants().to_pandas()
        persons = int(ws.summary()["persons"])
    out: dict = {"persons_mj": persons, "variants_mj": len(mj_var)}
    for label, linked in (("simplified", False), ("linked", True)):
        p = pandas_baseline.run(data, _Clock(), linked=linked)
        r = _compare_edges(mj_edges, p["map"]["edges"])
        pv = p["variants"].assign(variant=pandas_baseline.variant_text(p["variants"]))
        v = mj_var.merge(pv, on="variant", how="outer", suffixes=("_mj", "_pd"))
        nodes = p["map"]["nodes"]
        r.update(cases=p["cases"], variants=len(pv),
                 variants_same_count=int(v["cases_mj"].eq(v["cases_pd"]).sum()),
                 nodes_equal=bool(nodes.reindex(mj_nodes.index).eq(mj_nodes).all()
                                  and len(nodes) == len(mj_nodes)))
        out[label] = r
    return out


class _TimedCon:
    """A connection stand-in that times each ``execute``, labelled by what the statement does."""

    def __init__(self, con, clock: _Clock) -> None:  # noqa: ANN001 - a DuckDB connection
        self._con, self._clock = con, clock

    def execute(self, sql: str, *args: object):  # noqa: ANN201
        with self._clock("sql: " + _sql_label(sql)):
            return self._con.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)


def _sql_label(sql: str) -> str:
    """``CREATE TEMP TABLE _checked``, ``INSERT INTO events``, ``SELECT count(*) FROM ...``."""
    import re

    text = " ".join(sql.split())
    m = re.match(r"(?i)CREATE (?:OR REPLACE )?(?:TEMP |TEMPORARY )?TABLE (\w+)", text)
    if m:
        return f"create table {m.group(1)}"
    m = re.match(r"(?i)(INSERT INTO|DROP TABLE) (\w+)", text)
    if m:
        return f"{m.group(1).lower()} {m.group(2)}"
    if re.match(r"(?i)(BEGIN|COMMIT|ROLLBACK)\b", text):
        return "begin/commit"
    return text[:48]


def _stage_ingest_profile(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    """``ws.ingest`` with every SQL statement timed (the workspace's connection is wrapped, so this
    follows whatever path the writer takes); the rest of the time is the reader and Python."""
    import microjourney as mj

    with mj.open(ws_dir) as ws:
        real = ws.con
        ws.con = _TimedCon(real, clock)
        t0 = time.perf_counter()
        try:
            r = ws.ingest(data)
        finally:
            ws.con = real
        total = time.perf_counter() - t0
        in_sql = sum(v for k, v in clock.parts.items() if k.startswith("sql: "))
        clock.parts["ingest (total)"] = total
        clock.parts["outside SQL (reader, Python)"] = total - in_sql
        with clock("checkpoint"):
            real.execute("CHECKPOINT").fetchall()
    return {"rows": r.rows, "accepted": r.accepted}


def _materialise(ws, name: str, expr) -> int:  # noqa: ANN001
    ws.db.create_table(name, expr, temp=True, overwrite=True)
    return ws.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]


def plan_tree(plan_json: str, min_share: float = 0.0) -> str:
    """A compact text tree of a DuckDB ``EXPLAIN (ANALYZE, FORMAT json)`` plan: operator, rows,
    seconds (operator time, not cumulative) and share of the total; hides operators under
    ``min_share`` of the total time (their children are still shown)."""
    root = json.loads(plan_json)
    ops = root["operator"] if isinstance(root, dict) else root
    total = 0.0

    def walk_sum(op: dict) -> None:
        nonlocal total
        total += op.get("timing", 0.0)
        for c in op.get("children", []):
            walk_sum(c)

    for op in ops:
        walk_sum(op)
    lines = [f"total operator time {total:.3f} s"]

    def walk(op: dict, depth: int) -> None:
        t = op.get("timing", 0.0)
        kind = op.get("type", "?")
        if kind not in ("RESULT_COLLECTOR", "EXPLAIN_ANALYZE") and (t >= min_share * total):
            info = op.get("extra_info", {})
            brief = "; ".join(f"{k}: {v}" for k, v in info.items() if k != "Estimated Cardinality")
            brief = " ".join(brief.split())
            lines.append(f"{'  ' * depth}{kind} rows={op.get('intermediate_rows', 0):,} "
                         f"{t:.3f}s ({100 * t / total if total else 0:.0f}%)  {brief[:160]}")
        for c in op.get("children", []):
            walk(c, depth + 1)

    for op in ops:
        walk(op, 0)
    return "\n".join(lines) + "\n"


def _stage_analysis_profile(data: Path, ws_dir: Path, clock: _Clock, explain: Path | None) -> dict:
    """Refresh and funnels taken apart, with the engine's own expressions (``microjourney.engine``),
    each materialised as a temp table so that every part is timed on its own."""
    import ibis

    import microjourney as mj
    from microjourney import engine

    out: dict = {}
    with mj.open(ws_dir) as ws:
        as_of = ws.as_of_ms()
        with clock("refresh: identity (events + person)"):
            out["events"] = _materialise(ws, "_p", ws.events())
            ws.con.execute("DROP TABLE _p").fetchall()
        with clock("refresh: timeline (identity + person order)"):
            _materialise(ws, "_timeline", engine.timeline(ws.events()))
        with clock("refresh: tag and cut all moments (incl. identity)"):
            tags = engine.segments(engine.tag(ws.events(), ws.spec))
            out["tagged_rows"] = _materialise(ws, "_tagged", tags)
        with clock("refresh: attempts from materialised tags"):
            expr = engine.attempts(ws.db.table("_tagged"), ws.db.table("events"), as_of)
            out["attempts"] = _materialise(ws, "_a", expr)
        tagged = ws.db.table("_tagged")
        for name, m in ws.moments.items():
            q = engine.FunnelQuery(n_steps=len(m.funnel), window_ms=round(m.timeout * 1000))
            with clock("funnels: funnel queries on materialised tags"):
                engine.funnel_stats(tagged.filter(tagged.moment == name), None, q).to_pandas()
        if explain:
            explain.mkdir(parents=True, exist_ok=True)
            first = next(iter(ws.moments))
            m = ws.moments[first]
            q = engine.FunnelQuery(n_steps=len(m.funnel), window_ms=round(m.timeout * 1000))
            exprs = {
                "tag": engine.segments(engine.tag(ws.events(), ws.spec)),
                "attempts": engine.attempts(tagged, ws.db.table("events"), as_of),
                f"funnel_{first}": engine.funnel_stats(tagged.filter(tagged.moment == first), None, q),
            }
            for label, expr in exprs.items():
                ws.db._run_pre_execute_hooks(expr)  # registers the in-memory role table
                sql = ibis.to_sql(expr, dialect="duckdb")
                plan = ws.con.execute("EXPLAIN (ANALYZE, FORMAT json) " + sql).fetchall()[0][1]
                (explain / f"{label}.sql").write_text(sql, encoding="utf-8")
                (explain / f"{label}.plan.json").write_text(plan, encoding="utf-8")
                (explain / f"{label}.plan.txt").write_text(plan_tree(plan), encoding="utf-8")
            out["explain_dir"] = str(explain)
    return out



def _stage_frictions_profile(data: Path, ws_dir: Path, clock: _Clock, explain: Path | None) -> dict:
    """Friction detection taken apart: the spans and the scope (every attempt's events with
    their neighbours) materialised, each detector on it, then all detectors in one query, the
    lookup of ids and the summary."""
    import ibis

    import microjourney as mj
    from microjourney import engine
    from microjourney.engine.frictions.base import Context

    fr = engine.frictions
    out: dict = {"detectors": {}}
    with mj.open(ws_dir) as ws:
        ws.refresh()
        events = ws.db.table("events")
        with clock("frictions: spans"):
            _materialise(ws, "_spans", fr.spans(ws.db.table("attempts"), engine.moment_settings(ws.spec)))
        spans = ws.db.table("_spans")
        scope = fr.scope(ws.db.table("timeline"), ws.db.table("tagged"), spans)
        with clock("frictions: scope"):
            out["scope_rows"] = _materialise(ws, "friction_scope", scope)
        s = ws.db.table("friction_scope")
        ctx = Context(ws.spec, events, ws.db.table("timeline"), spans)
        for d in fr.DETECTORS:
            cfg = getattr(ws.spec.frictions, d.KIND)
            if cfg.enabled:
                with clock(f"frictions: detector {d.KIND}"):
                    out["detectors"][d.KIND] = _materialise(ws, "_f", d.detect(s, cfg, ctx))
        with clock("frictions: all detectors, one query (as refresh)"):
            _materialise(ws, "_found", fr.detect(s, ctx))
        with clock("frictions: ids looked up (named)"):
            out["frictions"] = _materialise(ws, "_f", fr.named(ws.db.table("_found"), spans, events))
        with clock("frictions: summary statistics (friction_stats)"):
            _materialise(ws, "_per", fr.per_attempt(ws.db.table("_found"), spans))
            kinds, moments = fr.friction_stats(ws.db.table("_per"), ws.db.table("attempts"))
            kinds.to_pandas()
            moments.to_pandas()
        if explain:
            explain.mkdir(parents=True, exist_ok=True)
            sql = ibis.to_sql(scope, dialect="duckdb")
            plan = ws.con.execute("EXPLAIN (ANALYZE, FORMAT json) " + sql).fetchall()[0][1]
            (explain / "friction_scope.sql").write_text(sql, encoding="utf-8")
            (explain / "friction_scope.plan.json").write_text(plan, encoding="utf-8")
            (explain / "friction_scope.plan.txt").write_text(plan_tree(plan, 0.01), encoding="utf-8")
            out["explain_dir"] = str(explain)
    return out


def _whole_analysis(ws, clock: _Clock) -> dict:  # noqa: ANN001 - a workspace
    """Every analysis from a fresh open: refresh, scorecard, funnels, frictions with their
    summary, process map and variants."""
    with clock("refresh (timeline, tags, attempts)"):
        ws.refresh()
    with clock("scorecard()"):
        ws.scorecard().to_pandas()
    with clock("funnel() x all moments"):
        for m in ws.moments:
            ws.funnel(m).to_pandas()
    with clock("frictions + summary"):
        n = int(ws.frictions().count().execute())
        ws.friction_summary()
    with clock("process map + variants"):
        pm = ws.process_map()
        for part in ("nodes", "edges", "starts", "ends"):
            getattr(pm, part).to_pandas()
        ws.variants().to_pandas()
    return {"frictions": n}


def _stage_lake(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    """``export --lake`` of the ingested store, then every analysis on DuckDB over the lake."""
    import microjourney as mj

    with mj.open(ws_dir) as ws, clock("export --lake"):
        r = ws.export_lake(ws_dir / "lake")
    with mj.open(ws_dir, lake=ws_dir / "lake") as ws:
        out = _whole_analysis(ws, clock)
    return {**out, "lake_days": r["events"].days}


def _stage_spark(data: Path, ws_dir: Path, clock: _Clock) -> dict:
    """Every analysis on Spark in local mode over the lake the ``lake`` stage wrote (the
    peak memory is the Python driver's; the JVM is a separate process)."""
    import microjourney as mj

    with clock("open (Spark session start)"):
        ws = mj.open(ws_dir, engine="spark", lake=ws_dir / "lake")
    try:
        return _whole_analysis(ws, clock)
    finally:
        ws.close()


#: Each stage's function, called with (data, workspace folder, clock, explain folder).
STAGES = {
    "floor": lambda d, w, c, x: _stage_floor(d, w, c, disk=False),
    "floor_disk": lambda d, w, c, x: _stage_floor(d, w, c, disk=True),
    "ingest": lambda d, w, c, x: _stage_ingest(d, w, c),
    "analysis": lambda d, w, c, x: _stage_analysis(d, w, c),
    "ingest_profile": lambda d, w, c, x: _stage_ingest_profile(d, w, c),
    "analysis_profile": _stage_analysis_profile,
    "frictions": lambda d, w, c, x: _stage_frictions(d, w, c),
    "journey": lambda d, w, c, x: _stage_journey(d, w, c),
    "pandas": lambda d, w, c, x: _stage_pandas(d, w, c),
    "agreement": lambda d, w, c, x: _stage_agreement(d, w, c),
    "frictions_profile": _stage_frictions_profile,
    "lake": lambda d, w, c, x: _stage_lake(d, w, c),
    "spark": lambda d, w, c, x: _stage_spark(d, w, c),
}


def child(stage: str, data: Path, ws_dir: Path, explain: Path | None) -> None:
    import duckdb  # noqa: F401 - imported before the baseline, as every stage needs it

    if stage not in ("generate", "floor", "floor_disk", "pandas"):
        import microjourney  # noqa: F401
    if stage in ("pandas", "agreement"):
        import pandas  # noqa: F401
    code = _sources_hash()
    base = _rss_mb()
    clock = _Clock()
    cpu0, t0 = _cpu(), time.perf_counter()
    if stage == "generate":
        sys.path.insert(0, str(HERE))
        from generate import generate

        n = int(os.environ["MJ_BENCH_EVENTS"])
        generate(n, data, seed=int(os.environ.get("MJ_BENCH_SEED", "1")))
        extra: dict = {"rows": n, "bytes": data.stat().st_size}
    elif stage in STAGES:
        extra = STAGES[stage](data, ws_dir, clock, explain)
    else:
        raise SystemExit(f"unknown stage {stage}")
    result = {
        "status": "ok",
        "wall_s": round(time.perf_counter() - t0, 3),
        "cpu_s": round(_cpu() - cpu0, 3),
        "peak_rss_mb": round(_rss_mb(), 1),
        "base_rss_mb": round(base, 1),
        "parts": {k: round(v, 3) for k, v in clock.parts.items()},
        "sources_sha256": code,
        **extra,
    }
    print("RESULT " + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent side: orchestrate, print, record.
# ---------------------------------------------------------------------------------------------
def _busy_cpu_s() -> float:
    """CPU seconds all processes have used since boot (from /proc/stat; 0 where there is none)."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            vals = [int(x) for x in fh.readline().split()[1:9]]
    except OSError:
        return 0.0
    return (sum(vals) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def wait_quiet(max_wait: float, busy_limit: float = 0.15) -> float:
    """Wait (up to ``max_wait`` s) until other processes use under ``busy_limit`` of the CPUs;
    return the busy share seen last."""
    start = time.monotonic()
    said = False
    while True:
        b0 = _busy_cpu_s()
        time.sleep(1.0)
        share = (_busy_cpu_s() - b0) / (os.cpu_count() or 1)
        waited = time.monotonic() - start
        if share < busy_limit or waited >= max_wait:
            if said:
                print(f" {waited:.0f} s, now {share:.0%} busy)")
            return share
        if not said:
            print(f"  (other processes keep the CPUs {share:.0%} busy: waiting...", end="", flush=True)
            said = True


def run_stage(stage: str, data: Path, ws_dir: Path, timeout: float, *, events: int = 0,
              seed: int = 1, explain: Path | None = None, quiet_wait: float = 0) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", stage, "--data", str(data),
           "--ws", str(ws_dir)]
    if explain:
        cmd += ["--explain-dir", str(explain)]
    env = {**os.environ, "MJ_BENCH_EVENTS": str(events), "MJ_BENCH_SEED": str(seed)}
    if quiet_wait:
        wait_quiet(quiet_wait)
    print(f"  ... {stage}", end="", flush=True)
    t0 = time.perf_counter()
    busy0 = _busy_cpu_s()
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        print(f": stopped after {timeout:.0f} s")
        return {"status": "timeout", "wall_s": round(time.perf_counter() - t0, 1)}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        how = (f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
               if proc.returncode < 0 else f"exit {proc.returncode}")
        print(f": failed, {how}")
        return {"status": "error", "error": how, "stderr": proc.stderr[-2000:],
                "wall_s": round(time.perf_counter() - t0, 1)}
    result = json.loads(lines[-1][len("RESULT "):])
    # CPU time that other processes took while this stage ran: a contended stage is slower.
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    elapsed = time.perf_counter() - t0
    other = max(0.0, _busy_cpu_s() - busy0 - child_cpu)
    result["other_cpu_s"] = round(other, 1)
    result["contended"] = other > 0.25 * elapsed
    print(f": {result['wall_s']:.2f} s, peak {result['peak_rss_mb']:.0f} MB"
          + (f"  [contended: other processes used {other:.1f} CPU s]" if result["contended"] else ""))
    return result


def _median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the lower median; uncontended runs if there are any),
    with every run's wall time."""
    ok = [r for r in runs if r.get("status") == "ok"]
    if len(ok) < len(runs):
        return next(r for r in runs if r.get("status") != "ok")
    pool = [r for r in ok if not r.get("contended")] or ok
    chosen = sorted(pool, key=lambda r: r["wall_s"])[(len(pool) - 1) // 2]
    if len(ok) > 1:
        chosen = {**chosen, "runs_wall_s": [r["wall_s"] for r in ok]}
    return chosen


def _http_stage(events: int, timeout: float) -> dict:
    """``collector.py`` in a child process: the server under a bounded loopback load."""
    print(f"  http_ingest ({events:,} events)...", flush=True)
    try:
        done = subprocess.run([sys.executable, str(HERE / "collector.py"), "--events", str(events),
                               "--no-record"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "wall_s": timeout}
    if done.returncode != 0:
        return {"status": "error", "error": done.stderr.strip().splitlines()[-1:]}
    out = json.loads(done.stdout)
    return {"status": "ok" if not out["failures"] else "error",
            "error": out.get("first_failure"), **out}


def _generator_tag() -> str:
    return hashlib.sha256((HERE / "generate.py").read_bytes()).hexdigest()[:8]


def prepared(n: int, seed: int, keep: str | None, prefix: str) -> tuple[Path, Path]:
    """The cached file of ``n`` generated events and a workspace holding them (``keep``:
    its folder, ingested once and reused; else a new temporary one): ``(data, root)``."""
    from generate import generate, workspace_yaml

    import microjourney as mj

    cache = Path(tempfile.gettempdir()) / "microjourney-bench"
    cache.mkdir(parents=True, exist_ok=True)
    data = cache / f"events-{n}-seed{seed}-{_generator_tag()}.parquet"
    if not data.exists():
        generate(n, data, seed=seed)
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix=prefix))
    if not (root / "microjourney.yaml").exists():
        root.mkdir(parents=True, exist_ok=True)
        (root / "microjourney.yaml").write_text(workspace_yaml(), encoding="utf-8")
        with mj.open(root) as ws:
            ws.ingest(data)
    return data, root


def _engine_files() -> list[Path]:
    """The package's Python sources the benchmark runs (not the demo generator, which it never
    imports and which others edit)."""
    pkg = HERE.parent / "microjourney"
    return sorted(f for f in pkg.rglob("*.py") if "demo" not in f.relative_to(pkg).parts)


def _sources_hash() -> str:
    """A hash of the engine's Python sources, to tell which code a stage ran."""
    h = hashlib.sha256()
    for f in _engine_files():
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _code_state() -> dict:
    """Which engine code ran: git HEAD, locally modified engine files, a hash of the sources."""
    root = HERE.parent
    out: dict = {"sources_sha256": _sources_hash()}
    try:
        git = ["git", "-C", str(root)]
        out["head"] = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True, check=True).stdout.strip()
        status = subprocess.run([*git, "status", "--porcelain", "--", "microjourney"], capture_output=True,
                                text=True, check=True).stdout
        out["modified"] = [ln[3:] for ln in status.splitlines()
                           if not ln[3:].startswith("microjourney/demo/")]
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def _versions() -> dict:
    import duckdb
    import ibis

    return {"python": platform.python_version(), "duckdb": duckdb.__version__, "ibis": ibis.__version__}


def _fmt_rate(n: int, s: float | None) -> str:
    if not s:
        return ""
    r = n / s
    return f"{r / 1e6:.2f}M" if r >= 1e6 else f"{r / 1e3:.0f}k"


def report(res: dict) -> list[str]:
    n = res["events"]
    st = res["stages"]
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(label: str, r: dict | None, *, rate: bool = True, note: str = "") -> None:
        if r is None:
            return
        if r.get("status") != "ok":
            rows.append((label, "", "", "", "", f"{r.get('status')}: {r.get('error', '')} "
                                                f"after {r.get('wall_s', '?')} s"))
            return
        if r.get("contended"):
            note = " ".join(x for x in (note, f"CONTENDED ({r.get('other_cpu_s')} CPU s by others)") if x)
        if r.get("runs_wall_s"):
            note = " ".join(x for x in (note, "runs " + "/".join(f"{w:.1f}" for w in r["runs_wall_s"])) if x)
        rows.append((label, f"{r['wall_s']:.2f}", f"{r['cpu_s']:.1f}",
                     _fmt_rate(n, r["wall_s"]) if rate else "", f"{r['peak_rss_mb']:.0f}", note))

    def part(label: str, seconds: float | None, note: str = "") -> None:
        if seconds is not None:
            rows.append(("    " + label, f"{seconds:.2f}", "", "", "", note))

    g = st.get("generate")
    row("generate" + (" (cached)" if g is None else ""), g)
    row("(a) floor: read+sort (memory)", st.get("floor"))
    row("    floor: read+sort (DuckDB file)", st.get("floor_disk"))
    t = res["targets"]
    ing = st.get("ingest")
    row("(b) ingest", ing, note=t.get("ingest_note", ""))
    ip = st.get("ingest_profile")
    if ip and ip.get("status") == "ok":
        p = ip["parts"]
        part("profile: ingest (total, SQL timed)", p.get("ingest (total)"))
        part("  outside SQL (reader, Python)", p.get("outside SQL (reader, Python)"))
        for k, v in sorted(p.items(), key=lambda kv: -kv[1]):
            if k.startswith("sql: ") and v >= 0.005:
                part("  " + k, v)
    an = st.get("analysis")
    row("(c) analysis: refresh+scorecard+funnels", an, note=t.get("ratio_note", ""))
    if an and an.get("status") == "ok":
        p = an["parts"]
        part("refresh(force=True)", p.get("refresh"))
        part("scorecard()", p.get("scorecard"))
        part(f"funnel() x {an.get('moments')}", p.get("funnels"))
    ap = st.get("analysis_profile")
    if ap and ap.get("status") == "ok":
        for k, v in ap["parts"].items():
            part("profile " + k, v)
    fr = st.get("frictions")
    row("(e) frictions: detect all + summary", fr)
    if fr and fr.get("status") == "ok":
        part("ws.frictions().count()", fr["parts"].get("frictions: detect all"),
             f"{fr.get('frictions', 0):,} frictions")
        part("ws.friction_summary()", fr["parts"].get("friction_summary()"))
    jo = st.get("journey")
    row("(e) journey: process_map + variants", jo)
    if jo and jo.get("status") == "ok":
        for k, v in jo["parts"].items():
            size = jo.get(k.removeprefix("process_map: ").removesuffix("()"))
            part(k, v, f"{size:,} rows" if k != "process_map()" and size is not None else "")
    row("(e) frictions + journey", res.get("journey_analytics"), note=t.get("journey_ratio_note", ""))
    fp = st.get("frictions_profile")
    if fp and fp.get("status") == "ok":
        for k, v in fp["parts"].items():
            part("profile " + k, v)
    for stage, label in (("lake", "(f) DuckDB over the lake: every analysis"),
                         ("spark", "(f) Spark local over the lake: every analysis")):
        er = st.get(stage)
        row(label, er, note="memory and CPU: the Python driver; the JVM counts as another process"
            if stage == "spark" else "")
        if er and er.get("status") == "ok":
            for k, v in er["parts"].items():
                part(k, v)
    ht = st.get("http_ingest")
    if ht and ht.get("status") == "ok":
        rows.append(("(g) HTTP ingest (serve, batches of 100)", f"{ht['wall_s']:.2f}", "",
                     _fmt_rate(ht["events"], ht["wall_s"]), f"{ht['server_peak_mib']:.0f}",
                     f"{ht['events']:,} events; p50 {ht['p50_ms']} ms, p99 {ht['p99_ms']} ms; DuckDB "
                     f"insert floor {ht['floor_ratio']}x faster; target >= 100k/s, p99 < 100 ms"))
    elif ht:
        rows.append(("(g) HTTP ingest", "", "", "", "", f"{ht.get('status')}: {ht.get('error', '')}"))
    pdr, p1m = st.get("pandas"), st.get("pandas_1m")
    row("pandas baseline (pandas_baseline.py)", pdr, note="" if p1m else t.get("pandas_note", ""))
    row("pandas baseline at 1M, for extrapolation", p1m, rate=False, note=t.get("pandas_note", ""))
    for r1 in (pdr, p1m):
        if r1 and r1.get("status") == "ok":
            for k, v in r1["parts"].items():
                part(k, v)
    ag = st.get("agreement")
    if ag and ag.get("status") == "ok":
        for label in ("simplified", "linked"):
            a = ag[label]
            rows.append((f"agreement, pandas cases {label}", "", "", "", "",
                         f"{a['edges_same_count']:,} of {a['edges_mj']:,} microjourney edges with the same "
                         f"count (pandas {a['edges_pandas']:,} edges); transitions "
                         f"{a['transitions_mj']:,} vs "
                         f"{a['transitions_pandas']:,}; cases {ag['persons_mj']:,} vs {a['cases']:,}; "
                         f"variants {a['variants_same_count']:,} of {ag['variants_mj']:,} same"))
    r = res["ratios"]
    lines = [f"microjourney benchmark: {n:,} events, {res['date']}, {res['machine']}, {res['cpus']} CPUs, "
             f"Python {res['python']}, duckdb {res['duckdb']}, ibis {res['ibis']}, "
             f"load avg before {res['load_avg_before']}, median of {res['repeat']} run(s) per main stage"]
    head = ("stage", "wall s", "cpu s", "events/s", "peak MB", "note")
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(6)]
    for x in [head, *rows]:
        lines.append("  ".join(c.ljust(w) if i in (0, 5) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(x, widths, strict=True))).rstrip())
    for k, v in r.items():
        lines.append(f"{k}: {v}")
    return lines


def _journey_targets(res: dict, floor: float | None) -> None:
    """(e): frictions + journey against the floor (<= 3x); pandas against journey (>= 10x)."""
    n, st, t, r = res["events"], res["stages"], res["targets"], res["ratios"]
    ok = {k: v for k, v in st.items() if v.get("status") == "ok"}
    fr, jo = ok.get("frictions"), ok.get("journey")
    if fr and jo:
        both = {"status": "ok", "wall_s": round(fr["wall_s"] + jo["wall_s"], 3),
                "cpu_s": round(fr["cpu_s"] + jo["cpu_s"], 3),
                "peak_rss_mb": max(fr["peak_rss_mb"], jo["peak_rss_mb"]),
                "contended": bool(fr.get("contended") or jo.get("contended")),
                "other_cpu_s": round(fr.get("other_cpu_s", 0) + jo.get("other_cpu_s", 0), 1)}
        res["journey_analytics"] = both
        if floor:
            for k, v in (("frictions", fr["wall_s"]), ("journey", jo["wall_s"]),
                         ("frictions+journey", both["wall_s"])):
                r[f"{k}/floor"] = round(v / floor, 2)
            ratio = both["wall_s"] / floor
            t["journey_ratio_met"] = ratio <= RATIO_TARGET
            t["journey_ratio_note"] = f"{ratio:.1f}x floor, target <= 3x: " + (
                "met" if ratio <= RATIO_TARGET else "MISSED")
    pd_run, scale, how = ok.get("pandas"), 1.0, "measured"
    if pd_run is None and ok.get("pandas_1m"):
        pd_run, scale = ok["pandas_1m"], n / 1_000_000
        how = f"EXTRAPOLATED: the {n:,}-event run did not finish; 1M figure x {scale:g}"
    if pd_run and jo:
        wall = pd_run["wall_s"] * scale
        compute = (pd_run["wall_s"] - pd_run["parts"].get("read (pd.read_parquet)", 0.0)) * scale
        r["pandas/journey"] = round(wall / jo["wall_s"], 2)
        r["pandas_without_read/journey"] = round(compute / jo["wall_s"], 2)
        t["pandas_wall_s"] = round(wall, 2)
        t["pandas_how"] = how
        t["pandas_met"] = wall / jo["wall_s"] >= PANDAS_TARGET
        t["pandas_note"] = (f"pandas {wall / jo['wall_s']:.1f}x the time of microjourney "
                            f"({how}), target >= 10x: " + ("met" if t["pandas_met"] else "MISSED"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="microjourney benchmark: floor vs ingest vs analysis")
    ap.add_argument("--events", type=int, default=1_000_000, help="number of events (default 1M)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    ap.add_argument("--keep", metavar="DIR", help="keep data and workspaces in DIR (else a temp dir; "
                                                  "the generated file is cached there)")
    ap.add_argument("--quick", action="store_true", help="skip the diagnostic profile stages")
    ap.add_argument("--explain", action="store_true", help="write EXPLAIN ANALYZE plans (with profiles)")
    ap.add_argument("--engines", action="store_true",
                    help="also export a lake and run every analysis on DuckDB over it and on Spark "
                         "in local mode (needs the spark extra and Java; slow)")
    ap.add_argument("--http", type=int, default=0, metavar="N",
                    help="also send N events to `microjourney serve` over loopback (collector.py)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each main stage K times and report the median (default 1)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per stage (default 600)")
    ap.add_argument("--pandas-timeout", type=float, default=1200,
                    help="seconds for the pandas baseline (default 1200); when it does not finish, "
                         "it runs at 1M events and is extrapolated")
    ap.add_argument("--wait-quiet", type=float, default=120, metavar="S",
                    help="before each stage wait up to S seconds for other processes to go quiet "
                         "(default 120; 0: do not wait)")
    ap.add_argument("--note", default="", help="free text stored with the results line")
    ap.add_argument("--no-record", action="store_true", help=f"do not append to {RESULTS.name}")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--ws", help=argparse.SUPPRESS)
    ap.add_argument("--explain-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        explain_dir = Path(args.explain_dir) if args.explain_dir else None
        child(args.child, Path(args.data), Path(args.ws), explain_dir)
        return 0

    sys.path.insert(0, str(HERE))
    from generate import workspace_yaml

    n = args.events
    base = Path(args.keep) if args.keep else Path(tempfile.gettempdir()) / "microjourney-bench"
    base.mkdir(parents=True, exist_ok=True)
    data = base / f"events-{n}-seed{args.seed}-{_generator_tag()}.parquet"
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mj-bench-"))
    res: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "events": n, "seed": args.seed,
                 "machine": platform.platform(), "cpus": os.cpu_count(), **_versions(),
                 "repeat": args.repeat, "note": args.note, "code": _code_state(),
                 "load_avg_before": [round(x, 2) for x in os.getloadavg()],
                 "stages": {}, "ratios": {}, "targets": {}}
    print(f"microjourney benchmark, {n:,} events; data {data}")
    st = res["stages"]
    try:
        if not data.exists():
            st["generate"] = run_stage("generate", data, work, args.timeout, events=n, seed=args.seed)
        stages = list(MAIN_STAGES) + list(BASELINE_STAGES) + ([] if args.quick else list(PROFILE_STAGES))
        stages += list(ENGINE_STAGES) if args.engines else []
        for stage in stages:
            if stage == "agreement" and n > CHECK_MAX_EVENTS:
                continue
            ws_dir = work / f"ws-{n}" if stage in ("ingest", *WS_STAGES) else work / f"ws-{n}-{stage}"
            if stage in WS_STAGES and st.get("ingest", {}).get("status") != "ok":
                continue
            if stage == "spark" and st.get("lake", {}).get("status") != "ok":
                continue
            explain = (base / "plans" / str(n) if args.explain
                       and stage in ("analysis_profile", "frictions_profile") else None)
            timeout = args.pandas_timeout if stage == "pandas" else args.timeout
            runs = []
            for _ in range(args.repeat if stage in MAIN_STAGES else 1):
                if stage in ("ingest", "ingest_profile", "floor_disk"):
                    shutil.rmtree(ws_dir, ignore_errors=True)
                    ws_dir.mkdir(parents=True)
                    (ws_dir / "microjourney.yaml").write_text(workspace_yaml(), encoding="utf-8")
                r = run_stage(stage, data, ws_dir, timeout, explain=explain,
                              quiet_wait=args.wait_quiet)
                if stage == "ingest" and r.get("status") == "ok" and r["accepted"] != n:
                    r.update(status="error", error=f"only {r['accepted']:,} of {n:,} events accepted ("
                             f"{r['rejected']:,} rejected, {r['duplicates']:,} duplicates)")
                    print(f"  !!! {r['error']}")
                runs.append(r)
                if r.get("status") != "ok":
                    break
            st[stage] = _median_run(runs)
            if stage == "ingest_profile":
                shutil.rmtree(ws_dir, ignore_errors=True)
            if stage == "pandas" and st[stage].get("status") != "ok" and n > 1_000_000:
                # Too slow (or out of memory) at this size: measure at 1M, extrapolate linearly.
                small = base / f"events-1000000-seed{args.seed}-{_generator_tag()}.parquet"
                if not small.exists():
                    st["generate_1m"] = run_stage("generate", small, work, args.timeout,
                                                  events=1_000_000, seed=args.seed)
                st["pandas_1m"] = run_stage("pandas", small, work / "ws-1m-pandas", args.pandas_timeout,
                                            quiet_wait=args.wait_quiet)
        if args.http:
            st["http_ingest"] = _http_stage(args.http, args.timeout)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    def wall(s: str) -> float | None:
        r = st.get(s)
        return r["wall_s"] if r and r.get("status") == "ok" else None

    fl, ing, an = wall("floor"), wall("ingest"), wall("analysis")
    if ing:
        rate = n / ing
        res["targets"]["ingest_events_per_s"] = round(rate)
        res["targets"]["ingest_met"] = rate >= INGEST_TARGET
        res["targets"]["ingest_note"] = f"target >= 1M/s: {'met' if rate >= INGEST_TARGET else 'MISSED'}"
    if fl and an:
        ratio = an / fl
        res["ratios"]["analysis/floor"] = round(ratio, 2)
        res["targets"]["ratio_met"] = ratio <= RATIO_TARGET
        res["targets"]["ratio_note"] = f"{ratio:.1f}x floor, target <= 3x: " + (
            "met" if ratio <= RATIO_TARGET else "MISSED")
    if fl and ing:
        res["ratios"]["ingest/floor"] = round(ing / fl, 2)
    fd = wall("floor_disk")
    if fd and ing:
        res["ratios"]["ingest/floor_disk"] = round(ing / fd, 2)
    if fd and an:
        res["ratios"]["analysis/floor_disk"] = round(an / fd, 2)
    _journey_targets(res, fl)
    res["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    seen = {r.get("sources_sha256") for r in st.values() if r.get("sources_sha256")}
    if seen - {res["code"]["sources_sha256"]}:
        res["warning"] = "the engine sources changed during the run: stages ran different code"
        print("WARNING: " + res["warning"])
    print()
    print("\n".join(report(res)))
    if not args.no_record:
        with RESULTS.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(res) + "\n")
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
