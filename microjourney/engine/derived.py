"""The derived tables: what each is computed from, how it is refreshed, and whether it
holds personal data.

The workspace materialises these from the stored events and identify/alias calls; the
analyses read them instead of the events. Each is declared here once, and the code that
keeps them (:mod:`microjourney.workspace_refresh`) and the erasure of a person
(:meth:`microjourney.workspace.Workspace.forget`) take their lists from these
declarations: a new table that holds personal data and names its ``key`` is erased
without touching the erasure code.

How a table is refreshed (``refresh``):

* ``identity`` — rows replaced per identity component (the identifiers linked together,
  :mod:`microjourney.identity`) that new events or calls touched;
* ``person`` — rows replaced per person, for the persons the new data touched (their
  new events, a change of who is who, an open attempt whose timeout has passed); per
  moment as well when one moment's definition changed;
* ``whole`` — recomputed from other derived tables at each refresh (small summaries);
* ``view`` — a view over other derived tables, never stored: what spans every attempt
  (the judged waits, the friction summaries) is computed when read, so that a refresh's
  work grows with what changed, not with the store.

``key``: the column naming the person (or identity component) a row belongs to; an
erasure deletes the rows of the erased person by it. A personal table must have one
(``tests/test_refresh.py`` holds every declaration to that).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DERIVED", "DerivedTable", "derived", "erasable"]


@dataclass(frozen=True)
class DerivedTable:
    name: str
    inputs: tuple[str, ...]
    refresh: str
    personal: bool
    key: str | None
    doc: str


#: Every derived table, in the order a refresh computes them.
DERIVED: tuple[DerivedTable, ...] = (
    DerivedTable("sightings", ("events", "identities"), "identity", True, "component",
                 "the distinct identifier combinations seen on events and calls, first time"),
    DerivedTable("persons", ("sightings",), "identity", True, "person",
                 "every identifier with its person and identity component"),
    DerivedTable("timeline", ("events", "persons"), "person", True, "person",
                 "every event in person order, with its neighbours"),
    DerivedTable("person_last", ("timeline",), "person", True, "person",
                 "each person's last timeline row: where their next events follow on"),
    DerivedTable("tagged", ("events", "persons"), "person", True, "person",
                 "the events playing a moment role, cut into attempts"),
    DerivedTable("tag_last", ("tagged",), "person", True, "person",
                 "per (person, moment): the last tagged row and where its cut began"),
    DerivedTable("attempts", ("tagged", "events"), "person", True, "person",
                 "one row per attempt, with escalation and repeat contact"),
    DerivedTable("funnel_tries", ("tagged",), "person", True, "person",
                 "every try of each moment's own funnel: how far it reached, the time of each step"),
    DerivedTable("friction_rows", ("timeline", "tagged", "attempts", "events"), "person", True,
                 "person", "frictions of the detectors that judge an attempt by itself"),
    DerivedTable("friction_attempt_rows", ("timeline", "tagged", "attempts"), "person", True,
                 "person", "per (attempt, kind) of those detectors: count, seconds, step"),
    DerivedTable("friction_waits", ("timeline", "tagged", "attempts", "events"), "person", True,
                 "person", "candidates of the detectors that compare with a moment's baseline"),
    DerivedTable("friction_baselines", ("friction_waits",), "whole", False, None,
                 "the baseline of each (moment, step) over every attempt"),
    DerivedTable("frictions", ("friction_rows", "friction_waits", "friction_baselines"), "view",
                 True, None, "every friction row (docs/frictions.md)"),
    DerivedTable("friction_attempts", ("friction_attempt_rows", "friction_waits",
                                       "friction_baselines"), "view", True, None,
                 "per (attempt, kind): frictions, seconds lost, first step"),
    DerivedTable("friction_kinds", ("friction_attempts", "attempts"), "view", False, None,
                 "sufficient statistics per (moment, kind, step)"),
    DerivedTable("friction_moments", ("friction_attempts", "attempts"), "view", False, None,
                 "sufficient statistics per moment"),
)


def derived(name: str) -> DerivedTable:
    """The declaration of the derived table ``name``."""
    for table in DERIVED:
        if table.name == name:
            return table
    raise KeyError(name)


def erasable() -> dict[str, str]:
    """Stored tables holding personal data, each with the column naming whose rows they
    are: what an erasure deletes from."""
    return {t.name: t.key for t in DERIVED
            if t.personal and t.refresh != "view" and t.key is not None}
