"""Load ``microjourney.yaml`` so that every problem points at file:line:column.

Safely, whatever the file holds: it is read only up to :data:`.types.MAX_FILE_BYTES`,
decoded as UTF-8 (a bad byte is reported at its line), and screened event by event
before anything is built: nesting deeper than :data:`.types.MAX_DEPTH`, more than
:data:`.types.MAX_VALUES` values once aliases are expanded (an alias bomb), an alias
inside its own anchor, and tags other than YAML's plain ones are refused there. Only
then is the file composed into nodes and turned into Python values, with the place of
each value kept for messages. The model's own limits (steps per moment, moments per
workspace...) are pydantic constraints, checked before any analysis.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import SpecError, SpecProblem
from .frictions import Frictions
from .model import Journey, Matcher, Moment, Target, Workspace
from .types import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES
from .value import Value

Loc = tuple[str | int, ...]

#: libyaml's parser when PyYAML has it (fast, and never recursive), else PyYAML's own.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Explicit tags allowed: YAML's plain types. Any other (``!!python/object``...) is refused.
_TAGS = frozenset({"!"} | {f"tag:yaml.org,2002:{t}"
                           for t in ("str", "int", "float", "bool", "null", "seq", "map")})

#: The keys allowed at each kind of place, for "unknown key" messages.
_KEYS = {
    "workspace": Workspace.model_fields,
    "journey": Journey.model_fields,
    "moment": Moment.model_fields,
    "matcher": Matcher.model_fields,
    "target": Target.model_fields,
    "value": Value.model_fields,
    "frictions": Frictions.model_fields,
    **{f"frictions.{kind}": field.annotation.model_fields  # type: ignore[union-attr]
       for kind, field in Frictions.model_fields.items()},
}


class _Builder:
    """Turns a composed YAML node into Python values, recording where each value sits."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.marks: dict[Loc, yaml.Mark] = {}
        self.problems: list[SpecProblem] = []
        # A constructor per file: it caches what it built, node by node.
        self.constructor = yaml.constructor.SafeConstructor()

    def scalar(self, node: yaml.Node, loc: Loc) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:  # a date like 2024-13-45
            self.problems.append(_problem(self.file, node.start_mark, loc,
                                          f"{node.value!r} is not a valid value: {exc}"))
            return node.value

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        """The value of ``node``; nesting and size were bounded by :func:`_screen`."""
        self.marks[loc] = node.start_mark
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problems.append(_problem(self.file, key_node.start_mark, loc,
                                                  "a key must be a plain name, not a list or mapping"))
                    continue
                key = self.scalar(key_node, loc)
                if key in out:
                    self.problems.append(_problem(self.file, key_node.start_mark, loc + (key,),
                                                  f"key {key!r} is given twice"))
                out[key] = self.build(value_node, loc + (key,))
                # Point at the key of a nested block, at the value of a scalar; keep the
                # key's own place too, for "unknown key" messages.
                self.marks[("key",) + loc + (key,)] = key_node.start_mark
                if isinstance(value_node, yaml.MappingNode | yaml.SequenceNode):
                    self.marks[loc + (key,)] = key_node.start_mark
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(v, loc + (i,)) for i, v in enumerate(node.value)]
        return self.scalar(node, loc)


