"""What the demo tests share: the size of the small demo (its fixtures, ``small`` and
``con``, are in conftest.py) and its events read back from the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from microjourney.demo import DemoFiles
from microjourney.vocabulary import FIELDS

SMALL = 1500


def read_events(path: Path) -> pa.Table:
    """One event file as a table of text columns (JSON objects as text)."""
    if path.suffix == ".parquet":
        return pq.read_table(path)
    if path.suffix == ".csv":
        types = {f: pa.string() for f in FIELDS}
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True))
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for row in rows:
        assert isinstance(row["properties"], dict) and isinstance(row["context"], dict)
        row["properties"], row["context"] = json.dumps(row["properties"]), json.dumps(row["context"])
    return pa.Table.from_pylist(rows, schema=pa.schema([(f, pa.string()) for f in FIELDS]))


def first_sent(files: DemoFiles) -> list[Path]:
    """The event files of first deliveries (not the replay, which sends some again)."""
    return [p for p in files.event_files if p != files.replay]


def all_events(files: DemoFiles) -> pa.Table:
    return pa.concat_tables([read_events(p).select(list(FIELDS)) for p in first_sent(files)])


def matchers(workspace: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for journey in workspace["journeys"]:
        for m in journey["moments"]:
            out += [m["start"], *m.get("steps", []), m["complete"]]
            out += [m[k] for k in ("fail", "escalate") if k in m]
    return out


def friction_events(workspace: dict[str, Any]) -> set[str]:
    """Event names the ``frictions:`` section names (keys ending in ``events``)."""
    return {name for settings in workspace["frictions"].values()
            for key, value in settings.items() if key.endswith("events") for name in value}


def one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]
