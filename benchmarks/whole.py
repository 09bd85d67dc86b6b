"""The whole analysis against hand-written DuckDB queries for the same questions, same run.

    python benchmarks/whole.py --events 10000000 [--keep DIR] [--repeat 2]

On ``benchmarks/run.py``'s cached events and a workspace holding them (``--keep`` reuses
it), times in one process:

    wide floor     DuckDB alone: read the Parquet file, sort it by (user_id, timestamp)
    narrow floor   DuckDB alone: read person, time and event name; sort by person and time
    hand-written   DuckDB alone, on the Parquet file, each result materialised:
                   the signup funnel (five ordered steps within the moment's timeout, the
                   first start per person), rage clicks (three clicks within 1 s and 30 px),
                   the directly-follows graph (counts and median gap) and the variants
                   (each person's whole path, counted)
    microjourney   from a fresh open: a full rebuild of the derived tables
                   (``refresh(force=True)``), the scorecard, the signup funnel, every friction
                   with the summary, the process map and the variants

and prints each part, the whole analysis against the hand-written sum (target ≤ 2×) and
against both floors, and the peak RSS of each side (microjourney's: target ≤ 4 GB; the
floors' and the hand-written queries' run in the same process, before it, and are measured
apart: the wide floor's in-memory sort alone reaches about 5 GB). The hand-written queries
key persons by ``coalesce(user_id, anonymous_id)`` (no identity stitching) and detect one
friction kind, so they do less than microjourney does: the ratio is an upper bound on what
the engine's own design costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent

PERSON = "coalesce(user_id, anonymous_id)"
HAND = {
    "funnel signup (5 steps)": f"""
        WITH e AS (SELECT {PERSON} AS p, timestamp AS t, event,
                          json_extract_string(properties, '$.valid') AS valid
                   FROM read_parquet($1)
                   WHERE event IN ('signup_started', 'details_entered', 'identity_verified',
                                   'terms_accepted', 'account_created')),
        s1 AS (SELECT p, min(t) AS t1 FROM e WHERE event = 'signup_started' GROUP BY p),
        s2 AS (SELECT s1.p, s1.t1, min(e.t) AS t2 FROM s1 JOIN e ON e.p = s1.p
               AND e.event = 'details_entered' AND e.valid = 'true' AND e.t >= s1.t1
               AND e.t <= s1.t1 + INTERVAL 1 HOUR GROUP BY ALL),
        s3 AS (SELECT s2.p, s2.t1, min(e.t) AS t3 FROM s2 JOIN e ON e.p = s2.p
               AND e.event = 'identity_verified' AND e.t >= s2.t2
               AND e.t <= s2.t1 + INTERVAL 1 HOUR GROUP BY ALL),
        s4 AS (SELECT s3.p, s3.t1, min(e.t) AS t4 FROM s3 JOIN e ON e.p = s3.p
               AND e.event = 'terms_accepted' AND e.t >= s3.t3
               AND e.t <= s3.t1 + INTERVAL 1 HOUR GROUP BY ALL),
        s5 AS (SELECT s4.p FROM s4 JOIN e ON e.p = s4.p AND e.event = 'account_created'
               AND e.t >= s4.t4 AND e.t <= s4.t1 + INTERVAL 1 HOUR GROUP BY ALL)
        SELECT (SELECT count(*) FROM s1) AS n1, (SELECT count(*) FROM s2) AS n2,
               (SELECT count(*) FROM s3) AS n3, (SELECT count(*) FROM s4) AS n4,
               (SELECT count(*) FROM s5) AS n5""",
    "rage clicks": f"""
        WITH c AS (SELECT {PERSON} AS p, timestamp AS t,
                          json_extract(properties, '$.x')::DOUBLE AS x,
                          json_extract(properties, '$.y')::DOUBLE AS y
                   FROM read_parquet($1) WHERE event = 'click'),
        w AS (SELECT p, t, x, y, lag(t, 2) OVER o AS t2, lag(x, 2) OVER o AS x2,
                     lag(y, 2) OVER o AS y2
              FROM c WINDOW o AS (PARTITION BY p ORDER BY t))
        SELECT p, t FROM w WHERE t - t2 <= INTERVAL 1 SECOND
                             AND abs(x - x2) <= 30 AND abs(y - y2) <= 30""",
    "directly-follows graph": f"""
        WITH e AS (SELECT event, lead(event) OVER o AS next_event,
                          epoch_ms(lead(timestamp) OVER o) - epoch_ms(timestamp) AS gap
                   FROM read_parquet($1)
                   WINDOW o AS (PARTITION BY {PERSON} ORDER BY timestamp))
        SELECT event, next_event, count(*) AS n, median(gap) AS median_ms
        FROM e WHERE next_event IS NOT NULL GROUP BY ALL""",
    "variants": f"""
        WITH paths AS (SELECT string_agg(event, '>' ORDER BY timestamp) AS path
                       FROM read_parquet($1) GROUP BY {PERSON})
        SELECT path, count(*) AS persons FROM paths GROUP BY path""",
}


def hand_written(data: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for name, sql in HAND.items():
        t0 = time.perf_counter()
        con.execute("CREATE OR REPLACE TEMP TABLE r AS " + sql, [str(data)])
        out[name] = time.perf_counter() - t0
    con.close()
    return out


def whole(root: Path) -> dict[str, float]:
    import microjourney as mj

    out: dict[str, float] = {}

    def timed(name: str, fn) -> None:  # noqa: ANN001
        t0 = time.perf_counter()
        fn()
        out[name] = time.perf_counter() - t0

    with mj.open(root) as ws:
        timed("full rebuild", lambda: ws.refresh(force=True, frictions=True))
        timed("scorecard", lambda: ws.analysis("scorecard"))
        timed("funnel signup", lambda: ws.analysis("funnel", moment="signup"))
        timed("frictions + summary", lambda: (ws.frictions().count().execute(), ws.friction_summary()))
        timed("process map + variants", lambda: (ws.analysis("process-map"),
                                                 ws.analysis("variants", top=1_000_000)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", help="workspace folder to reuse (ingested once)")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/results.jsonl")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import peak
    from incremental import _floor
    from run import prepared

    data, root = prepared(args.events, args.seed, args.keep, "mj-whole-")
    runs: dict[str, list[float]] = {}
    peaks = {"floors and hand-written": 0.0, "microjourney": 0.0}
    for _ in range(args.repeat):
        peak.reset()
        parts = {"wide floor": _floor(data, narrow=False), "narrow floor": _floor(data, narrow=True)}
        parts.update({f"hand: {k}": v for k, v in hand_written(data).items()})
        peaks["floors and hand-written"] = max(peaks["floors and hand-written"], peak.mb())
        peak.reset()
        parts.update({f"microjourney: {k}": v for k, v in whole(root).items()})
        peaks["microjourney"] = max(peaks["microjourney"], peak.mb())
        for k, v in parts.items():
            runs.setdefault(k, []).append(v)
    median = {k: statistics.median(v) for k, v in runs.items()}
    hand = sum(v for k, v in median.items() if k.startswith("hand: "))
    mine = sum(v for k, v in median.items() if k.startswith("microjourney: "))
    print(f"whole analysis, {args.events:,} events; median of {args.repeat}; peak RSS: "
          f"microjourney {peaks['microjourney']:,.0f} MB (target ≤ 4 GB), floors and "
          f"hand-written {peaks['floors and hand-written']:,.0f} MB")
    for k, v in median.items():
        print(f"{k:<52} {v:8.2f} s")
    print(f"{'hand-written, sum':<52} {hand:8.2f} s")
    print(f"{'microjourney, whole analysis':<52} {mine:8.2f} s")
    print(f"whole / hand-written: {mine / hand:.2f}× (target ≤ 2×); / wide floor: "
          f"{mine / median['wide floor']:.2f}×; / narrow floor: {mine / median['narrow floor']:.2f}×")
    if args.record:
        with (HERE / "results.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "benchmark": "whole", "events": args.events,
                                 "peak_rss_mb": round(peaks["microjourney"]),
                                 "peak_rss_floors_mb": round(peaks["floors and hand-written"]),
                                 "steps": {k: round(v, 3) for k, v in median.items()},
                                 "whole_over_hand": round(mine / hand, 3)}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
