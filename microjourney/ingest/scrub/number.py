"""Card and phone numbers in free text, found in time linear in the text's length.

Numbers are looked at as whole *regions*: digit groups joined by a narrow joiner (a space, a
dot, a dash, ``%20``, or a parenthesis with one of those next to it) or a wide one (one or two
blanks — space, tab, no-break spaces U+00A0, U+2007, U+202F — with at most one dash among up to
two blanks on each side: ``"  "``, ``" - "``, ``"\\t"``), with an optional leading ``+`` (or
``%2B``) and ``(``. A region is judged once, as a whole:

* the run to judge starts at the region's start, or, when that is glued to what comes
  before (a word character, ``+ . , / -``, a time ``10:00:``), at the first group or ``(``
  inside it that is not; a percent escape before it counts as the character it encodes. The
  run ends with the region (and a ``)`` after it), unless it is glued to what comes after (a
  word character, ``@``, ``%40``, a decimal comma ``,5``): then nothing is replaced;
* that run is a card or a phone number (:func:`verdict`), or else each run of it joined by
  narrow joiners only is judged the same way (so two phone numbers a tab apart are two).

Why regions and not one pattern with lookarounds: a pattern that fails only at its end (a
run glued to a letter after it) is tried again from every group inside the run, which costs
the square of the run's length. Each region here is found by a pattern that cannot fail once
started, so the next search starts after it.

>>> scrub_numbers("4111\\u00a01111\\u00a01111\\u00a01111 or 0044 20 7946 0958; ORD-2024-000123")
'[card] or [phone]; ORD-2024-000123'
"""

from __future__ import annotations

import re
from collections.abc import Iterator

PHONE_TOKEN = "[phone]"
CARD_TOKEN = "[card]"

_BLANK = r"[ \t\u00a0\u2007\u202f]"
_NARROW = r"(?:[ .-]|%20|\)(?:[ .-]|%20)?|(?:[ .-]|%20)?\()"
_WIDE = rf"(?:{_BLANK}{{1,2}}-?|-){_BLANK}{{0,2}}"
_START = r"(?:\+|%2[Bb])?\(?[0-9]++"
#: A region: possessive and without lookarounds, so once started it always matches.
REGION = re.compile(rf"{_START}(?:(?:{_NARROW}|{_WIDE})[0-9]++)*+")
#: A run joined by narrow joiners only (the rules before wide joiners were known).
_RUN = re.compile(rf"{_START}(?:{_NARROW}[0-9]++)*+")
# Where a run may start inside a region: "(" before a digit, or a digit group (after "%20" too).
_GROUP_START = re.compile(r"\((?=[0-9])|(?:(?<![0-9%])|(?<=%20))[0-9]")
_GLUED_AFTER = re.compile(r"[\w@]|%40|,[0-9]")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_GROUPS = re.compile(r"[0-9]+")
_SEPS = re.compile(r"[^0-9]+")
_TRUNK = re.compile(r"0[1-9][0-9]*")
_INTERNATIONAL = re.compile(r"00[1-9][0-9]*")
# No card or phone number has fewer than 8 digits: shorter runs are passed over unjudged.
_SHORTEST = 8


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits (card numbers pass it).

    >>> luhn_ok("4111111111111111"), luhn_ok("378282246310005"), luhn_ok("4111111111111112")
    (True, True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(text: str, digits: str) -> bool:
    return (13 <= len(digits) <= 19 and digits[0] in "23456" and "+" not in text
            and "(" not in text and ")" not in text and "." not in text and luhn_ok(digits))


def _is_phone(text: str, digits: str) -> bool:
    n = len(digits)
    if text.startswith("+"):
        return 8 <= n <= 15
    groups = _GROUPS.findall(text)
    if len(groups) < 2:
        return False  # a bare run of digits: an id, an amount, epoch seconds
    if _INTERNATIONAL.fullmatch(groups[0]):  # "00" instead of "+"
        return 8 <= n - 2 <= 15
    seps = _SEPS.findall(text.strip("()"))
    if [len(g) for g in groups] == [3, 3, 4] and (text.startswith("(") or len(set(seps)) == 1):
        return True
    if text.startswith("("):
        return 9 <= n <= 12
    if len(set(seps)) != 1 or not _TRUNK.fullmatch(groups[0]):
        return False
    return 9 <= n <= 12 and min(len(g) for g in groups) >= 2 and (seps[0] != "." or len(groups) >= 3)


def verdict(run: str) -> str | None:
    """``[card]`` or ``[phone]`` when the whole ``run`` is one, else ``None``.

    >>> verdict("4111 - 1111 - 1111 - 1111"), verdict("%2B44%2020%207946%200958"), verdict("2024-01-01")
    ('[card]', '[phone]', None)
    """
    text = run.replace("%20", " ")
    if text[:3] in ("%2B", "%2b"):
        text = "+" + text[3:]
    digits = "".join(_GROUPS.findall(text))
    if len(digits) > 19:  # longer than any card or phone number
        return None
    if _is_card(text, digits):
        return CARD_TOKEN
    if _is_phone(text, digits):
        return PHONE_TOKEN
    return None


def _free(text: str, i: int) -> bool:
    """Whether a run may start at ``i``: not glued to what comes before."""
    escape = _PERCENT.match(text, i - 3, i) if i >= 3 else None
    if escape:  # a percent escape counts as the character it encodes
        before, at = chr(int(escape.group(1), 16)), i - 3
    elif i > 0:
        before, at = text[i - 1], i - 1
    else:
        return True
    if before == ":":  # glued to a time (10:00:05), not to a label (tel:)
        return at == 0 or text[at - 1] not in "0123456789"
    return not (before.isalnum() or before in "_+.,/-")


def _run(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of the run to judge in the region ``start:end``, ``None`` when there is none."""
    if text.startswith(")", end) and not _GLUED_AFTER.match(text, end + 1):
        end += 1
    elif _GLUED_AFTER.match(text, end):
        return None
    if start and text.startswith("%20", start - 1) and end > start + 2 \
            and text[start + 2] in "0123456789(":
        start += 2  # the region starts inside a "%20": the number starts after it
    if _free(text, start):
        return start, end
    for m in _GROUP_START.finditer(text, start + 1, end):
        if _free(text, m.start()):
            return m.start(), end
    return None


def _replacements(text: str, start: int, end: int) -> Iterator[tuple[int, int, str]]:
    """``(start, end, token)`` for what to replace in the region ``start:end``."""
    span = _run(text, start, end)
    token = span and verdict(text[span[0]:span[1]])
    if token:
        yield span[0], span[1], token
        return
    narrow = _RUN.match(text, start, end)
    if narrow.end() == end:
        return  # joined by narrow joiners only: the run judged above was the only one
    for m in _RUN.finditer(text, start, end):
        if m.end() - m.start() < _SHORTEST:
            continue
        span = _run(text, m.start(), m.end())
        token = span and verdict(text[span[0]:span[1]])
        if token:
            yield span[0], span[1], token


def scrub_numbers(text: str) -> str:
    """``text`` with every card number and phone number replaced by ``[card]``/``[phone]``.

    >>> scrub_numbers("call 020 7946 0958\\t06 12 34 56 78 or %2B4915112345678, v5.2.1 at 10:00:05")
    'call [phone]\\t[phone] or [phone], v5.2.1 at 10:00:05'
    """
    parts: list[str] = []
    done = 0
    for region in REGION.finditer(text):
        if region.end() - region.start() < _SHORTEST:
            continue
        for start, end, token in _replacements(text, region.start(), region.end()):
            parts += (text[done:start], token)
            done = end
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)
