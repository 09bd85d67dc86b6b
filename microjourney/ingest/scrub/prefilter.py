r"""Quick tests that pass every text a scrubbing rule could change, and few others.

Two forms: :data:`PREFILTER`, an RE2 pattern the store runs in DuckDB (``regexp_matches``) on
text and on JSON text in DuckDB's normal form, and :func:`may_hold_personal_data`, run by the
collector on JSON as received. Both must stay supersets of the rules (``mail.py``,
``number.py``); ``tests/test_privacy.py`` holds them to it.

The parts of :data:`PREFILTER`, each bounded in length from where it starts (so Python's
``re`` runs it in linear time too): ``@``/``%40``; ``+`` (or ``%2B``) and 8 digits; ``(`` and 9
digits; 3-3-4 digits; ``0[1-9]`` and 7 more digits, ``00[1-9]`` and 7 more, or 13 digits
starting with 2-6, any of these not glued to what comes before. Between digits, up to five
units of a joiner: a space, a tab, a no-break space, ``. ( ) -``, ``%20``, or the JSON escape
of one of those (``\t``, ``\u00a0``). In JSON text a control character before a number is an
escape (``\n``, ``\u001F``) that does not glue the number, and a percent escape before a
number counts as the character it encodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# One unit of a joiner between digits: raw, JSON-escaped or percent-encoded.
# (Literal characters in the class: RE2 does not read \u escapes.)
_J = "(?:[ .()\t\u00a0\u2007\u202f-]" + r"|\\t|\\u00[aA]0|\\u20(?:07|2[fF])|%20)"
# What may come before a number that is not glued to it.
_FREE = (r"(?:^|[^\w.,/+-]|\\[bfnrt]|\\u00[01][0-9A-Fa-f]|\\u00[aA]0|\\u20(?:07|2[fF])"
         r"|%[0-9A-Fa-f]{2})")

#: An RE2 pattern (DuckDB ``regexp_matches``) matching every text a rule could change.
PREFILTER = (
    r"@|%40"
    rf"|(?:\+|%2[Bb])\(?\d(?:{_J}{{0,5}}\d){{7}}"
    rf"|\(\d(?:{_J}{{0,5}}\d){{8}}"
    rf"|\d{{3}}{_J}{{1,5}}\d{{3}}{_J}{{1,5}}\d{{4}}"
    rf"|{_FREE}(?:0[1-9](?:{_J}{{0,5}}\d){{7}}|00[1-9](?:{_J}{{0,5}}\d){{7}}"
    rf"|[2-6](?:{_J}{{0,5}}\d){{12}})"
)
_PREFILTER = re.compile(PREFILTER)

# Digits, "+" and the characters of "%2B" as "0"; what may join the digits of a number dropped
# (blanks, dashes, dots, parentheses, a JSON "\t", the UTF-8 bytes of no-break spaces): a
# number a rule could change becomes a run of at least nine "0".
_NUMBERS = bytes.maketrans(b"0123456789+%Bb", b"0" * 14)
_JOINERS = b" .()-\t\\t\xc2\xa0\xe2\x80\x87\xaf"
#: The stretches of JSON text (as received, "%2B" and "%20" decoded) a number a rule could
#: change lies in. One class of bytes, not alternatives (the bytes of "\t" and of the no-break
#: spaces one by one): several times quicker, and only more stretches are looked at.
_SPAN = re.compile(rb"[0-9+(][0-9 .()+\t\\t\xc2\xa0\xe2\x80\x87\xaf-]{8,}")
_DIGITS = b"0123456789"


def may_be_personal(text: str) -> bool:
    """Whether :data:`PREFILTER` matches ``text`` (Python's ``re``, the same pattern).

    >>> may_be_personal("2024-01-01T10:00:05+01:00"), may_be_personal("tel 0044 20 7946 0958")
    (False, True)
    """
    return _PREFILTER.search(text) is not None


def may_hold_personal_data(texts: Iterable[bytes]) -> bool:
    r"""False only when no rule could change any of the JSON ``texts`` (UTF-8, as received,
    any layout). True when one holds ``@``, ``%40`` or a ``\u`` escape (which may hide any
    character), or a stretch of digits and joiners with a ``+`` and eight digits, nine
    digits and a joiner, or thirteen digits from 2 to 6: what an e-mail address, a phone
    number or a card number needs (``%2B`` counts as ``+``, ``%20`` as a space). Coarser than
    :data:`PREFILTER` and much quicker in Python: a few microseconds for a request's texts.

    >>> may_hold_personal_data([b'{"page":"/pay","ms":1704103205000,"at":"2026-11-01T10:00:05+01:00"}'])
    False
    >>> may_hold_personal_data([b'{"note":"call 06 12 34 56 78"}']), may_hold_personal_data([b'"\\u0040"'])
    (True, True)
    >>> may_hold_personal_data([b'{"card":"4111\\t1111\\t1111\\t1111","url":"?p=%2B4915112345678"}'])
    True
    """
    joined = b"\x00".join(texts)
    if b"@" in joined or b"%40" in joined or b"\\u" in joined:
        return True
    if b"000000000" not in joined.translate(_NUMBERS, _JOINERS):
        return False
    if b"%2" in joined:
        joined = joined.replace(b"%20", b" ").replace(b"%2B", b"+").replace(b"%2b", b"+")
    for m in _SPAN.finditer(joined):
        span = m.group()
        digits = len(span) - len(span.translate(None, _DIGITS))
        if ((digits >= 8 and b"+" in span) or (digits >= 9 and digits < len(span))
                or (digits >= 13 and span[:1] in b"23456")):
            return True
    return False
