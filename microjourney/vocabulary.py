"""The event vocabulary: the channels an event may come from, the fields of an event, and
how a member of its ``properties`` or ``context`` is named.

The lowest layer with errors: the workspace file (``spec``), the readers (``ingest``), the
store, the engine and the edges all speak it, and it imports nothing of the package
(docs/architecture.md, "Layers and gates"). How a reader carries rows and the range of
instants an event may carry are ingest's own (:mod:`microjourney.ingest.schema`).
"""

from __future__ import annotations

#: Channels an event may come from.
CHANNELS: tuple[str, ...] = ("web", "app", "chat", "voice", "agent", "email", "sms", "store", "other")

#: Assisted channels: a person talks to the company (used for escalation).
ASSISTED_CHANNELS: tuple[str, ...] = ("chat", "voice", "agent", "email")

#: Conversation channels: a person talks with an agent there, so an attempt begun in
#: one is itself a contact (an e-mail may be the company's own notice).
CONVERSATION_CHANNELS: tuple[str, ...] = ("chat", "voice", "agent")

#: Fields of an event, in store order. ``properties`` and ``context`` are JSON objects.
FIELDS: tuple[str, ...] = (
    "event_id",
    "timestamp",
    "event",
    "anonymous_id",
    "user_id",
    "channel",
    "session_id",
    "properties",
    "context",
)

#: Fields every event must have.
REQUIRED: tuple[str, ...] = ("timestamp", "event")
#: Where customer texts come from (a ``customer_text`` event's ``source``, docs/intents.md).
TEXT_SOURCES: tuple[str, ...] = ("search", "helpcentre", "chat", "agent_note", "email", "survey",
                                 "other")


def quote_ident(name: str) -> str:
    """A name (a file's column, a table) as a quoted SQL identifier, so that it can only ever
    be a name.

    >>> print(quote_ident('my col'), quote_ident('a"b'))
    "my col" "a""b"
    """
    return '"' + name.replace('"', '""') + '"'


def json_pointer(*keys: str) -> str:
    """The JSON Pointer (RFC 6901) of a member of ``properties`` or ``context``: ``/key`` (or
    ``/key/inner`` for nested ones), ``~1`` for ``/`` and ``~0`` for ``~``. Members reach SQL
    only so, as a string literal or a bound value, so any key works: quotes, backslashes,
    newlines, ``$.a[0]``, even the empty key (sqlglot writes ``$."key"`` paths back
    unescaped).

    >>> json_pointer("org:resource"), json_pointer("a/b~c"), json_pointer("traits", "e-mail")
    ('/org:resource', '/a~1b~0c', '/traits/e-mail')
    """
    return "".join("/" + key.replace("~", "~0").replace("/", "~1") for key in keys)


__all__ = ["ASSISTED_CHANNELS", "CHANNELS", "CONVERSATION_CHANNELS", "FIELDS", "REQUIRED", "TEXT_SOURCES",
           "json_pointer", "quote_ident"]
