"""Every registered analysis, timed, against the DuckDB floor of the same run.

    python benchmarks/registry.py --events 1000000 [--keep DIR] [--repeat 3]

Generates the events (or reuses ``benchmarks/run.py``'s cached file), ingests them into a
workspace, refreshes its derived tables once, then times in one process:

    floor        DuckDB alone: read the Parquet file and sort it by (user_id, timestamp)
    each analysis ``ws.analysis(name, **params)`` with its first example's parameters (what
                 the CLI, the API and the report run), derived tables already fresh
    filtered     the same for the analyses over attempts with ``where os=iOS`` and a
                 ``since`` that keeps the later half: the filters reach the engine
    --json       encoding each result as every surface does (``Result.to_dict`` + ``dumps``)

and prints wall time, events/s and the ratio to the floor, and the process's peak RSS.
Figures go to docs/benchmarks.md by hand (``--record`` appends a JSON line to
``benchmarks/results.jsonl`` as well).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _median(fn, repeat: int) -> float:  # noqa: ANN001 - any callable
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _floor(data: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?) ORDER BY user_id, timestamp",
                [str(data)]).fetchall()
    con.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", help="workspace folder to reuse (ingested once)")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/results.jsonl")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from run import prepared

    import microjourney as mj
    from microjourney.jsonable import dumps
    from microjourney.registry import REGISTRY

    n = args.events
    data, root = prepared(n, args.seed, args.keep, "mj-registry-")
    floor = _median(lambda: _floor(data), args.repeat)
    rows = [("floor: read + sort", floor)]
    with mj.open(root) as ws:
        t0 = time.perf_counter()
        ws.refresh()
        ws.frictions()
        rows.append(("refresh (once; attempts, frictions)", time.perf_counter() - t0))
        first, mid = ws.con.execute("SELECT min(timestamp), "
                                    "min(timestamp) + (max(timestamp) - min(timestamp)) / 2 "
                                    "FROM events").fetchall()[0]
        since = mid.astimezone(UTC).isoformat()
        results = {}
        for a in REGISTRY:
            params = dict(a.examples(ws)[0])
            rows.append((f"{a.name} {params or ''}".strip(),
                         _median(lambda a=a, p=params: results.__setitem__(
                             a.name, ws.analysis(a.name, **p)), args.repeat)))
            if "where" in a.params.model_fields:
                filtered = {**params, "where": ["os=iOS"], "since": since}
                rows.append((f"{a.name} where os=iOS, since {since[:10]}",
                             _median(lambda a=a, p=filtered: ws.analysis(a.name, **p), args.repeat)))
        encode = _median(lambda: [dumps(r.to_dict()) for r in results.values()], args.repeat)
        rows.append(("--json of every result above", encode))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"registry benchmark, {n:,} events (first event {first:%Y-%m-%d}); median of "
          f"{args.repeat}; peak RSS {peak:,.0f} MB")
    print(f"{'step':<62} {'wall s':>8} {'events/s':>12} {'/ floor':>8}")
    for name, secs in rows:
        print(f"{name[:62]:<62} {secs:8.3f} {n / secs:12,.0f} {secs / floor:8.2f}")
    if args.record:
        with (HERE / "results.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "benchmark": "registry", "events": n, "peak_rss_mb": round(peak),
                                 "steps": {k: round(v, 3) for k, v in rows}}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
