"""Incremental refresh against a full rebuild of the derived tables, in the same run.

    python benchmarks/incremental.py --events 10000000 [--new 10000] [--persons 5000] [--keep DIR]

Generates the events (or reuses ``benchmarks/run.py``'s cached file), ingests them into a
workspace, then times in one process:

    floor        DuckDB alone: read the Parquet file and sort it by (user_id, timestamp)
    narrow floor DuckDB alone: read person, time and event name; sort by person and time
    full         ``ws.refresh(force=True)``: who is who, timeline, tagged rows, attempts,
                 frictions and their summaries, from nothing
    ingest new   ``--new`` events from ``--persons`` persons already there (their ids), a
                 few minutes after the end of the data, as a Parquet file
    incremental  ``ws.refresh()`` after that ingest: what the new events touch

and prints wall time and the ratios (incremental / full, full / floor), the persons the
incremental refresh recomputed, and the process's peak RSS after the floors (peak.py).
``--repeat K`` repeats the (ingest new, incremental) pair K times with fresh events and
reports the median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _floor(data: Path, narrow: bool) -> float:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    t0 = time.perf_counter()
    if narrow:
        con.execute("CREATE TABLE t AS SELECT coalesce(user_id, anonymous_id) AS person, timestamp, "
                    "event FROM read_parquet(?) ORDER BY person, timestamp", [str(data)]).fetchall()
    else:
        con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?) ORDER BY user_id, timestamp",
                    [str(data)]).fetchall()
    took = time.perf_counter() - t0
    con.close()
    return took


def new_events(ws, n: int, persons: int, seed: int, out: Path) -> Path:  # noqa: ANN001
    """``n`` events of ``persons`` persons already in the store, after its last event."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    # Ids new to the store, however many runs reused it.
    stored = ws.con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    ids = ws.con.execute("SELECT anonymous_id, any_value(user_id) FROM events GROUP BY anonymous_id "
                         "ORDER BY hash(anonymous_id, ?) LIMIT ?", [seed, persons]).fetchall()
    end = ws.con.execute("SELECT max(timestamp) FROM events").fetchall()[0][0]
    names = ["checkout_payment_opened", "payment_gateway_loaded", "card_details_entered",
             "payment_succeeded", "payment_failed", "click", "page_viewed", "error_shown"]
    who = rng.integers(0, len(ids), n)
    at = [end + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(1, 300, n))]
    table = pa.table({
        "event_id": [f"new-{seed}-{stored}-{i}" for i in range(n)],
        "timestamp": pa.array(at, pa.timestamp("us", tz="UTC")),
        "event": [names[k] for k in rng.integers(0, len(names), n)],
        "anonymous_id": [ids[k][0] for k in who],
        "user_id": [ids[k][1] for k in who],
        "channel": ["web"] * n,
        "properties": ['{"valid": true, "x": 10, "y": 10}'] * n,
        "context": ["{}"] * n,
    })
    pq.write_table(table, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--new", type=int, default=10_000)
    ap.add_argument("--persons", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="workspace folder to reuse (ingested once)")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/results.jsonl")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import peak
    from run import prepared
    from scratch import scratch

    import microjourney as mj

    n = args.events
    data, root = prepared(n, args.seed, args.keep, "mj-incremental-")
    rows = [("floor: read + sort (all columns)", _floor(data, narrow=False)),
            ("narrow floor: person, time, event; sorted", _floor(data, narrow=True))]
    peak.reset()  # microjourney's own peak, apart from the floors' (peak.py)
    incremental, ingests, touched = [], [], []
    # On a copy of a kept workspace, so that it stays at the events it was ingested with.
    with scratch(root, args.keep, "mj-incremental-") as root:
        with mj.open(root) as ws:
            full = ws.refresh(force=True, frictions=True)
            rows.append(("full rebuild (who is who .. friction summaries)", full.seconds))
            for k in range(args.repeat):
                path = new_events(ws, args.new, args.persons, args.seed * 100 + k,
                                  root / f"new-{k}.parquet")
                t0 = time.perf_counter()
                ws.ingest(path)
                ingests.append(time.perf_counter() - t0)
                done = ws.refresh()
                assert done.mode == "incremental", done
                incremental.append(done.seconds)
                touched.append(done.persons or 0)
    rows.append((f"ingest {args.new:,} new events (Parquet)", statistics.median(ingests)))
    rows.append((f"incremental refresh ({statistics.median(touched):,.0f} persons)",
                 statistics.median(incremental)))
    most = peak.mb()
    floor, narrow = rows[0][1], rows[1][1]
    inc = statistics.median(incremental)
    print(f"incremental refresh, {n:,} events + {args.new:,} new from {args.persons:,} persons; "
          f"median of {args.repeat}; peak RSS {most:,.0f} MB (after the floors)")
    print(f"{'step':<52} {'wall s':>8} {'/ floor':>8} {'/ narrow':>9}")
    for name, secs in rows:
        print(f"{name[:52]:<52} {secs:8.3f} {secs / floor:8.2f} {secs / narrow:9.2f}")
    print("incremental refreshes, each (s): " + ", ".join(f"{x:.2f}" for x in incremental))
    print(f"incremental / full rebuild: {inc / full.seconds:.1%} (target ≤ 5%, ≤ 1 s)")
    if args.record:
        with (HERE / "results.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "benchmark": "incremental", "events": n, "new": args.new,
                                 "persons": args.persons, "peak_rss_mb": round(most),
                                 "steps": {k: round(v, 3) for k, v in rows},
                                 "incremental_share": round(inc / full.seconds, 4)}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
