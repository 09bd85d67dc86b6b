"""Hostile workspace files: every one is refused (or loaded) quickly, in little memory,
with a message at file:line, never a traceback.

The expensive cases run ``microjourney check`` in a child process, timed against a
generous wall-clock bound and measured by the child's own peak RSS (``os.wait4``), so a
regression that expands an alias bomb cannot take the test machine down with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from microjourney.errors import SpecError
from microjourney.spec import load_workspace, parse_workspace
from microjourney.spec.types import MAX_DEPTH, MAX_FILE_BYTES, MAX_MOMENTS, MAX_STEPS, MAX_VALUES

BASE = """\
journeys:
  - name: j
    moments:
      - name: m
        start: {event: a}
        complete: {event: c}
"""

#: Seconds a child may take: loading is well under a second here; a loaded 2-core
#: machine, and the interpreter's start, get the rest.
WALL_S = 30
#: Peak memory a child may add over checking a small valid file (the alias bomb took 4 GB).
EXTRA_MB = 300


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_workspace(text, file="ws.yaml")
    return [str(p) for p in info.value.problems]


def peak_mb(root: Path) -> tuple[int, str, float, float]:
    """``microjourney check`` on ``root`` in a child: exit code, output, seconds and the
    child's own peak RSS in MB (from ``wait4``: the children's totals keep one maximum
    over every child this process ever had)."""
    start = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "microjourney", "check", "-w", str(root)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = start + WALL_S
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            child.kill()
            os.wait4(child.pid, 0)
            pytest.fail(f"check ran for over {WALL_S} s")
        time.sleep(0.05)
    out = child.stdout.read() if child.stdout else b""
    child.stdout.close()
    code = os.waitstatus_to_exitcode(status)
    return code, out.decode("utf-8", "replace"), time.monotonic() - start, usage.ru_maxrss / 1024


@pytest.fixture(scope="module")
def baseline_mb(tmp_path_factory) -> float:
    root = tmp_path_factory.mktemp("ok")
    (root / "microjourney.yaml").write_text(BASE, encoding="utf-8")
    code, out, _, mb = peak_mb(root)
    assert code == 0, out
    return mb


def write(root: Path, data: str | bytes) -> Path:
    path = root / "microjourney.yaml"
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return root


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    lines = ["a: &a [" + ", ".join(["lol"] * width) + "]"]
    for i in range(levels):
        prev = "a" if i == 0 else f"l{i - 1}"
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*{prev}"] * width) + "]")
    return BASE + "\n".join(lines) + "\n"


def assert_refused(code: int, out: str, *expected: str) -> None:
    assert code != 0, out
    assert "Traceback" not in out and out.startswith("error [spec/invalid]"), out
    for text in expected:
        assert text in out, out


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("alias bomb", alias_bomb(), f"more than {MAX_VALUES:,} values once its aliases are expanded"),
    ("bomb in a key's value", BASE.replace("start: {event: a}", "start: {event: a, where: "
                                           "{k: {in: *l8}}}") + alias_bomb().split(BASE)[1],
     "once its aliases are expanded"),
    ("deep nesting", BASE + "x: " + "[" * 100_000 + "]" * 100_000 + "\n", "microjourney.yaml:7:"),
    ("deep mappings", BASE + "x: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
     f"nest more than {MAX_DEPTH} deep"),
    ("10,000 steps", BASE + "        steps:\n"
     + "".join(f"          - {{event: s{i}}}\n" for i in range(10_000)),
     f"steps: 10000 items; the limit is {MAX_STEPS}"),
])
def test_hostile_file_is_refused_fast_and_small(tmp_path, baseline_mb, name, text, expected):
    code, out, seconds, mb = peak_mb(write(tmp_path, text))
    assert_refused(code, out, "microjourney.yaml:", expected)
    assert mb < baseline_mb + EXTRA_MB, (name, mb, baseline_mb)


def test_huge_file_is_not_read(tmp_path, baseline_mb):
    # A valid-looking file past the limit: refused by its size, without reading it all.
    filler = "# " + "x" * 1000 + "\n"
    text = BASE + filler * (MAX_FILE_BYTES // len(filler) * 8)
    code, out, _, mb = peak_mb(write(tmp_path, text))
    assert_refused(code, out, f"larger than {MAX_FILE_BYTES:,} bytes")
    assert mb < baseline_mb + EXTRA_MB


def test_alias_within_the_limit_still_loads():
    # Anchors are for reuse; a matcher shared by two moments is fine.
    text = ("journeys:\n  - name: j\n    moments:\n"
            "      - {name: m1, start: &open {event: opened, where: {k: [a, b]}}, complete: {event: c}}\n"
            "      - {name: m2, start: *open, complete: {event: d}}\n")
    ws = parse_workspace(text)
    assert ws.moments["m2"].start == ws.moments["m1"].start


def test_alias_inside_its_own_anchor():
    assert problems(BASE + "x: &a [1, [2, *a]]\n") == [
        "ws.yaml:7:15: the alias *a sits inside its own anchor"]


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['true']",
                                 "!!python/object:builtins.dict {}", "!!python/name:os.system",
                                 "!custom x"])
def test_yaml_tags_beyond_plain_values_are_refused(tag):
    found = problems(f"name: {tag}\n")
    assert len(found) == 1 and found[0].startswith("ws.yaml:1:7: the YAML tag"), found


def test_non_utf8_is_reported_at_its_line(tmp_path):
    write(tmp_path, BASE.encode() + b"description: caf\xe9\n")
    with pytest.raises(SpecError) as info:
        load_workspace(tmp_path / "microjourney.yaml")
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (7, 17)
    assert "not UTF-8: byte 0xe9" in problem.message


def test_utf8_with_byte_order_mark_loads(tmp_path):
    write(tmp_path, b"\xef\xbb\xbf" + BASE.encode())
    assert list(load_workspace(tmp_path / "microjourney.yaml").moments) == ["m"]


def test_control_character_is_reported_at_its_line():
    assert problems(BASE + "description: a\x00b\n") == [
        "ws.yaml:7:15: not valid YAML: control characters are not allowed (character #x0000)"]


def test_duplicate_keys_are_reported_each():
    found = problems(BASE + "name: a\nname: b\n")
    assert found == ["ws.yaml:8:1: key 'name' is given twice (name)"]


def test_complex_key_and_bad_date_are_problems_not_tracebacks():
    assert problems("? [a, b]\n: 1\n") == [
        "ws.yaml:1:3: a key must be a plain name, not a list or mapping"]
    found = problems("name: 2024-13-45\n")
    assert found[0].startswith("ws.yaml:1:7: '2024-13-45' is not a valid value"), found


def test_size_limits_name_file_and_line():
    many = ("journeys:\n  - name: j\n    moments:\n"
            + "".join(f"      - {{name: m{i}, start: {{event: a}}, complete: {{event: c}}}}\n"
                      for i in range(MAX_MOMENTS + 1)))
    assert problems(many)[0].startswith(f"ws.yaml:3:5: moments: {MAX_MOMENTS + 1} items; the limit")
    split = ("journeys:\n" + "".join(
        f"  - name: j{j}\n    moments:\n" + "".join(
            f"      - {{name: m{j}_{i}, start: {{event: a}}, complete: {{event: c}}}}\n"
            for i in range(MAX_MOMENTS // 2 + 1)) for j in range(2)))
    assert problems(split) == [f"ws.yaml:1:1: a workspace holds at most {MAX_MOMENTS:,} moments, "
                               f"this one {MAX_MOMENTS + 2:,} (journeys)"]
    values = BASE.replace("{event: a}", "{event: a, where: {k: {in: ["
                          + ", ".join(str(i) for i in range(1001)) + "]}}}")
    assert problems(values) == ["ws.yaml:5:27: 'in' takes at most 1,000 values, got 1,001 "
                                "(journeys[0].moments[0].start.where[0])"]
    long_key = BASE.replace("{event: a}", "{event: a, where: {" + "k" * 201 + ": 1}}")
    assert "at most 200 characters" in problems(long_key)[0]


def test_a_funnel_at_the_step_limit_loads():
    steps = "        steps:\n" + "".join(f"          - {{event: s{i}}}\n" for i in range(MAX_STEPS))
    ws = parse_workspace(BASE + steps)
    assert len(ws.moments["m"].funnel) == MAX_STEPS + 2
