"""Scrubbing every string of a JSON value or text, at any depth, without recursion.

A JSON value is walked with an explicit stack, so depth costs memory, not Python frames.
JSON text is read by orjson when it can (up to 1,024 levels, integers of 64 bits) and walked
token by token otherwise: a text nested 100,000 deep is scrubbed like any other, and a text
that is not JSON is scrubbed as text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import orjson

from .prefilter import may_be_personal
from .text import scrub_text

Paths = frozenset[tuple[str, ...]]


def _prefixes(keep: Paths) -> Paths:
    return frozenset(p[:i] for p in keep for i in range(len(p) + 1))


def _scrub(value: Any, keep: Paths) -> tuple[Any, bool]:
    """``value`` scrubbed, and whether anything changed (no deep comparison afterwards)."""
    prefixes = _prefixes(keep)
    top: list[Any] = [None]
    changed = False
    # (container to fill, slot, value, its path while it may lead to a kept path, else None)
    work: list[tuple[Any, Any, Any, tuple[str, ...] | None]] = [
        (top, 0, value, () if () in prefixes else None)]
    while work:
        holder, slot, v, p = work.pop()
        if p is not None and p in keep:
            holder[slot] = v
        elif isinstance(v, str):
            holder[slot] = new = scrub_text(v)
            changed = changed or new != v
        elif isinstance(v, dict):
            holder[slot] = shell = {}
            children = []
            for k, child in v.items():
                new_key = scrub_text(k)
                changed = changed or new_key != k
                shell[new_key] = None  # keeps the order of the keys as given
                below = None if p is None or (*p, k) not in prefixes else (*p, k)
                children.append((shell, new_key, child, below))
            work.extend(reversed(children))  # in order, so a repeated key keeps the last value
        elif isinstance(v, list):
            holder[slot] = shell = [None] * len(v)
            work.extend((shell, i, v[i], p) for i in range(len(v) - 1, -1, -1))
        else:
            holder[slot] = v  # numbers, booleans, null: not free text
    return top[0], changed


def scrub_value(value: Any, keep: Paths = frozenset()) -> Any:
    """A JSON value with every string (and object key) scrubbed, at any depth; the values at
    the paths in ``keep`` (tuples of keys from the root) are left as they are.

    >>> scrub_value({"note": "call +1 415 555 2671", "traits": {"email": "a@b.io"}, "n": [1, "x@y.org"]},
    ...             frozenset({("traits",)}))
    {'note': 'call [phone]', 'traits': {'email': 'a@b.io'}, 'n': [1, '[email]']}
    """
    return _scrub(value, keep)[0]


# One JSON token after optional white space: a string, a punctuation mark, or a scalar.
_TOKEN = re.compile(r'[ \t\n\r]*(?:("(?:[^"\\\x00-\x1f]|\\.)*")|([{}\[\],:])'
                    r"|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null))")
_SPACE = re.compile(r"[ \t\n\r]*")
# What the walk expects next.
_VALUE, _FIRST_VALUE, _FIRST_KEY, _KEY, _COLON, _NEXT = range(6)


def _string(token: str, scrub: bool) -> tuple[str, bool]:
    """A string token, scrubbed (re-encoded only when it changed)."""
    if not scrub:
        return token, False
    text = json.loads(token) if "\\" in token else token[1:-1]
    new = scrub_text(text)
    if new == text:
        return token, False
    out = json.dumps(new, ensure_ascii=False)
    try:
        out.encode()
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: keep it escaped
        out = json.dumps(new)
    return out, True


def _walk(text: str, keep: Paths) -> str | None:
    """JSON ``text`` scrubbed token by token (any depth, compact when changed); ``None`` when
    ``text`` is not JSON."""
    if "\\u" not in text and not may_be_personal(text):
        return text  # no rule could change it, JSON or not (the prefilter reads JSON escapes)
    prefixes = _prefixes(keep)
    out: list[str] = []
    stack: list[tuple[str, tuple[str, ...] | None]] = []  # open containers: ("{" or "[", path)
    state, path, key = _VALUE, () if () in prefixes else None, ""
    kept_at = -1  # the depth of the kept container being copied, -1 when none
    changed, pos = False, 0
    try:
        while state is not None:
            m = _TOKEN.match(text, pos)
            if m is None:
                return None
            pos = m.end()
            string, mark, scalar = m.groups()
            if state == _COLON:
                if mark != ":":
                    return None
                out.append(mark)
                state = _VALUE
                continue
            if state in (_FIRST_KEY, _KEY):
                if mark == "}" and state == _FIRST_KEY:
                    done = True
                elif string is None:
                    return None
                else:
                    key = json.loads(string) if "\\" in string else string[1:-1]
                    token, new = _string(string, kept_at < 0)
                    out.append(token)
                    changed = changed or new
                    state = _COLON
                    continue
            elif state == _NEXT:
                done = False
                if mark == ",":
                    out.append(mark)
                    state = _KEY if stack[-1][0] == "{" else _VALUE
                    continue
                if mark not in ("}", "]") or {"}": "{", "]": "["}[mark] != stack[-1][0]:
                    return None
                done = True
            elif mark == "]" and state == _FIRST_VALUE:
                done = True
            else:  # a value starts
                done = False
                parent = stack[-1] if stack else None
                if parent and parent[0] == "{":
                    p = parent[1]
                    path = None if p is None or (*p, key) not in prefixes else (*p, key)
                elif parent:
                    path = parent[1]
                kept = kept_at < 0 and path is not None and path in keep
                if mark in ("{", "["):
                    stack.append((mark, path))
                    if kept:
                        kept_at = len(stack)
                    out.append(mark)
                    state = _FIRST_KEY if mark == "{" else _FIRST_VALUE
                    continue
                if string is not None:
                    token, new = _string(string, kept_at < 0 and not kept)
                    out.append(token)
                    changed = changed or new
                elif scalar is not None:
                    out.append(scalar)
                else:
                    return None
            if done:  # a container closes
                out.append(mark)
                if kept_at == len(stack):
                    kept_at = -1
                stack.pop()
            state = _NEXT if stack else None
    except ValueError:  # a string with a bad escape
        return None
    if _SPACE.match(text, pos).end() != len(text):
        return None
    return "".join(out) if changed else text


def _paths(keep: Iterable[str]) -> Paths:
    return frozenset(tuple(p.split(".")) for p in keep if p)


def scrub_json(text: str, keep: Iterable[str] | Paths = ()) -> str:
    """JSON ``text`` with its strings scrubbed (:func:`scrub_value`), the same text when
    nothing changed; text that is not JSON is scrubbed as text. ``keep``: dotted paths
    from the root (``traits``, ``customer.email``) left as they are.

    >>> scrub_json('{"q": "jane@example.com", "ts": "2024-01-01T10:00:05Z"}')
    '{"q":"[email]","ts":"2024-01-01T10:00:05Z"}'
    >>> scrub_json('{"ok": 1}'), scrub_json('[' * 5000 + '"x@y.org"' + ']' * 5000)[4998:5011]
    ('{"ok": 1}', '[["[email]"]]')
    """
    paths = keep if isinstance(keep, frozenset) else _paths(keep)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:  # deeper than 1,024 levels, integers beyond 64 bits, not JSON
        walked = _walk(text, paths)
        return scrub_text(text) if walked is None else walked
    scrubbed, changed = _scrub(value, paths)
    if not changed:
        return text
    try:
        return orjson.dumps(scrubbed).decode()
    except TypeError:  # deeper than orjson writes (255 levels)
        return _walk(text, paths) or scrub_text(text)
