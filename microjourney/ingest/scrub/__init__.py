"""Scrubbing personal data from free text on the way in (the rule set of docs/privacy.md).

Three kinds of personal data are replaced, wherever they occur in a text, in time linear in
the text's length (no pattern is tried again from inside a stretch it has read):

* an **e-mail address** becomes ``[email]`` (:mod:`.mail`): a local part (letters, digits,
  ``. _ % + - '``), ``@`` or its URL encoding ``%40``, dot-separated domain labels and a
  top-level domain of two or more letters;
* a **card number** becomes ``[card]`` (:mod:`.number`): 13 to 19 digits starting with 2 to
  6 and passing the Luhn check, joined by nothing, spaces, dashes, tabs or no-break spaces;
* a **phone number** becomes ``[phone]``: ``+`` (``%2B``) or ``00`` and 8 to 15 digits in any
  grouping; the North American 3-3-4; an area code in parentheses; or a national number with a
  trunk ``0`` in groups joined by one kind of separator.

Numbers are judged as whole runs: a run glued to a word, an id, a path, a decimal, a version
or a time is left as it is, so ids, UUIDs, dates, IP addresses and amounts stay. The store
runs the rules only on the texts :data:`PREFILTER` (an RE2 pattern, for DuckDB's
``regexp_matches``) finds; the collector asks :func:`may_hold_personal_data` first.

>>> scrub_text("Mail jane.doe@example.co.uk or call +44 20 7946 0958")
'Mail [email] or call [phone]'
>>> scrub_text("card 4111 1111 1111 1111, order ORD-2024-000123 at 2024-01-01T10:00:05+01:00")
'card [card], order ORD-2024-000123 at 2024-01-01T10:00:05+01:00'
"""

from .mail import EMAIL_TOKEN, scrub_emails
from .number import CARD_TOKEN, PHONE_TOKEN, luhn_ok, scrub_numbers
from .prefilter import PREFILTER, may_hold_personal_data
from .text import scrub_text, scrub_texts
from .walk import scrub_json, scrub_value

__all__ = [
    "CARD_TOKEN",
    "EMAIL_TOKEN",
    "PHONE_TOKEN",
    "PREFILTER",
    "luhn_ok",
    "may_hold_personal_data",
    "scrub_emails",
    "scrub_json",
    "scrub_numbers",
    "scrub_text",
    "scrub_texts",
    "scrub_value",
]
