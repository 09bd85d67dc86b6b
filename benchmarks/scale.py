"""The 100M-event run: every analysis on one machine, DuckDB spilling to disk where it must.

    python benchmarks/scale.py --parts 10 --part-events 10000000 --dir /tmp/microjourney-100m

The data is ``--parts`` files of ``--part-events`` events made by ``generate.py`` (seed 1000+k),
each with its persons renamed ``p<k>-...`` so the parts are disjoint customers; a generator
run needs about 4 GB per 10M events, so the events are made a part at a time. Then, each in a
fresh process (its own peak memory): the DuckDB floor (read every part and sort by person
and time, into a table in a DuckDB file), ingest of every part into one workspace,
``refresh(force=True)`` + ``scorecard()`` + ``funnel()`` of every moment, every friction
detector + the summary, the process map + variants, and an incremental refresh after 10k new
events from 5k persons. ``--from FILE`` makes every part from one generated file (each under
its own names, event ids included) instead of generating each. DuckDB keeps its default memory
limit (80% of RAM) and spills to ``<store>.tmp``; the largest size of the store's folder
and the spill folder seen during each stage is reported. Results: printed, and one JSON line
appended to ``results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("floor", "ingest", "analysis", "frictions", "journey", "incremental")


def _parts(d: Path) -> list[Path]:
    return sorted(d.glob("part-*.parquet"))


def make_data(d: Path, parts: int, n: int, source: Path | None = None) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    sys.path.insert(0, str(HERE))
    from generate import generate

    d.mkdir(parents=True, exist_ok=True)
    for k in range(parts):
        out = d / f"part-{k:03d}.parquet"
        if out.exists():
            continue
        t0 = time.perf_counter()
        # A part generated with its own seed, or ``source`` again under other names.
        raw = source if source is not None else generate(n, d / f"raw-{k}", seed=1000 + k)
        table = pq.read_table(raw)
        prefix = pa.scalar(f"p{k}-")
        for col in ("event_id", "anonymous_id", "user_id", "session_id"):
            i = table.schema.get_field_index(col)
            table = table.set_column(i, col, pc.binary_join_element_wise(prefix, table[col], ""))
        pq.write_table(table, out, compression="snappy", row_group_size=262_144)
        del table
        if source is None:
            raw.unlink()
            (raw.parent / "microjourney.yaml").unlink()
            raw.parent.rmdir()
        print(f"  part {k}: {n:,} events in {time.perf_counter() - t0:.0f} s", flush=True)
    from generate import workspace_yaml

    (d / "microjourney.yaml").write_text(workspace_yaml(), "utf-8")


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


class _Disk(threading.Thread):
    """The largest size of ``path`` seen, looked at every second."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.peak, self.done = path, 0, False

    def run(self) -> None:
        while not self.done:
            self.peak = max(self.peak, _size(self.path))
            time.sleep(1)


def child(stage: str, d: Path) -> dict:
    import duckdb

    import microjourney as mj

    ws_dir = d / "ws"
    disk = _Disk(d)
    disk.start()
    out: dict = {"stage": stage}
    t0 = time.perf_counter()
    if stage == "floor":
        con = duckdb.connect(str(d / "floor.duckdb"))
        files = [str(p) for p in _parts(d)]
        con.execute("CREATE OR REPLACE TABLE f AS SELECT * FROM read_parquet(?) "
                    "ORDER BY user_id, timestamp", [files]).fetchall()
        out["rows"] = con.execute("SELECT count(*) FROM f").fetchall()[0][0]
        con.close()
        (d / "floor.duckdb").unlink()
    elif stage == "ingest":
        mj.init(ws_dir).close()
        (ws_dir / "microjourney.yaml").write_text((d / "microjourney.yaml").read_text(), "utf-8")
        with mj.open(ws_dir) as ws:
            out["accepted"] = sum(ws.ingest(p).accepted for p in _parts(d))
    elif stage == "analysis":
        with mj.open(ws_dir) as ws:
            ws.refresh(force=True, frictions=True)
            out["refresh_s"] = round(time.perf_counter() - t0, 1)
            ws.scorecard().to_pyarrow()
            for m in ws.moments:
                ws.funnel(m).to_pyarrow()
            out["attempts"] = int(ws.attempts().count().execute())
    elif stage == "frictions":
        with mj.open(ws_dir) as ws:
            out["frictions"] = int(ws.frictions().count().execute())
            ws.friction_summary()
    elif stage == "incremental":  # 10k new events from 5k persons, as benchmarks/incremental.py
        sys.path.insert(0, str(HERE))
        from incremental import new_events

        with mj.open(ws_dir) as ws:
            ws.refresh()  # up to date first (a no-op after the analysis stage)
            t1 = time.perf_counter()
            path = new_events(ws, 10_000, 5_000, 7, d / "new.parquet")
            out["ingest_new_s"] = round(time.perf_counter() - t1, 1)
            ws.ingest(path)
            done = ws.refresh()
            out["mode"], out["persons"], out["refresh_s"] = done.mode, done.persons, done.seconds
    elif stage == "journey":
        with mj.open(ws_dir) as ws:
            pm = ws.process_map()
            for part in ("nodes", "edges", "starts", "ends"):
                out[part] = getattr(pm, part).to_pyarrow().num_rows
            v = ws.variants().to_pyarrow()
            out["variants"], out["cases"] = v.num_rows, sum(v.column("cases").to_pylist())
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    disk.done = True
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["peak_disk_gb"] = round(disk.peak / 2**30, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", type=int, default=10)
    ap.add_argument("--part-events", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/tmp/microjourney-100m")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--from", dest="source", type=Path,
                    help="make every part from this one generated file, under other names")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    d = Path(args.dir)
    if args.child:
        print(json.dumps(child(args.child, d)), flush=True)
        return
    make_data(d, args.parts, args.part_events, args.source)
    res = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.node(),
           "cpus": os.cpu_count(), "events": args.parts * args.part_events, "stages": {}}
    for stage in args.stages.split(","):
        print(f"{stage}...", flush=True)
        done = subprocess.run([sys.executable, __file__, "--dir", str(d), "--child", stage],
                              capture_output=True, text=True)
        if done.returncode != 0:
            res["stages"][stage] = {"status": "error", "error": done.stderr.strip().splitlines()[-3:]}
            print(f"  {stage} failed: {done.stderr[-2000:]}", flush=True)
            break
        res["stages"][stage] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {res['stages'][stage]}", flush=True)
    floor = res["stages"].get("floor", {}).get("wall_s")
    for r in res["stages"].values():
        if floor and "wall_s" in r:
            r["floor_ratio"] = round(r["wall_s"] / floor, 2)
    print(json.dumps(res, indent=2))
    with (HERE / "results.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"stage": "scale", **res}) + "\n")


if __name__ == "__main__":
    main()
