"""The public surface and the layering that keeps the core pure."""

from __future__ import annotations

import ast
from pathlib import Path

import microjourney as mj

PACKAGE = Path(mj.__file__).parent

#: Each layer may import only itself and the layers listed (ARCHITECTURE.md: data flows one way).
ALLOWED = {
    "errors": set(),
    "spec": {"errors", "ingest"},  # ingest.schema holds the channel names
    "ingest": {"errors"},
    "store": {"errors", "ingest"},
    "identity": set(),
    "engine": {"errors", "spec", "identity", "ingest"},  # ingest.schema: the channel names
    "analysis": {"errors", "spec"},
    # An edge: the HTTP server calls the Python API (workspace) and, on the ingest path, the
    # store's writer directly (the collector's group commit).
    "server": {"errors", "spec", "ingest", "store", "workspace", "registry", "jsonable",
               "__version__"},
}
for _allowed in ALLOWED.values():  # the event vocabulary (microjourney/vocabulary.py) is below every layer
    _allowed.add("vocabulary")


def test_exported_names():
    assert sorted(mj.__all__) == sorted([
        "Client", "IngestError", "IngestResult", "MicrojourneyError", "QueryError", "SpecError", "Workspace",
        "WorkspaceError", "__version__", "init", "open"])
    for name in mj.__all__:
        assert hasattr(mj, name), name


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    rel = path.relative_to(PACKAGE).parts
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-1])[: len(rel) - 1 - (node.level - 1)]
                mod = [*base, *(node.module.split(".") if node.module else [])]
                if mod:
                    found.add(mod[0])
                else:  # `from . import x`
                    found.update(a.name for a in node.names)
            elif node.module and node.module.startswith("microjourney."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("microjourney."))
    return found


def test_layers_import_only_earlier_layers():
    problems = []
    for layer, allowed in ALLOWED.items():
        files = [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() else \
            sorted((PACKAGE / layer).rglob("*.py"))
        for f in files:
            bad = {m for m in _imports(f) if m != layer and m not in allowed}
            if bad:
                problems.append(f"{f.relative_to(PACKAGE)} imports {sorted(bad)}")
    assert not problems, problems


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
            allowed = {"store/writer.py"}
            assert str(f.relative_to(PACKAGE)) in allowed, f"{f.name}:{line} formats SQL"
