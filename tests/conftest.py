"""Shared fixtures: real workspaces on disk with a real DuckDB store."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import duckdb
import pytest

import microjourney as mj
from microjourney.demo import DemoFiles, generate

from .demo_files import SMALL, all_events
from .helpers import PAYMENT_YAML, write_events


@pytest.fixture
def make_ws(tmp_path: Path) -> Callable[..., mj.Workspace]:
    """Build a workspace from YAML text and event rows; closes it afterwards."""
    opened: list[mj.Workspace] = []

    def build(spec: str = PAYMENT_YAML, rows: Iterable[dict] = (), name: str = "ws") -> mj.Workspace:
        root = tmp_path / name
        root.mkdir()
        (root / "microjourney.yaml").write_text(spec, encoding="utf-8")
        ws = mj.open(root)
        opened.append(ws)
        rows = list(rows)
        if rows:
            ws.ingest(write_events(root / "events.csv", rows))
        return ws

    yield build
    for ws in opened:
        ws.close()


@pytest.fixture(scope="package")
def site_served(tmp_path_factory: pytest.TempPathFactory):
    """The dashboard's test site (tests/dashboard_site.py), served once for every dashboard
    test module: (server, keys)."""
    from .dashboard_site import serve

    yield from serve(tmp_path_factory)


# The small demo, for the demo tests (tests/test_demo_generate.py, test_demo_signals.py).
@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> DemoFiles:
    return generate(tmp_path_factory.mktemp("demo"), persons=SMALL)


@pytest.fixture(scope="module")
def con(small: DemoFiles) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    events = all_events(small)  # noqa: F841 - read by DuckDB through the variable name
    c.execute("""create table ev as select * exclude (timestamp),
                 timestamp::timestamptz as ts, coalesce(user_id, anonymous_id) as who,
                 properties::json as p from events""")
    return c
