"""E-mail addresses in free text, found in time linear in the text's length.

An address is a local part (letters, digits, ``. _ % + - '`` and ``’``), ``@`` or its URL
encoding ``%40``, then one or more dot-separated domain labels and a top-level domain of two
or more letters, followed by no word character.

Why not one regular expression: ``[\\w.%+-]+(?:@|%40)domain`` is tried from every start
position, and each try scans to the end of the word, so a long word without a valid address
costs the square of its length (``'%40a.' * 3000`` took seconds). Here each *word* (a maximal
stretch of the characters an address is made of) that holds ``@`` or ``%40`` is found once;
inside it, each ``@``/``%40`` looks left only as far as the previous ``@`` or the end of the
last address, and right only as far as the next character a domain cannot hold, so every
character is looked at a bounded number of times.

>>> scrub_emails("Mail o'brien@example.ie or john%40example.com, not lodash@4.17.21")
'Mail [email] or [email], not lodash@4.17.21'
"""

from __future__ import annotations

import re

EMAIL_TOKEN = "[email]"

# The characters of a local part; a word is a maximal stretch of them and "@".
_LOCAL = r"\w.%+'’-"
#: A word holding ``@`` or ``%40``. Only a word's first character passes the lookbehind, so
#: the lookahead runs once per word: linear in the text.
_WORD = re.compile(rf"(?<![@{_LOCAL}])(?=[{_LOCAL}]*(?:@|%40))[@{_LOCAL}]+")
_AT = re.compile(r"@|%40")
#: A domain at a given position: labels (a letter or digit at each end), dots, a TLD of two or
#: more letters. It cannot run past "@" or "%", so the stretches it reads do not overlap.
_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?!\w)")
# Quotes open a quotation more often than a local part.
_QUOTES = re.compile(r"['’]*")


def _scrub_word(m: re.Match[str]) -> str:
    word = m.group()
    parts: list[str] = []
    done = 0  # the end of the last address replaced
    floor = 0  # where the next local part may start (after the quotes there)
    for at in _AT.finditer(word):
        domain = _DOMAIN.match(word, at.end())
        if domain:
            local = _QUOTES.match(word, floor).end()
            if local < at.start():
                parts += (word[done:local], EMAIL_TOKEN)
                done = floor = domain.end()
                continue
        if at.group() == "@":  # "@" cannot be in a local part; "%40" can
            floor = at.end()
    if not parts:
        return word
    parts.append(word[done:])
    return "".join(parts)


def scrub_emails(text: str) -> str:
    """``text`` with every e-mail address replaced by ``[email]``.

    >>> scrub_emails("'jane.doe@example.co.uk' <a@b.c> user@localhost @handle x@y.org.")
    "'[email]' <a@b.c> user@localhost @handle [email]."
    """
    if "@" not in text and "%40" not in text:
        return text
    return _WORD.sub(_scrub_word, text)