def _screen(text: str, file: str) -> None:
    """Refuse, before anything is built, what would make building slow, huge or deep.

    One pass over the parser's events, keeping for each anchor how many values it
    expands to and how deep it nests, so an alias counts as everything it stands for."""
    anchors: dict[str, tuple[int, int]] = {}
    open_: list[list[Any]] = []  # [anchor, values, depth below] of each open list/mapping
    total = 0

    def refuse(event: yaml.Event, message: str) -> SpecError:
        return SpecError([_problem(file, event.start_mark, (), message)])

    for event in yaml.parse(text, Loader=_Loader):
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _TAGS:
            raise refuse(event, f"the YAML tag {tag!r} is not allowed (plain values, lists and "
                                "mappings only)")
        if isinstance(event, yaml.CollectionStartEvent):
            open_.append([event.anchor, 1, 0])
            total += 1
            if len(open_) > MAX_DEPTH:
                raise refuse(event, f"lists and mappings nest more than {MAX_DEPTH} deep")
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            anchor, size, below = open_.pop()
            depth = below + 1
            if anchor is not None:
                anchors[anchor] = (size, depth)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                if any(o[0] == event.anchor for o in open_):
                    raise refuse(event, f"the alias *{event.anchor} sits inside its own anchor")
                continue  # an undefined alias: composing says so
            size, depth = anchors[event.anchor]
            total += size
        elif isinstance(event, yaml.ScalarEvent):
            size, depth = 1, 0
            total += 1
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0)
        else:
            continue
        if total > MAX_VALUES:
            raise refuse(event, f"the file holds more than {MAX_VALUES:,} values once its aliases "
                                "are expanded")
        if len(open_) + depth > MAX_DEPTH:
            raise refuse(event, f"lists and mappings nest more than {MAX_DEPTH} deep once its "
                                "aliases are expanded")
        if open_:
            open_[-1][1] += size
            open_[-1][2] = max(open_[-1][2], depth)


class _Place(Protocol):
    """A place in the file: PyYAML's ``Mark``, or libyaml's when the C parser found it."""

    @property
    def line(self) -> int: ...

    @property
    def column(self) -> int: ...


def _problem(file: str, mark: _Place | None, loc: Loc, message: str) -> SpecProblem:
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
    if last == "value":
        return "value"
    if names[0] == "frictions":
        return ".".join(names[:2])
    return ""


def _mark_for(loc: Loc, marks: dict[Loc, yaml.Mark]) -> yaml.Mark | None:
    for n in range(len(loc), -1, -1):
        if loc[:n] in marks:
            return marks[loc[:n]]
    return None


def _translate(err: ErrorDetails, file: str, marks: dict[Loc, yaml.Mark]) -> SpecProblem:
    loc: Loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_KEYS.get(_kind(loc[:-1]), {}))
        msg = f"unknown key {loc[-1]!r}" + (f"; allowed keys: {allowed}" if allowed else "")
        return _problem(file, marks.get(("key",) + loc) or _mark_for(loc, marks), loc, msg)
    elif kind == "missing":
        msg = f"missing required key {loc[-1]!r}"
    elif kind == "too_long":
        ctx = err.get("ctx", {})
        msg = (f"{loc[-1]}: {ctx.get('actual_length')} items; the limit is "
               f"{ctx.get('max_length')} (docs/workspace.md, Limits)")
    else:
        msg = err["msg"].removeprefix("Value error, ")
        if kind == "literal_error" and loc:
            msg = f"{loc[-1]}: {msg}"
    return _problem(file, _mark_for(loc, marks), loc, msg)


