"""Scrubbing personal data from free text on the way in (the rule set of docs/privacy.md).

Three kinds of personal data are replaced, wherever they occur in a text:

* an **e-mail address** becomes ``[email]``: a local part (letters, digits, ``. _ % + -``),
  ``@`` (or its URL encoding ``%40``), one or more dot-separated domain labels and a
  top-level domain of two or more letters;
* a **card number** becomes ``[card]``: 13 to 19 digits, joined by nothing or by single
  spaces or dashes, starting with 2 to 6 (the card networks' ranges) and passing the
  Luhn check;
* a **phone number** becomes ``[phone]``: ``+`` and 8 to 15 digits (any grouping by
  single spaces, dots, dashes or parentheses); or, without ``+``, digits in groups: the
  North American 3-3-4 (``415-555-2671``, ``(415) 555-2671``), an area code in
  parentheses and 9 to 12 digits in all, or a national number with a trunk ``0``
  (``020 7946 0958``, ``06 12 34 56 78``): 9 to 12 digits in groups of two or more, all
  joined by the same separator (at least three groups when it is a dot).

Numbers are looked at as whole *runs* (digits joined by single separators); a run glued to
a letter, a digit, ``_``, ``.``, ``,``, ``/``, ``+``, ``-`` or a time (``10:00:``) before it,
or to a letter, ``@`` or a decimal comma (``,5``) after it, is not looked at, so ids
(``ORD-2024-000123``), UUIDs, paths, decimals, version strings, dates, times, time zone
offsets, IP addresses and amounts stay. A bare run of digits without
``+`` is never a phone number (epoch seconds and numeric ids look the same).

The rules are pure Python (:func:`scrub_text`, :func:`scrub_json`); the store runs them
only on the rows that :data:`PREFILTER` (an RE2 pattern, for DuckDB's ``regexp_matches``)
finds, which includes every text a rule could change.

>>> scrub_text("Mail jane.doe@example.co.uk or call +44 20 7946 0958")
'Mail [email] or call [phone]'
>>> scrub_text("card 4111 1111 1111 1111, order ORD-2024-000123 at 2024-01-01T10:00:05+01:00")
'card [card], order ORD-2024-000123 at 2024-01-01T10:00:05+01:00'
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import orjson

EMAIL_TOKEN = "[email]"
PHONE_TOKEN = "[phone]"
CARD_TOKEN = "[card]"

#: An e-mail address (``@`` may be URL-encoded as ``%40``); the domain ends in a letter TLD.
EMAIL = re.compile(
    r"[\w.%+-]+(?:@|%40)(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?!\w)")

# A run of (ASCII) digits: an optional +, digit groups joined by one separator (a space, a dot, a dash,
# or a parenthesis with a space or a separator next to it). Possessive, so a run is taken whole
# or not at all; not glued to a word, a number, a path, an id, a decimal or a time.
_SEP = r"(?:[ .-]|\)[ .-]?|[ .-]?\()"
RUN = re.compile(
    rf"(?<![\w+.,/-])(?<![0-9]:)\+?\(?[0-9]++(?:{_SEP}[0-9]++)*+\)?(?![\w@]|%40|,[0-9])")
_GROUPS = re.compile(r"[0-9]+")
_SEPS = re.compile(r"[^0-9]+")

#: An RE2 pattern (DuckDB ``regexp_matches``) matching every text that a rule above could
#: change, and few others: ``@``/``%40``; ``+`` and 8 digits; ``(`` and 9 digits; 3-3-4
#: digits; ``0[1-9]`` and 7 more digits or 13 digits starting with 2-6, either not glued to
#: what comes before. Texts it does not match are not looked at again. It is also run on
#: JSON text in DuckDB's normal form, where a control character before a number is an
#: escape (``\n``, ``\u001F``): that does not glue the number either.
PREFILTER = (
    r"@|%40"
    r"|\+\(?\d(?:[ .()-]{0,2}\d){7}"
    r"|\(\d(?:[ .()-]{0,2}\d){8}"
    r"|\d{3}[ .-]\d{3}[ .-]\d{4}"
    r"|(?:^|[^\w.,/+-]|\\[bfnrt]|\\u00[01][0-9A-Fa-f])(?:0[1-9](?:[ .-]?\d){7}|[2-6](?:[ -]?\d){12})"
)
_PREFILTER = re.compile(PREFILTER)
# Digits and "+" as "0", the separators of a number dropped: a number a rule could change
# becomes a run of at least nine "0".
_NUMBERS = bytes.maketrans(b"0123456789+", b"0" * 11)
#: The stretches of JSON text a number a rule could change lies in.
_SPAN = re.compile(rb"[0-9+(][0-9 .()+-]{8,}")


def may_hold_personal_data(texts: Iterable[bytes]) -> bool:
    r"""False only when no rule could change any of the JSON ``texts`` (UTF-8, as received,
    any layout). True when one holds ``@``, ``%40`` or a ``\u`` escape (which may hide any
    character), or a stretch of digits and `` .()+-`` with a ``+`` and eight digits, nine
    digits and something else, or thirteen digits from 2 to 6: what an e-mail address, a
    phone number or a card number needs. Coarser than :data:`PREFILTER` (which, on JSON as
    received, would also need to look at every ``\u`` escape) and much quicker in Python: a
    few microseconds for a request's texts.

    >>> may_hold_personal_data([b'{"page":"/pay","ms":1704103205000,"at":"2026-11-01T10:00:05+01:00"}'])
    False
    >>> may_hold_personal_data([b'{"note":"call 06 12 34 56 78"}']), may_hold_personal_data([b'"\\u0040"'])
    (True, True)
    """
    joined = b"\x00".join(texts)
    if b"@" in joined or b"%40" in joined or b"\\u" in joined:
        return True
    if b"000000000" not in joined.translate(_NUMBERS, b" .()-"):
        return False
    for m in _SPAN.finditer(joined):
        span = m.group()
        digits = len(span.translate(None, b" .()+-"))
        if ((digits >= 8 and b"+" in span) or (digits >= 9 and digits < len(span))
                or (digits >= 13 and span[:1] in b"23456")):
            return True
    return False


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
    seps = _SEPS.findall(text.strip("()"))
    if [len(g) for g in groups] == [3, 3, 4] and (text.startswith("(") or len(set(seps)) == 1):
        return True
    if text.startswith("("):
        return 9 <= n <= 12
    if len(set(seps)) != 1 or not re.fullmatch(r"0[1-9][0-9]*", groups[0]):
        return False
    return 9 <= n <= 12 and min(len(g) for g in groups) >= 2 and (seps[0] != "." or len(groups) >= 3)


def _number(m: re.Match[str]) -> str:
    text = m.group(0)
    digits = "".join(_GROUPS.findall(text))
    if _is_card(text, digits):
        return CARD_TOKEN
    if _is_phone(text, digits):
        return PHONE_TOKEN
    return text


def scrub_text(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers and card numbers replaced.

    >>> scrub_text("jürgen@müller.de, 5555-5555-5555-4444, (415) 555-2671, 06 12 34 56 78")
    '[email], [card], [phone], [phone]'
    >>> scrub_text("v5.2.1 lodash@4.17.21 192.168.1.20 4111111111111112 1704103205 2024-01-01 12.50")
    'v5.2.1 lodash@4.17.21 192.168.1.20 4111111111111112 1704103205 2024-01-01 12.50'
    """
    if not _PREFILTER.search(text):
        return text
    if "@" in text or "%40" in text:
        text = EMAIL.sub(EMAIL_TOKEN, text)
    return RUN.sub(_number, text)


