"""The rules on one free text: e-mail addresses first, then card and phone numbers."""

from __future__ import annotations

from collections.abc import Iterable

from .mail import scrub_emails
from .number import scrub_numbers
from .prefilter import may_be_personal


def scrub_text(text: str) -> str:
    """``text`` with e-mail addresses, phone numbers and card numbers replaced.

    >>> scrub_text("jürgen@müller.de, 5555-5555-5555-4444, (415) 555-2671, 06 12 34 56 78")
    '[email], [card], [phone], [phone]'
    >>> scrub_text("v5.2.1 lodash@4.17.21 192.168.1.20 4111111111111112 1704103205 2024-01-01 12.50")
    'v5.2.1 lodash@4.17.21 192.168.1.20 4111111111111112 1704103205 2024-01-01 12.50'
    """
    if not may_be_personal(text):  # most texts: one pass of the prefilter
        return text
    return scrub_numbers(scrub_emails(text))


def scrub_texts(texts: Iterable[str | None]) -> list[str | None]:
    """:func:`scrub_text` over many free texts (``None`` stays), e.g. survey responses.

    >>> scrub_texts(["Reach me at +33 6 12 34 56 78", None])
    ['Reach me at [phone]', None]
    """
    return [None if t is None else scrub_text(t) for t in texts]
