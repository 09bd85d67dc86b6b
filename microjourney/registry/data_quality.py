"""Data quality, for whoever has to trust the numbers: what each source delivered per UTC
day (accepted, duplicate, rejected, withheld for consent), the commonest quarantine
reasons, events that arrived late or were stamped in the future, and how many ids were
merged into persons by events, by identify/alias calls and by shared keys.

Arrivals, lateness and the quarantine are read from the workspace's own store, whatever
engine runs the analyses (as ``quarantine`` does): the table ``batches`` says per source and
minute what arrived and which ``seq`` range the accepted events got
(:mod:`microjourney.store.batches`), so an event's arrival is the minute of the range that
holds its ``seq``. The identity counts come from the engine's events and the stored calls
(:mod:`microjourney.engine.merges`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import pandas as pd
from ibis.expr.types import Table
from pydantic import Field, field_validator

from ..engine.merges import identity_merges
from ..engine.runtime import Store
from ..spec import parse_duration
from .base import Analysis, Column, Notice, Output, Params, View

if TYPE_CHECKING:
    from ..workspace import Workspace

#: The collector's source (``server.storing.SOURCE``); the rows it could not take apart are
#: quarantined as ``http <time of the commit>`` and count as the collector's.
COLLECTOR = "http"
_COMMIT = rf"^{COLLECTOR} [0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T"

#: Reasons as they are counted together: the values in them (line numbers, timestamps, a
#: channel, quoted text) replaced by "…" and details in brackets left out, in this order.
REASON_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"; the raw row \(.*$", ""),
    (r"^line [0-9]+: ", ""),
    (r"^[0-9,]+ bytes long", "… bytes long"),
    (r"^timestamp .*? (is not an ISO|has no time zone|has a UTC offset|is out of range|is outside 1970)",
     r"timestamp … \1"),
    (r"^timestamp .*?: the instant", "timestamp …: the instant"),
    (r"^unknown channel .*?; allowed", "unknown channel …; allowed"),
    (r" \([^()]*\)", ""),  # twice: a detail in brackets may hold one
    (r" \([^()]*\)", ""),
    (r"'[^']*'", "…"),
)

RECEIVED = "accepted + duplicates + rejected + withheld"

DAYS = (
    Column("day", "day", "text", "the UTC day the rows arrived (a file: the day its ingest "
           "started)", keep=0),
    Column("source", "source", "text", "the file's name, or `http` for the collector", keep=0),
    Column("received", "received", "count", f"rows and calls received: {RECEIVED}", keep=0),
    Column("accepted", "accepted", "count", "stored (the collector: events and identify/alias "
           "calls)", keep=0),
    Column("duplicates", "duplicates", "count", "not stored again: their id was stored or came "
           "earlier in the same batch", keep=1),
    Column("rejected", "rejected", "count", "quarantined (a row quarantined by an earlier ingest "
           "of the same file is not counted again)", keep=0),
    Column("withheld", "withheld", "count", "not stored nor quarantined for lack of analytics "
           "consent (docs/privacy.md)", keep=1),
)
TIMING = (
    Column("source", "source", keep=0),
    Column("events", "events", "count", "events stored", keep=0),
    Column("late", "late", "count", "events stamped more than --late before the minute they "
           "arrived in", keep=0),
    Column("late_rate", "late share", "rate", "late ÷ events with a known arrival (events − "
           "arrival unknown)", keep=0),
    Column("arrival_unknown", "arrival unknown", "count", "events stored before arrivals were "
           "recorded (schema version 4): neither late nor on time", keep=2),
    Column("future", "future", "count", "rows quarantined for a timestamp after their arrival "
           "(beyond ingest.future_tolerance)", keep=1),
)
REASONS = (
    Column("source", "source", keep=0),
    Column("field", "field", "text", "the field at fault (none: the row could not be read)",
           keep=1),
    Column("reason", "reason", "text", "why, with the values in it (line numbers, timestamps, "
           "names) replaced by … and details in brackets left out", keep=0),
    Column("rows", "rows", "count", "rows quarantined for it", keep=0),
)
IDENTITY = (
    Column("ids", "ids", "count", "user and anonymous ids, as they link (trimmed)", keep=0),
    Column("persons", "persons", "count", "persons the ids form (docs/identity.md)", keep=0),
    Column("persons_with_several_ids", "persons with several ids", "count", "persons holding "
           "more than one id", keep=0),
    Column("merged_by_events", "merged on events", "count", "ids joined to another id's person "
           "by events carrying both an anonymous and a user id", keep=1),
    Column("merged_by_calls", "merged by calls", "count", "ids joined by identify and alias "
           "calls, beyond what events join (net: a call that makes an id a user id can split it "
           "off)", keep=0),
    Column("merged_by_keys", "merged by keys", "count", "ids joined by shared key values "
           "(identity.keys), beyond events and calls", keep=0),
    Column("key_values", "key values", "count", "distinct values of the shared keys", keep=2),
)


class DataQualityParams(Params):
    late: str = Field("1d", description="An event is late when stamped more than this before "
                      "its arrival, e.g. 12h or 7d.")
    source: str | None = Field(None, description="Only this source (a file name, or `http` for "
                               "the collector); the identity counts are always the workspace's.")

    @field_validator("late")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


def compute(ws: Workspace, p: DataQualityParams) -> Output:
    store = ibis.duckdb.from_connection(ws.con)
    quarantine = store.table("quarantine")
    quarantine = quarantine.mutate(source=ibis.ifelse(quarantine.source.re_search(_COMMIT),
                                                      COLLECTOR, quarantine.source))
    batches, events = store.table("batches"), store.table("events")
    if p.source is not None:
        quarantine = quarantine.filter(quarantine.source == p.source)
        batches, events = batches.filter(batches.source == p.source), events.filter(events.source == p.source)
    timing = _timing(events, batches, quarantine, parse_duration(p.late))
    notes = [Notice("arrival-unknown", f"{r['source']}: {r['arrival_unknown']:,} events were "
                    "stored before arrivals were recorded; they are neither late nor on time",
                    {"source": r["source"]})
             for r in timing.to_dict("records") if r["arrival_unknown"]]
    if not isinstance(ws.run, Store):
        notes.append(Notice("store-only", "arrivals, lateness and the quarantine are the store's; "
                            "this workspace's analyses read a lake (engine.lake)"))
    merges = identity_merges(ws.run.events(), store.table("identities"), ws.spec.identity.keys)
    return Output({"days": _days(batches), "timing": timing, "reasons": _reasons(quarantine),
                   "identity": pd.DataFrame([merges])}, notes)


def _days(batches: Table) -> pd.DataFrame:
    b = batches.mutate(day=batches.minute.strftime("%Y-%m-%d"))
    days = b.group_by(["day", "source"]).aggregate(
        received=(b.accepted + b.duplicates + b.rejected + b.withheld).sum(),
        accepted=b.accepted.sum(), duplicates=b.duplicates.sum(), rejected=b.rejected.sum(),
        withheld=b.withheld.sum())
    out: pd.DataFrame = days.order_by([days.day.desc(), days.received.desc(), "source"]).to_pandas()
    return out


def _timing(events: Table, batches: Table, quarantine: Table, late_s: float) -> pd.DataFrame:
    """Per source: events, late, late share, arrival unknown, future (see :data:`TIMING`)."""
    ranges = batches.filter(batches.first_seq.notnull()).select(
        "minute", "first_seq", "last_seq", range_source="source")
    # The range with the largest first seq at or below the event's; it holds the event
    # unless the event's seq is past its end (then its arrival is unknown).
    j = events.asof_join(ranges, on=events.seq >= ranges.first_seq,
                         predicates=[events.source == ranges.range_source])
    known = j.seq <= j.last_seq
    late = known & (j.timestamp < j.minute - ibis.interval(milliseconds=round(late_s * 1000)))
    stored: pd.DataFrame = j.group_by("source").aggregate(events=j.count(), known=j.count(where=known),
                                            late=j.count(where=late)).to_pandas()
    q = quarantine
    stamp = q.raw["timestamp"].str.try_cast("timestamp('UTC')")
    # The collector's calls say "after its arrival"; the writer's "out of range: ... to its
    # arrival plus ..." covers both ends of the range, so the timestamp is compared.
    ahead = (q.field == "timestamp") & (q.reason.contains("after its arrival")
                                         | (q.reason.contains("arrival") & (stamp > q.received_at)))
    flagged = q.filter(ahead)
    future: pd.DataFrame = flagged.group_by("source").aggregate(future=flagged.count()).to_pandas()
    out = stored.merge(future, on="source", how="outer")
    for c in ("events", "known", "late", "future"):
        out[c] = out[c].fillna(0).astype("int64")
    out["arrival_unknown"] = out["events"] - out["known"]
    out["late_rate"] = [late / n if n else None for late, n in zip(out["late"], out["known"], strict=True)]
    out = out.sort_values(["late", "future", "source"], ascending=[False, False, True])
    return out.loc[:, [c.name for c in TIMING]].reset_index(drop=True)


def _reasons(quarantine: Table, limit: int = 50) -> pd.DataFrame:
    """The commonest reasons per source and field (:data:`REASON_PATTERNS`)."""
    reason = quarantine.reason
    for pattern, to in REASON_PATTERNS:
        reason = reason.re_replace(pattern, to)
    q = quarantine.mutate(reason=reason)
    top = q.group_by(["source", "field", "reason"]).aggregate(rows=q.count())
    out: pd.DataFrame = top.order_by([top.rows.desc(), "source", "field", "reason"]).limit(limit).to_pandas()
    return out


ANALYSIS = Analysis(
    name="data-quality",
    title="Data quality",
    doc="What each source delivered per UTC day (accepted, duplicate, rejected, withheld for "
        "consent), the commonest quarantine reasons, late-arriving and future-stamped events, "
        "and how many ids events, identify/alias calls and shared keys merged into persons.",
    params=DataQualityParams,
    compute=compute,
    views=(View("days", "Arrivals per UTC day", DAYS, rows=14),
           View("timing", "Late and future events", TIMING),
           View("reasons", "Commonest quarantine reasons", REASONS, rows=10),
           View("identity", "Identity merges", IDENTITY)),
    engines=False,
)
