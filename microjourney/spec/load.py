"""Load ``microjourney.yaml`` so that every problem points at file:line:column."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import SpecError, SpecProblem
from .frictions import Frictions
from .model import Journey, Matcher, Moment, Target, Workspace

Loc = tuple[str | int, ...]

#: The keys allowed at each kind of place, for "unknown key" messages.
_KEYS = {
    "workspace": Workspace.model_fields,
    "journey": Journey.model_fields,
    "moment": Moment.model_fields,
    "matcher": Matcher.model_fields,
    "target": Target.model_fields,
    "frictions": Frictions.model_fields,
    **{f"frictions.{kind}": field.annotation.model_fields  # type: ignore[union-attr]
       for kind, field in Frictions.model_fields.items()},
}


def _build(node: yaml.Node, loc: Loc, marks: dict[Loc, yaml.Mark], file: str,
           problems: list[SpecProblem]) -> Any:
    """Turn a composed YAML node into Python values, recording where each value sits."""
    marks[loc] = node.start_mark
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_object(_LOADER, key_node, deep=True)
            if key in out:
                problems.append(_problem(file, key_node.start_mark, loc + (key,),
                                         f"key {key!r} is given twice"))
            out[key] = _build(value_node, loc + (key,), marks, file, problems)
            # Point at the key of a nested block, at the value of a scalar; keep the
            # key's own place too, for "unknown key" messages.
            marks[("key",) + loc + (key,)] = key_node.start_mark
            if isinstance(value_node, yaml.MappingNode | yaml.SequenceNode):
                marks[loc + (key,)] = key_node.start_mark
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, loc + (i,), marks, file, problems) for i, v in enumerate(node.value)]
    return yaml.SafeLoader.construct_object(_LOADER, node, deep=True)


_LOADER = yaml.SafeLoader("")


def _problem(file: str, mark: yaml.Mark | None, loc: Loc, message: str) -> SpecProblem:
    return SpecProblem(
        file=file,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
        path=_dotted(loc),
        message=message,
    )


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _kind(loc: Loc) -> str:
    """What sort of object sits at ``loc`` (for the list of allowed keys)."""
    names = [p for p in loc if isinstance(p, str)]
    if not names:
        return "workspace"
    last = names[-1]
    if last == "journeys":
        return "journey"
    if last == "moments":
        return "moment"
    if last in ("start", "complete", "fail", "escalate", "steps"):
        return "matcher"
    if last == "target":
        return "target"
    if names[0] == "frictions":
        return ".".join(names[:2])
    return ""


def _mark_for(loc: Loc, marks: dict[Loc, yaml.Mark]) -> yaml.Mark | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in marks:
            return marks[loc[:n]]
    return None


def _translate(err: dict[str, Any], file: str, marks: dict[Loc, yaml.Mark]) -> SpecProblem:
    loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_KEYS.get(_kind(loc[:-1]), {}))
        msg = f"unknown key {loc[-1]!r}" + (f"; allowed keys: {allowed}" if allowed else "")
        return _problem(file, marks.get(("key",) + loc) or _mark_for(loc, marks), loc, msg)
    elif kind == "missing":
        msg = f"missing required key {loc[-1]!r}"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "literal_error" and loc:
            msg = f"{loc[-1]}: {msg}"
    return _problem(file, _mark_for(loc, marks), loc, msg)


def parse_workspace(text: str, file: str = "microjourney.yaml") -> Workspace:
    """Validate workspace YAML text; raise :class:`SpecError` listing every problem."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecError([_problem(file, mark, (), f"not valid YAML: {reason}")]) from None
    if root is None:
        return Workspace()
    marks: dict[Loc, yaml.Mark] = {}
    problems: list[SpecProblem] = []
    data = _build(root, (), marks, file, problems)
    if not isinstance(data, dict):
        raise SpecError([_problem(file, root.start_mark, (),
                                  "the workspace file must be a mapping with 'journeys'")])
    try:
        workspace = Workspace.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A list that is short only because its items failed is not a problem of its own.
        failed = [tuple(e["loc"]) for e in errors if e["type"] != "too_short"]
        errors = [e for e in errors if e["type"] != "too_short"
                  or not any(f[: len(e["loc"])] == tuple(e["loc"]) for f in failed)]
        problems += [_translate(e, file, marks) for e in errors]
        raise SpecError(sorted(problems, key=lambda p: (p.line or 0, p.column or 0))) from None
    problems += _duplicates(data, file, marks)
    if problems:
        raise SpecError(problems)
    return workspace


def _duplicates(data: dict[str, Any], file: str, marks: dict[Loc, yaml.Mark]) -> list[SpecProblem]:
    """Moment and journey names must be unique across the workspace."""
    out: list[SpecProblem] = []
    seen_j: set[str] = set()
    seen_m: dict[str, Loc] = {}
    for i, journey in enumerate(data.get("journeys") or []):
        if journey["name"] in seen_j:
            loc = ("journeys", i, "name")
            out.append(_problem(file, marks.get(loc), loc,
                                f"journey {journey['name']!r} is defined twice"))
        seen_j.add(journey["name"])
        for k, moment in enumerate(journey.get("moments") or []):
            loc = ("journeys", i, "moments", k, "name")
            if moment["name"] in seen_m:
                first = marks.get(seen_m[moment["name"]])
                line = f" (first at line {first.line + 1})" if first else ""
                out.append(_problem(file, marks.get(loc), loc,
                                    f"moment {moment['name']!r} is defined twice{line}"))
            else:
                seen_m[moment["name"]] = loc
    return out


def load_workspace(path: str | os.PathLike[str]) -> Workspace:
    """Read and validate a workspace file."""
    p = Path(path)
    return parse_workspace(p.read_text(encoding="utf-8"), file=str(p))
