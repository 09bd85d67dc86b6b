"""The package's import graph: no cycles, and each layer imports only the layers below it
(docs/architecture.md, "Layers").

What counts as an import: every ``import`` / ``from ... import`` statement in a module,
at module level *and* inside functions and classes, except under ``if TYPE_CHECKING:``.
An import deferred into a function still makes the modules depend on each other: deferring
is how a cycle is hidden from the interpreter, not how it is broken (``engine/runtime.py``
and ``engine/spark.py`` were such a pair). A ``TYPE_CHECKING`` import never runs; it only
names a type for an annotation, so it is left out.

``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``;
``import a.b`` as importing ``a.b``.
"""

from __future__ import annotations

import ast
from pathlib import Path

#: Read as source, not imported: the graph is the text's, whatever importing would run.
PACKAGE = Path(__file__).resolve().parents[1] / "microjourney"

#: The layers of docs/architecture.md's table, as units (a top-level module or package of
#: ``microjourney``) and what each may import besides itself: a unit, or one module of it
#: where the table names one (as ``ingest.schema``). Data flows one way: edges -> workspace ->
#: registry -> engine / analysis -> spec / store / ingest -> errors and the event vocabulary.
#: Every module of the package must fall in one of these units.
BOTTOM = {"errors", "vocabulary"}  # the exception tree and the event vocabulary: anyone may import them
BELOW_THE_API = {"spec", "ingest", "store", "identity", "engine", "analysis", "text", "registry", "fmt",
                 "jsonable"}
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "vocabulary": set(),
    "ingest": set(),
    "spec": set(),
    "store": {"ingest"},
    "identity": set(),
    "engine": {"spec", "identity"},
    "analysis": {"spec"},
    # Texts embedded by a model shipped in a PyPI wheel (reading its files: not pure, so
    # not analysis), clustered, labelled and scored for sentiment.
    "text": set(),
    # The surfaces' shared helpers: number formatting and the one JSON encoding.
    "fmt": set(),
    "jsonable": set(),
    # The analyses, each declared once: the workspace runs them (naming it for annotations
    # only), every surface is made from them.
    "registry": {"spec", "engine", "analysis", "text", "fmt", "jsonable"},
    # The Python API: wires store -> engine -> analysis (workspace_analyses,
    # workspace_frictions and workspace_refresh are its other parts).
    "workspace": {"workspace_analyses", "workspace_frictions", "workspace_refresh", "workspace_identity",
                  "workspace_friction_refresh", "workspace_person_refresh", "workspace_surveys",
                  "workspace_changes", "workspace_context", *BELOW_THE_API},
    "workspace_analyses": BELOW_THE_API,
    "workspace_frictions": BELOW_THE_API,
    "workspace_refresh": {"workspace_identity", "workspace_friction_refresh", "workspace_person_refresh",
                          *BELOW_THE_API},
    "workspace_identity": BELOW_THE_API,
    "workspace_friction_refresh": {"workspace_person_refresh", *BELOW_THE_API},
    "workspace_person_refresh": BELOW_THE_API,
    "workspace_surveys": BELOW_THE_API,
    "workspace_changes": BELOW_THE_API,
    # A person's context for an agent hand-off (docs/handoff.md).
    "workspace_context": BELOW_THE_API,
    # The package itself: `import microjourney` gives the API (Workspace, Client, errors).
    "microjourney": {"workspace", "client", "registry"},
    # Edges in: the HTTP client sends events; the server takes them, and on the ingest path
    # calls the store's writer directly (docs/architecture.md, "The collector writes...").
    "client": set(),
    # The dashboard's pages format cells as every surface does (fmt); the weekly review sent by
    # webhook carries its one-page Markdown (report.review; server/reviewing.py).
    "server": {"microjourney", "workspace", "registry", "spec", "ingest", "store", "jsonable", "fmt",
               "webhooks", "report"},
    # Edges out: parse, call the API, render. The command line also starts the other edges
    # (serve, report, demo).
    "report": {"microjourney", "workspace", "workspace_analyses", "registry", "fmt", "jsonable"},
    "demo": {"microjourney", "workspace", "client"},
    # Alerts to webhooks: signed, retried, logged in the store at most once each.
    "webhooks": {"store", "spec", "jsonable"},
    "cli": {"microjourney", "workspace", "workspace_analyses", "registry", "fmt", "jsonable",
            "server", "report", "demo", "webhooks"},
    "__main__": {"cli"},
}

#: Imports that break the table today, each with why it stays for now; remove an entry once
#: its import is gone. (An absent entry is not an error: the tree is shared, and an import
#: listed here may land after this list.)
KNOWN: dict[tuple[str, str], str] = {
    ("microjourney.spec.model", "microjourney.ingest.lines"):
        "the workspace's ingest limits default to ingest.lines.Limits",
    # The vocabulary through ingest.schema's re-export, until these files move to
    # microjourney.vocabulary.
    ("microjourney.spec.model", "microjourney.ingest.schema"): "CHANNELS",
    ("microjourney.engine.frictions.transfer_hold", "microjourney.ingest.schema"):
        "ASSISTED_CHANNELS, CONVERSATION_CHANNELS",
    ("microjourney.registry.filters", "microjourney.ingest.schema"): "CHANNELS",
    ("microjourney.cli.admin", "microjourney.store.lake"):
        "`export --lake` checks the lake URL before opening the workspace",
    ("microjourney.cli.admin", "microjourney.ingest.readers"):
        "the ingest command reads --map through the readers' value_map",
}


