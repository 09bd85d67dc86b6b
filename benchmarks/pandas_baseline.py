"""The usual Python process-mining approach, on the benchmark's Parquet file: pandas over cases.

    python benchmarks/pandas_baseline.py EVENTS.parquet [--linked]

What pm4py-style pandas code does for a directly-follows graph and path variants, and what
``ws.process_map()`` + ``ws.variants()`` return for all events by person:

1. read the log (``pd.read_parquet``, only the columns it needs: a generous baseline);
2. case id per event; sort by (case, timestamp, file row), as pm4py does with its ``@@index``;
3. directly-follows graph: ``groupby(case).shift(-1)`` for the next activity and time, then
   ``groupby([activity, next activity])`` for the count and mean / median seconds per edge;
   node counts, and the first and last activity per case (start and end counts);
4. variants: a ``groupby(case)`` that applies ``tuple`` to each case's activities, then
   ``value_counts``, with the case's duration (last minus first timestamp) and its median per
   variant.

**Case = the person, simplified**: ``user_id`` when the event has one, else ``anonymous_id``.
That is what a pandas script usually does; microjourney also links an anonymous id to the
user it was first seen with (``microjourney.identity``), so a logged-in person's anonymous
events before login join their case there but form a case of their own here. Edge counts
therefore differ; ``linked_cases`` builds microjourney's persons in pandas (and sorts by the
millisecond time and file row, microjourney's order) to check that the counts then agree.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["timestamp", "event", "user_id", "anonymous_id"]
ARROW = " → "


def read(path: str | Path) -> pd.DataFrame:
    """The log, with a simplified case id and the file row (pm4py's ``@@index``)."""
    df = pd.read_parquet(path, columns=COLUMNS)
    df["case"] = df["user_id"].fillna(df["anonymous_id"])
    df["row"] = np.arange(len(df))
    return df.drop(columns=["user_id", "anonymous_id"])


def linked_cases(path: str | Path) -> pd.DataFrame:
    """The log with microjourney's persons as cases: an anonymous id seen with a user id
    belongs to the first such user (by time, then file row); times truncated to milliseconds,
    as microjourney orders and measures in ms."""
    df = pd.read_parquet(path, columns=COLUMNS)
    df["row"] = np.arange(len(df))
    both = df[df["anonymous_id"].notna() & df["user_id"].notna()]
    first = both.sort_values(["timestamp", "row"]).drop_duplicates("anonymous_id")
    link = pd.Series(first["user_id"].to_numpy(), index=first["anonymous_id"].to_numpy())
    df["case"] = df["user_id"].fillna(df["anonymous_id"].map(link)).fillna(df["anonymous_id"])
    df["timestamp"] = df["timestamp"].dt.floor("ms")
    return df.drop(columns=["user_id", "anonymous_id"])


def process_map(df: pd.DataFrame) -> dict[str, pd.DataFrame | pd.Series]:
    """Directly-follows graph of a log sorted by (case, time): edges, nodes, starts, ends."""
    nxt = df.groupby("case", sort=False)[["event", "timestamp"]].shift(-1)
    follows = df.assign(target=nxt["event"], target_t=nxt["timestamp"])
    follows = follows[follows["target"].notna()]
    seconds = (follows["target_t"] - follows["timestamp"]).dt.total_seconds()
    edges = (follows.assign(seconds=seconds).groupby(["event", "target"])["seconds"]
             .agg(["count", "median", "mean"]).reset_index()
             .rename(columns={"event": "source", "median": "median_s", "mean": "mean_s"}))
    by_case = df.groupby("case", sort=False)["event"]
    return {"edges": edges, "nodes": df["event"].value_counts(),
            "starts": by_case.first().value_counts(), "ends": by_case.last().value_counts()}


def variants(df: pd.DataFrame) -> pd.DataFrame:
    """Path variants of a log sorted by (case, time): cases, share, median duration."""
    g = df.groupby("case", sort=False)
    paths = g["event"].apply(tuple)
    duration = (g["timestamp"].max() - g["timestamp"].min()).dt.total_seconds()
    cases = pd.DataFrame({"variant": paths, "duration_s": duration})
    v = cases.groupby("variant").agg(cases=("duration_s", "size"),
                                     duration_median_s=("duration_s", "median")).reset_index()
    v["steps"] = v["variant"].map(len)
    v["share"] = v["cases"] / v["cases"].sum()
    return v.sort_values("cases", ascending=False, kind="stable").reset_index(drop=True)


def run(path: str | Path, lap: Callable[[str], object] | None = None, *,
        linked: bool = False) -> dict[str, object]:
    """Read, sort, map and variants, each timed with ``lap(name)`` (a context manager
    factory, e.g. ``run.py``'s clock); returns the outputs and their sizes."""
    lap = lap or _Laps()
    with lap("read (pd.read_parquet)"):
        df = linked_cases(path) if linked else read(path)
    with lap("sort by (case, time)"):
        df = df.sort_values(["case", "timestamp", "row"], ignore_index=True)
    with lap("process map (groupby + shift)"):
        pm = process_map(df)
    with lap("variants (groupby-apply tuple)"):
        v = variants(df)
    return {"events": len(df), "cases": int(df["case"].nunique()), "map": pm, "variants": v}


class _Laps:
    """Print each lap (when run as a script)."""

    def __call__(self, name: str) -> _Lap:
        return _Lap(name)


class _Lap:
    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        print(f"  {self.name}: {time.perf_counter() - self.t0:.2f} s")


def variant_text(v: pd.DataFrame) -> pd.Series:
    """Variants as microjourney writes them (``a → b → c``)."""
    return v["variant"].map(ARROW.join)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", help="events.parquet from benchmarks/generate.py")
    ap.add_argument("--linked", action="store_true",
                    help="cases = microjourney's persons (anonymous ids linked to users)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = run(args.path, linked=args.linked)
    edges = out["map"]["edges"]
    print(f"{out['events']:,} events, {out['cases']:,} cases, {len(edges):,} edges, "
          f"{len(out['variants']):,} variants in {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