def _paths(keep: Iterable[str]) -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(p.split(".")) for p in keep if p)


def scrub_value(value: Any, keep: frozenset[tuple[str, ...]] = frozenset(),
                path: tuple[str, ...] = ()) -> Any:
    """A JSON value with every string (and object key) scrubbed, at any depth; the values at
    the paths in ``keep`` (tuples of keys from the root) are left as they are.

    >>> scrub_value({"note": "call +1 415 555 2671", "traits": {"email": "a@b.io"}, "n": [1, "x@y.org"]},
    ...             frozenset({("traits",)}))
    {'note': 'call [phone]', 'traits': {'email': 'a@b.io'}, 'n': [1, '[email]']}
    """
    if path in keep:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {scrub_text(k): scrub_value(v, keep, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, keep, path) for v in value]
    return value  # numbers, booleans, null: not free text


def scrub_json(text: str, keep: Iterable[str] | frozenset[tuple[str, ...]] = ()) -> str:
    """JSON ``text`` with its strings scrubbed (:func:`scrub_value`), the same text when
    nothing changed; text that is not JSON is scrubbed as text. ``keep``: dotted paths
    from the root (``traits``, ``customer.email``) left as they are.

    >>> scrub_json('{"q": "jane@example.com", "ts": "2024-01-01T10:00:05Z"}')
    '{"q":"[email]","ts":"2024-01-01T10:00:05Z"}'
    >>> scrub_json('{"ok": 1}')
    '{"ok": 1}'
    """
    paths = keep if isinstance(keep, frozenset) else _paths(keep)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # integers beyond 64 bits, which orjson does not read
            value = json.loads(text)
        except ValueError:
            return scrub_text(text)
    scrubbed = scrub_value(value, paths)
    if scrubbed == value:
        return text
    try:
        return orjson.dumps(scrubbed).decode()
    except TypeError:
        return json.dumps(scrubbed, ensure_ascii=False, separators=(",", ":"))


def scrub_texts(texts: Iterable[str | None]) -> list[str | None]:
    """:func:`scrub_text` over many free texts (``None`` stays), e.g. survey responses.

    >>> scrub_texts(["Reach me at +33 6 12 34 56 78", None])
    ['Reach me at [phone]', None]
    """
    return [None if t is None else scrub_text(t) for t in texts]
