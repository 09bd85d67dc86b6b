"""What every runtime shares: the interface (:class:`Runtime`) and the lake that the lake
runtimes read, a folder or an :class:`ObjectLake`, checked.

Kept apart from :mod:`.runtime`, which chooses a runtime and so imports :mod:`.spark`:
the Spark runtime builds on this module, and nothing here imports either of them, so the
engine's modules import one another in one direction only (``tests/test_layers.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibis.expr.types import Table

from ..errors import WorkspaceError

#: The lake's event files, below the lake folder (hive partitions by UTC day).
EVENTS_GLOB = "events/*/*.parquet"


class Runtime:
    """The interface every runtime offers (see the module docstring)."""

    name = "?"
    db: Any  # the Ibis backend

    def __init__(self) -> None:
        self._meta: dict[str, str] = {}  # fingerprints, for this session only

    def events(self) -> Table:
        return self.db.table("events")

    def save(self, name: str, expr: Table, *, temp: bool = False) -> Table:
        """Materialise ``expr`` as table ``name`` (replacing it) and return it."""
        self.db.create_table(name, expr, temp=temp, overwrite=True)
        return self.db.table(name)

    def tables(self) -> set[str]:
        """The names of the tables and views there are."""
        con = getattr(self, "con", None)
        if con is not None and hasattr(con, "execute"):  # DuckDB (Ibis's listing needs an
            # Arrow call this DuckDB no longer has)
            return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                              "WHERE table_schema = 'main'").fetchall()}
        return set(self.db.list_tables())

    def view(self, name: str, expr: Table) -> Table:
        """``expr`` under the name ``name``: a view where the backend keeps one, else a
        table (a lake's tables last one session anyway)."""
        return self.save(name, expr)

    def forget_compiled(self) -> None:
        """After a rollback: what the store's compiled statements
        (:meth:`.runtime.Store.run_compiled`) registered is registered again; a runtime
        that keeps none has nothing to forget."""

    def drop(self, name: str) -> None:
        self.db.drop_table(name, force=True)

    def drop_any(self, name: str) -> None:
        """Drop ``name``, a table or a view."""
        self.drop(name)

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def close(self) -> None:
        """Release what the runtime holds; the store's own connection is the workspace's,
        so this base runtime holds nothing of its own."""


@dataclass(frozen=True)
class ObjectLake:
    """A lake on S3-compatible object storage, as the store resolved it.

    ``url``: ``s3://bucket/prefix``; ``events``: ``bucket/prefix/...`` in ``filesystem``, the
    prefix holding the current copy of the event files (``events``, or an export's staged
    copy while it publishes), and ``files`` those files, as the store listed them;
    ``filesystem``: a ``pyarrow.fs.S3FileSystem``; ``s3``: the endpoint, region and
    credentials, for engines that reach the store themselves (Spark's s3a).
    """

    url: str
    events: str
    files: tuple[str, ...]
    filesystem: Any
    s3: Mapping[str, str] = field(default_factory=dict, repr=False)


def lake_folder(lake: str | Path) -> Path:
    """The lake folder, checked: it must hold event files."""
    root = Path(lake)
    if not root.is_dir() or not any(root.glob(EVENTS_GLOB)):
        raise WorkspaceError(f"no lake at {root}: expected event files {root / EVENTS_GLOB} "
                             f"(write them with `microjourney export --lake {root}`)",
                             code="workspace/lake")
    return root


def check_objects(lake: ObjectLake) -> ObjectLake:
    """The object-storage lake, checked: it must hold event files."""
    if not lake.files:
        raise WorkspaceError(f"no lake at {lake.url}: expected event files {lake.url}/{EVENTS_GLOB} "
                             f"(write them with `microjourney export --lake {lake.url}`)",
                             code="workspace/lake")
    return lake


__all__ = ["EVENTS_GLOB", "ObjectLake", "Runtime", "check_objects", "lake_folder"]
