"""A scratch copy of a kept workspace (``--keep DIR``) for the benchmarks that add events.

``incremental.py`` and ``live.py`` store new events; on the kept workspace itself each run
would leave them behind, so that the next run measured a larger store whose returning
persons have longer histories (the live benchmark's staleness went from 8.7 s to 13 s over
a day of runs that way). They work on a copy instead: the kept workspace stays as it was
ingested, its derived tables refreshed, and runs on different days compare.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def scratch(root: Path, keep: str | None, prefix: str) -> Iterator[Path]:
    """``root`` itself when it is a workspace of this run only (``keep`` None); else a copy
    of it (its definitions, store and keys), removed afterwards."""
    if keep is None:
        yield root
        return
    import microjourney as mj

    with mj.open(root) as ws:  # the copies start from fresh tables: no rebuild in each run
        ws.refresh(frictions=True)
    out = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        shutil.copy2(root / "microjourney.yaml", out / "microjourney.yaml")
        (out / ".microjourney").mkdir()
        for name in ("store.duckdb", "store.duckdb.wal", "keys.json"):
            if (root / ".microjourney" / name).exists():
                shutil.copy2(root / ".microjourney" / name, out / ".microjourney" / name)
        yield out
    finally:
        shutil.rmtree(out, ignore_errors=True)
