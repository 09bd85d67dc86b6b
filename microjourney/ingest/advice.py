"""When every row of a file is rejected, the likeliest fix.

A file whose rows are all rejected is nearly always read with a wrong option, not full of
bad data: times written without an offset, the event name or the person in a column of
another name, channels named the source system's way. :class:`Rejections` counts a file's
invalid rows by the kind of their reason (:func:`kind`) as the writer hands them over, and
:meth:`Rejections.advice` names the commonest kind with the option that fixes it.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .lines import Reject
from .schema import CHANNELS, FIELDS, ROW

#: Channels as source systems often name them, and the channel each most likely is (the
#: target the advice suggests for ``--value channel:FROM=TO``; ``other`` when none fits).
CHANNEL_GUESSES = {
    "web": ("desktop", "browser", "website", "site", "www", "online", "mobile_web", "mweb", "pc"),
    "app": ("ios", "android", "mobile", "mobile_app", "application", "native"),
    "voice": ("phone", "call", "telephone", "tel", "ivr", "callcenter", "call_center"),
    "email": ("mail", "e-mail", "e_mail"),
    "sms": ("text", "text_message", "txt"),
    "store": ("shop", "branch", "retail", "in_store", "instore", "pos", "counter"),
    "chat": ("chatbot", "livechat", "live_chat", "messenger", "whatsapp", "webchat"),
    "agent": ("advisor", "adviser", "assisted", "staff", "clerk"),
}
_GUESS = {name: channel for channel, names in CHANNEL_GUESSES.items() for name in names}
#: How many unknown channel values the advice maps, commonest first.
_CHANNELS_SHOWN = 3
_COLUMNS_SHOWN = 12


def kind(name: str | None, reason: str) -> str:
    """The kind of a rejection, from the field at fault and the reason the writer gave
    (:mod:`microjourney.store.judge`): ``naive``, ``no-timestamp``, ``not-iso``, ``offset``,
    ``range``, ``no-event``, ``no-id``, ``channel``, ``json``, or ``unreadable`` (a line a
    reader could not read as a row)."""
    if name == "timestamp":
        if reason == "missing timestamp":
            return "no-timestamp"
        if "has no time zone offset" in reason:
            return "naive"
        if "is not an ISO 8601" in reason:
            return "not-iso"
        return "offset" if "UTC offset beyond" in reason else "range"
    return {"event": "no-event", "user_id": "no-id", "channel": "channel",
            "properties": "json", "context": "json"}.get(name or "", "unreadable")


def unknown_channel(reason: str) -> str | None:
    """The value of an ``unknown channel VALUE; allowed: ...`` reason."""
    head, sep, _ = reason.rpartition("; allowed: ")
    return head.removeprefix("unknown channel ") if sep and head.startswith("unknown channel ") else None


def guess_channel(value: str) -> str:
    """The allowed channel ``value`` most likely means (``other`` when none fits)."""
    key = value.strip().lower().replace(" ", "_")
    return key if key in CHANNELS else _GUESS.get(key, "other")


@dataclass
class Rejections:
    """A file's invalid rows, counted by :func:`kind` (newly quarantined or already)."""

    rows: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    #: The first reason of each kind, as an example.
    first: dict[str, str] = field(default_factory=dict)
    #: Unknown channel values and how many rows had each.
    channels: Counter[str] = field(default_factory=Counter)
    #: The file's columns that are not event fields (when the reader knows them): where a
    #: missing field may be found.
    columns: list[str] = field(default_factory=list)
    #: The event fields the file has a column for (None: not known yet).
    fields: set[str] | None = None

    def add(self, rejects: Iterable[Reject | tuple[int, str | None, str]],
            columns: Iterable[str] | None = None) -> None:
        """Count ``rejects``: a reader's :class:`Reject` records or the writer's (row, field,
        reason); ``columns``: the batch's columns (after ``--map``), remembered the first time."""
        if columns is not None and self.fields is None:
            names = list(columns)
            self.fields = set(names) & set(FIELDS)
            self.columns = [c for c in names if c not in FIELDS and c != ROW
                            and not c.startswith("source:")]  # displaced by --map
        for reject in rejects:
            name, reason = (reject.field, reject.reason) if isinstance(reject, Reject) else reject[1:]
            found = kind(name, reason)
            self.rows += 1
            self.kinds[found] += 1
            self.first.setdefault(found, reason)
            if found == "channel" and (value := unknown_channel(reason)) is not None:
                self.channels[value] += 1

    def advice(self, *, kept: int) -> str | None:
        """When no row of the file was kept (``kept``: rows accepted, duplicate or withheld)
        and some were invalid: how many, the commonest reason and the likeliest fix."""
        if kept or not self.rows:
            return None
        top, count = self.kinds.most_common(1)[0]
        share = "all of them" if count == self.rows else f"{count:,} of them"
        return (f"all {self.rows:,} rows were rejected, {share} for reasons like this one: "
                f"{self.first[top]}. Likeliest fix: {self._fix(top)}")

    def _missing(self) -> list[str]:
        """The required fields the file has no column for (empty when its columns are not known)."""
        if self.fields is None:
            return []
        missing = [name for name in ("event", "timestamp") if name not in self.fields]
        return missing + ([] if self.fields & {"user_id", "anonymous_id"} else ["user_id"])

    def _fix(self, top: str) -> str:
        columns = ""
        if self.columns:
            shown = self.columns[:_COLUMNS_SHOWN]
            more = f" and {len(self.columns) - len(shown)} more" if len(self.columns) > len(shown) else ""
            columns = f" (columns that are not event fields: {', '.join(shown)}{more})"
        if top == "naive":
            return ("the timestamps have no time zone offset: say which zone they were written in, "
                    "e.g. --timezone Europe/Paris (or --timezone UTC)")
        if top in ("no-event", "no-id", "no-timestamp"):
            missing = self._missing() or [{"no-event": "event", "no-id": "user_id",
                                           "no-timestamp": "timestamp"}[top]]
            maps = " ".join(f"--map {name}=your_column" for name in missing)
            names = [("user_id (or anonymous_id)" if m == "user_id" else m) for m in missing]
            listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
            which = "column holds" if len(names) == 1 else "columns hold"
            return f"say which {which} the {listed}: {maps}{columns}"
        if top == "channel":
            values = [v for v, _ in self.channels.most_common(_CHANNELS_SHOWN)]
            options = " ".join(f"--value {shlex.quote(f'channel:{v}={guess_channel(v)}')}" for v in values)
            return (f"name the channels as microjourney does ({', '.join(CHANNELS)}), e.g. {options}"
                    if values else f"give one of the channels {', '.join(CHANNELS)}")
        if top == "not-iso":
            return ("write the timestamps as ISO 8601 date-times with an offset "
                    "(2026-09-01T10:00:00+02:00) before ingesting; --map timestamp=your_column if "
                    f"another column holds them{columns}")
        if top == "range":
            return ("check the clock of the source; if its clock runs ahead, raise ingest.future_tolerance "
                    "in microjourney.yaml (a year before 1970 is usually a misread format)")
        if top == "offset":
            return "the offsets are beyond ±14:00: fix them at the source"
        if top == "json":
            return "give properties and context as JSON objects ({\"key\": \"value\"}), or leave them empty"
        return ("the lines could not be read as rows: check the format (--format csv, jsonl, parquet or "
                "xes) and that the file is UTF-8 text")