def parse_workspace(text: str, file: str = "microjourney.yaml") -> Workspace:
    """Validate workspace YAML text; raise :class:`SpecError` listing every problem."""
    if len(text) > MAX_FILE_BYTES // 4 and len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise SpecError([_too_big(file)])
    try:
        _screen(text, file)
        root = yaml.compose(text, Loader=_Loader)
    except yaml.reader.ReaderError as exc:  # a character YAML forbids, by position
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise SpecError([SpecProblem(file, line, column, "", f"not valid YAML: {exc.reason} "
                                     f"(character #x{exc.character:04x})")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        raise SpecError([_problem(file, mark, (), f"not valid YAML: {reason}")]) from None
    if root is None:
        return Workspace()
    builder = _Builder(file)
    data = builder.build(root, ())
    marks, problems = builder.marks, builder.problems
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
    """Moment, journey, survey and experiment names must be unique across the workspace, and
    each survey of a moment and each experiment must be of a defined one."""
    out: list[SpecProblem] = []
    seen_j: set[str] = set()
    seen_m: dict[str, Loc] = {}
    for i, journey in enumerate(data.get("journeys") or []):
        if journey["name"] in seen_j:
            loc: Loc = ("journeys", i, "name")
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
    seen_s: set[str] = set()
    for i, survey in enumerate(data.get("surveys") or []):
        if survey.get("moment") is not None and survey["moment"] not in seen_m:
            loc = ("surveys", i, "moment")
            out.append(_problem(file, marks.get(loc), loc, f"survey {survey['name']!r} is of moment "
                                f"{survey['moment']!r}, which is not defined; moments: "
                                f"{', '.join(seen_m) or '(none)'}"))
        if survey.get("journey") is not None and survey["journey"] not in seen_j:
            loc = ("surveys", i, "journey")
            out.append(_problem(file, marks.get(loc), loc, f"survey {survey['name']!r} is of journey "
                                f"{survey['journey']!r}, which is not defined; journeys: "
                                f"{', '.join(sorted(seen_j)) or '(none)'}"))
        if survey["name"] in seen_s:
            loc = ("surveys", i, "name")
            out.append(_problem(file, marks.get(loc), loc, f"survey {survey['name']!r} is defined twice"))
        seen_s.add(survey["name"])
    out += _interventions(data, file, marks, seen_s)
    seen_e: set[str] = set()
    for i, experiment in enumerate(data.get("experiments") or []):
        if experiment["moment"] not in seen_m:
            loc = ("experiments", i, "moment")
            out.append(_problem(file, marks.get(loc), loc, f"experiment {experiment['name']!r} is of "
                                f"moment {experiment['moment']!r}, which is not defined; moments: "
                                f"{', '.join(seen_m) or '(none)'}"))
        if experiment["name"] in seen_e:
            loc = ("experiments", i, "name")
            out.append(_problem(file, marks.get(loc), loc,
                                f"experiment {experiment['name']!r} is defined twice"))
        seen_e.add(experiment["name"])
    return out


def _interventions(data: dict[str, Any], file: str, marks: dict[Loc, yaml.Mark],
                   surveys: set[str]) -> list[SpecProblem]:
    """Each intervention is of a defined moment, once by name; a survey offer names a defined
    survey; a ``waiting`` signal without ``seconds`` needs an ``sla`` on the moment or a step."""
    out: list[SpecProblem] = []
    moments = {m["name"]: m for j in data.get("journeys") or [] for m in j.get("moments") or []}
    seen: set[str] = set()
    for i, rule in enumerate(data.get("interventions") or []):
        name, moment = rule["name"], moments.get(rule["moment"])

        def problem(key: str, message: str, i: int = i, name: str = name) -> None:
            loc: Loc = ("interventions", i, key)
            out.append(_problem(file, marks.get(loc), loc, f"intervention {name!r} {message}"))
        if moment is None:
            problem("moment", f"is of moment {rule['moment']!r}, which is not defined; moments: "
                    f"{', '.join(moments) or '(none)'}")
        elif (rule["when"].get("signal") == "waiting" and rule["when"].get("seconds") is None
              and moment.get("sla") is None
              and not any(isinstance(m, dict) and m.get("sla") is not None
                          for m in [*(moment.get("steps") or []), moment.get("complete")])):
            problem("when", f"waits on moment {rule['moment']!r}, which declares no sla: give "
                    "`seconds`")
        if rule.get("survey") is not None and rule["survey"] not in surveys:
            problem("survey", f"offers survey {rule['survey']!r}, which is not defined; surveys: "
                    f"{', '.join(sorted(surveys)) or '(none)'}")
        if name in seen:
            problem("name", "is defined twice")
        seen.add(name)
    return out


def load_workspace(path: str | os.PathLike[str]) -> Workspace:
    """Read and validate a workspace file (at most :data:`.types.MAX_FILE_BYTES` of it)."""
    p = Path(path)
    with p.open("rb") as fh:
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise SpecError([_too_big(str(p))])
    return parse_workspace(_decode(data, str(p)), file=str(p))


def _too_big(file: str) -> SpecProblem:
    return SpecProblem(file, None, None, "", f"the workspace file is larger than "
                                             f"{MAX_FILE_BYTES:,} bytes, the limit")


def _decode(data: bytes, file: str) -> str:
    """UTF-8 text (a byte-order mark dropped); a byte that is not UTF-8 is reported at
    its line and column (counted in bytes)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError([SpecProblem(file, line, column, "", f"not UTF-8: byte 0x{data[exc.start]:02x} "
                                     "cannot be read (save the file as UTF-8)")]) from None