def module_files(root: Path, name: str) -> dict[str, Path]:
    """Every module of the package at ``root`` (named ``name``), by dotted name."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of a module, wherever they stand, less those under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)  # only the `else:` of `if TYPE_CHECKING:` runs
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def import_graph(root: Path, name: str) -> dict[str, dict[str, int]]:
    """For each module of the package, the package's modules it imports and the line of the
    first such import."""
    files = module_files(root, name)

    def known(dotted: str) -> str | None:  # the deepest module of the package it names
        while dotted and dotted not in files:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in _statements(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                targets = [f"{source}.{alias.name}" for alias in node.names]
            for target in targets:
                found = known(target)
                if found and found != module and (found not in edges or node.lineno < edges[found]):
                    edges[found] = node.lineno
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle, modules in import order, for each group of modules that import one another
    (strongly connected components, Tarjan's algorithm without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return [_cycle_in(graph, set(group)) for group in groups]


def _cycle_in(graph: dict[str, dict[str, int]], group: set[str]) -> list[str]:
    """A shortest cycle through the group's first module (breadth-first), closed: [a, ..., a]."""
    first = min(group)
    came_from: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child not in group or child in came_from:
                    continue
                came_from[child] = node
                if child == first:
                    path = [first]
                    while path[-1] != first or len(path) == 1:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {first} in {sorted(group)}")


def _describe(graph: dict[str, dict[str, int]], cycle: list[str]) -> str:
    return " -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False)) + \
        f" -> {cycle[-1]}"


def unit_of(module: str) -> str:
    """The unit of :data:`LAYERS` a module belongs to: its top-level module or package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "microjourney"


def allowed(importer: str, imported: str) -> bool:
    """May module ``importer`` import module ``imported`` by the table?"""
    unit = unit_of(importer)
    target = ".".join(imported.split(".")[1:]) or "microjourney"
    if unit_of(imported) in ({unit} | BOTTOM):
        return True
    # A unit named in the table covers the modules below it: "ingest" allows ingest.lines.
    return any(target == name or target.startswith(name + ".") for name in LAYERS[unit])


def layer_problems(graph: dict[str, dict[str, int]]) -> list[str]:
    problems = []
    for module, edges in sorted(graph.items()):
        for target, line in sorted(edges.items()):
            if not allowed(module, target) and (module, target) not in KNOWN:
                unit = unit_of(module)
                problems.append(f"{module} (line {line}) imports {target}: "
                                f"{unit} may import only {sorted(LAYERS[unit] | BOTTOM)}")
    return problems


# -- the package ------------------------------------------------------------------------------


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE, "microjourney")
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(graph, c) for c in found)


def test_every_module_belongs_to_a_layer():
    units = {unit_of(m) for m in module_files(PACKAGE, "microjourney")}
    assert units <= set(LAYERS), f"modules in no layer of LAYERS: {sorted(units - set(LAYERS))}"


def test_the_layers_form_one_direction():
    """The table itself: no two units may import each other, through any chain."""
    graph = {unit: {name.split(".")[0]: 0 for name in names if name.split(".")[0] != unit}
             for unit, names in LAYERS.items()}
    assert not cycles(graph)


def test_each_layer_imports_only_the_layers_below():
    graph = import_graph(PACKAGE, "microjourney")
    assert not layer_problems(graph), "\n".join(layer_problems(graph))


# -- the checks themselves, on a package made here ---------------------------------------------


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_a_deferred_import_makes_a_cycle_and_a_type_checking_one_does_not(tmp_path):
    pkg = _package(tmp_path, {
        "__init__.py": "",
        "a.py": "from .b import B\n",
        "b.py": "class B:\n    def go(self):\n        from .c import C\n        return C\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n"
                "else:\n    import pkg.a\n",
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
        "sub/__init__.py": "from .. import d\nfrom ..sub import e\n",
        "sub/e.py": "",
    })
    graph = import_graph(pkg, "pkg")
    assert graph == {
        "pkg": {}, "pkg.a": {"pkg.b": 1}, "pkg.b": {"pkg.c": 3}, "pkg.c": {"pkg.a": 5}, "pkg.d": {},
        "pkg.sub": {"pkg.d": 1, "pkg.sub.e": 2}, "pkg.sub.e": {},
    }
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    assert _describe(graph, cycles(graph)[0]) == \
        "pkg.a (line 1) -> pkg.b (line 3) -> pkg.c (line 5) -> pkg.a"


def test_each_cycle_is_reported_by_its_shortest_loop():
    graph = {"m.a": {"m.b": 1}, "m.b": {"m.a": 1, "m.c": 2}, "m.c": {"m.a": 3},
             "m.x": {"m.y": 1}, "m.y": {"m.x": 1}, "m.z": {"m.x": 1}}
    assert cycles(graph) == [["m.a", "m.b", "m.a"], ["m.x", "m.y", "m.x"]]


def test_a_layer_rule_catches_an_import_upwards():
    graph = {"microjourney.engine.paths": {"microjourney.workspace": 7, "microjourney.spec.model": 3,
                                           "microjourney.errors": 2, "microjourney.vocabulary": 4,
                                           "microjourney.ingest.readers": 5}}
    assert layer_problems(graph) == [
        "microjourney.engine.paths (line 5) imports microjourney.ingest.readers: engine may import only "
        "['errors', 'identity', 'spec', 'vocabulary']",
        "microjourney.engine.paths (line 7) imports microjourney.workspace: engine may import only "
        "['errors', 'identity', 'spec', 'vocabulary']",
    ]
