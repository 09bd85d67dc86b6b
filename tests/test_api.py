"""The public surface, and the pure analysis layer (the import graph: tests/test_layers.py)."""

from __future__ import annotations

from pathlib import Path

import microjourney as mj

PACKAGE = Path(mj.__file__).parent

def test_exported_names():
    assert sorted(mj.__all__) == sorted([
        "Client", "IngestError", "IngestResult", "MicrojourneyError", "QueryError", "SpecError", "Workspace",
        "WorkspaceError", "__version__", "init", "open"])
    for name in mj.__all__:
        assert hasattr(mj, name), name


def test_analysis_does_no_io():
    for f in (PACKAGE / "analysis").rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        for word in ("duckdb", "open(", "ibis", "requests", "Path("):
            assert word not in text, f"{f.name} uses {word}"


def test_no_values_formatted_into_sql():
    """SQL text is built from constants and quoted identifiers; values are parameters."""
    import re

    for f in PACKAGE.rglob("*.py"):
        text = f.read_text(encoding="utf-8")
        for m in re.finditer(r"execute\(\s*f[\"']", text):
            line = text[: m.start()].count("\n") + 1
            # Both format only quoted column names (and the reader's name) into their SQL; every
            # value, the file's path included, is a bound parameter.
            allowed = {"store/writer.py", "engine/experiment_table.py"}
            assert str(f.relative_to(PACKAGE)) in allowed, f"{f.name}:{line} formats SQL"
