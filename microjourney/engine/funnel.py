"""Exact funnels (ordered, strict, unordered) as window functions and equality joins.

Semantics (those of PostHog, which users know):

* ordered: other events may occur between steps; each event fills at most one
  step; every step-1 event begins a new try; a person counts at the furthest step
  any try reached.
* strict: as ordered, but any other event of the person between two steps breaks
  the try.
* unordered: step k means k distinct steps done, in any order; every event of
  any step begins a try.

The window runs from the try's first step and its boundary is inclusive. Events
are ordered by time, then — for different steps at the same instant — by step
order, then by ingest order; so steps at the same instant convert in step order.
The time from the previous step is taken from the try that reached the person's
furthest step (the earliest such try).

Per-step windows (a step's ``within``, inclusive too) hold on top of the window, on
the sequence a try matched: ordered and strict, step k must come at most its window
after the try's step k-1 (the first event matching step k after it, as above; a
later repeat of step k-1 does not restart the clock, as a try keeps the first time
it reached each step); unordered, a step must come at most its window after the
step done just before it in the try (the distinct steps in order of first time), and
the step that begins the try has none before it. Either way the try stops at the
first step that comes too late: it reaches the steps before it.

How: each funnel event gets its position ``pos`` in that order; for each step k a
window function gives, at every event, the position of the next event matching
step k. A try is then followed step by step with one equality join per step on
(person, pos) — exact for any number of steps (unlike the running-minimum shortcut,
which miscounts funnels of four or more steps) and portable to every backend. The
joins form one flat chain and sums and unions over steps are balanced trees, so the
SQL stays shallow for the longest funnel a workspace allows (``spec.types.MAX_STEPS``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import ibis
from ibis.expr.types import Table

from .backend import epoch_ms

if TYPE_CHECKING:
    from ..spec.model import Moment, Workspace

T = TypeVar("T")
ORDERS = ("ordered", "strict", "unordered")
PER = ("person", "attempt")


@dataclass(frozen=True)
class FunnelQuery:
    """What to count. ``step_windows_ms``: empty (no per-step windows) or one entry per
    funnel step — None, or the most ms the step may come after the step before it
    (:func:`step_windows_ms` makes it from the steps' ``within``); the first is None."""

    n_steps: int
    order: str = "ordered"
    window_ms: int = 1_800_000
    per: str = "person"
    step_windows_ms: tuple[int | None, ...] = ()

    def __post_init__(self) -> None:
        w = self.step_windows_ms
        if w and len(w) != self.n_steps:
            raise ValueError(f"step_windows_ms has {len(w)} entries for a funnel of "
                             f"{self.n_steps} steps; give one per step, or none")
        if w and w[0] is not None:
            raise ValueError("step_windows_ms[0] must be None: the first step has no step before it")
        bad = [x for x in w if x is not None and (isinstance(x, bool) or not isinstance(x, int)
                                                 or x < 0)]
        if bad:
            raise ValueError(f"step_windows_ms holds whole milliseconds >= 0 or None, not {bad[0]!r}")

    def step_window(self, k: int) -> int | None:
        """Step k's own window in ms, or None."""
        return self.step_windows_ms[k] if self.step_windows_ms else None


def step_windows_ms(within_s: Iterable[float | None]) -> tuple[int | None, ...]:
    """Per-step windows in ms from each funnel step's ``within`` in seconds, rounded as
    the funnel's window is (``2.01s`` is 2010 ms, not 2009); all None gives ``()``.

    >>> step_windows_ms([None, 120.0, None, 2.01])
    (None, 120000, None, 2010)
    """
    out = tuple(None if s is None else round(s * 1000) for s in within_s)
    return out if any(x is not None for x in out) else ()


def _balanced(items: list[T], combine: Callable[[T, T], T]) -> T:
    """``items`` combined pairwise as a balanced tree: nested log2(n) deep, not n deep
    (a left-deep sum or union of 60 terms overflows the SQL generator's recursion)."""
    while len(items) > 1:
        pairs = [combine(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        items = pairs + items[len(items) - len(items) % 2:]
    return items[0]


def _funnel_events(tagged: Table, n: int) -> Table:
    """One row per event that matches any step, with a flag ``m{k}`` per step."""
    f = tagged.filter(tagged.step.notnull())
    return f.group_by(["person", "seq"]).aggregate(
        t_ms=f.t_ms.min(), min_step=f.step.min(),
        **{f"m{k}": (f.step == k).any() for k in range(n)},
    )


def _positions(t: Table) -> Table:
    w = ibis.window(group_by=t.person, order_by=[t.t_ms, t.min_step, t.seq])
    return t.mutate(pos=ibis.row_number().over(w))


def _follow(tries: Table, lookup: Table, q: FunnelQuery, strict: bool) -> Table:
    """Follow every try step by step; adds ``t{k}`` (time of step k, or NULL) and ``reached``.

    One flat chain of left joins, the join for step k keyed on what the join for step
    k-1 found: SQL one level deep whatever the number of steps (a join per step nested
    in the one before overflowed the SQL generator's recursion near 50 steps)."""
    n = q.n_steps
    chain = tries
    prev = None
    for k in range(1, n):
        cols = {"person": lookup.person, "pos": lookup.pos, "t": lookup.t_ms}
        if strict:
            cols["ok"] = lookup[f"m{k}"]
        elif k + 1 < n:
            cols["nxt"] = lookup[f"nxt{k + 1}"]
        link = lookup.select(**{f"l{k}_{c}": v for c, v in cols.items()})
        pos, t = link[f"l{k}_pos"], link[f"l{k}_t"]
        if strict:  # the very next event of the person, and it must match step k
            want = (tries.p0 if prev is None else prev[f"l{k - 1}_pos"]) + 1
        else:  # the next event matching step k after the step before
            want = tries.cand if prev is None else prev[f"l{k - 1}_nxt"]
        on = [tries.person == link[f"l{k}_person"], pos == want, t - tries.t0 <= q.window_ms]
        if strict:
            on.append(link[f"l{k}_ok"])
        if (within := q.step_window(k)) is not None:  # and soon enough after step k-1
            on.append(t - (tries.t0 if prev is None else prev[f"l{k - 1}_t"]) <= within)
        chain = chain.left_join(link, on)
        prev = link
    steps = {f"t{k}": chain[f"l{k}_t"] for k in range(1, n)}
    # A try stops at the first step it misses: reached is one more than its last step found.
    reached = ibis.cases(*((chain[f"l{k}_t"].notnull(), k + 1) for k in range(n - 1, 0, -1)),
                         else_=1) if n > 1 else ibis.literal(1)
    return chain.select(person=tries.person, p0=tries.p0, t0=tries.t0, s0=tries.s0, **steps,
                        reached=reached.cast("int64"))


def _ordered_tries(f: Table, q: FunnelQuery) -> Table:
    f = _positions(f)
    w = ibis.window(group_by=f.person, order_by=f.pos, rows=(1, None))
    lookup = f.mutate(**{f"nxt{k}": ibis.ifelse(f[f"m{k}"], f.pos, None).min().over(w)
                         for k in range(1, q.n_steps)})
    starts = lookup.filter(lookup.m0)
    tries = starts.select(person=starts.person, p0=starts.pos, t0=starts.t_ms, s0=starts.seq,
                          cand=starts.nxt1 if q.n_steps > 1 else ibis.null("int64"))
    return _follow(tries, lookup, q, strict=False)


def _strict_tries(f: Table, events: Table, q: FunnelQuery) -> Table:
    """Strict: positions count every event of the person, not only funnel events."""
    people = f.select("person").distinct()
    ev = events.semi_join(people, "person").select("person", "seq", t_ms=epoch_ms(events.timestamp))
    marks = f.select("person", "seq", "min_step", *(f"m{k}" for k in range(q.n_steps)))
    s = ev.left_join(marks, ["person", "seq"]).drop("person_right", "seq_right")
    s = s.mutate(min_step=s.min_step.fill_null(q.n_steps),
                 **{f"m{k}": s[f"m{k}"].fill_null(False) for k in range(q.n_steps)})
    s = _positions(s)
    starts = s.filter(s.m0)
    tries = starts.select(person=starts.person, p0=starts.pos, t0=starts.t_ms, s0=starts.seq,
                          cand=starts.pos + 1)
    return _follow(tries, s, q, strict=True)


def _unordered_tries(f: Table, q: FunnelQuery) -> Table:
    """Unordered: from each funnel event, the first time of each step within the window."""
    f = _positions(f)
    w = ibis.window(group_by=f.person, order_by=f.pos, rows=(0, None))
    n = q.n_steps
    t = f.mutate(**{f"n{j}": ibis.ifelse(f[f"m{j}"], f.t_ms, None).min().over(w) for j in range(n)})
    inside = {j: t[f"n{j}"].notnull() & (t[f"n{j}"] - t.t_ms <= q.window_ms) for j in range(n)}
    reached = _balanced([inside[j].cast("int64") for j in range(n)], operator.add)
    return t.select(person=t.person, p0=t.pos, t0=t.t_ms, reached=reached,
                    **{f"n{j}": ibis.ifelse(inside[j], t[f"n{j}"], None) for j in range(n)})


def _steps_done(tries: Table, n: int) -> Table:
    """Unordered tries long: a row per step a try did (``j``, at ``t``) with ``k``, its place
    in the order the try did them, (time, step), from 0, and ``gap``, ms since the one before."""
    long = _balanced([tries.select(person=tries.person, p0=tries.p0, j=ibis.literal(j),
                                   t=tries[f"n{j}"]) for j in range(n)], ibis.union)
    long = long.filter(long.t.notnull())
    w = ibis.window(group_by=[long.person, long.p0], order_by=[long.t, long.j])
    return long.mutate(k=ibis.row_number().over(w), gap=long.t - long.t.lag().over(w))


def _cut_late(done: Table, q: FunnelQuery) -> Table:
    """The steps each try did before the first that came later than its own window after
    the step done just before it (the try's first step has none before it)."""
    windows = [(j, w) for j in range(q.n_steps) if (w := q.step_window(j)) is not None]
    within = ibis.cases(*((done.j == j, w) for j, w in windows), else_=ibis.null("int64"))
    late = (done.gap > within).fill_null(False)  # no step before it, or no window of its own
    w = ibis.window(group_by=[done.person, done.p0])
    cut = done.mutate(cut=ibis.ifelse(late, done.k, None).min().over(w))
    return cut.filter(cut.cut.isnull() | (cut.k < cut.cut)).drop("cut")


def _unordered_within_stats(tries: Table, q: FunnelQuery) -> Table:
    """Unordered with per-step windows: :func:`funnel_stats` in one pass over the steps
    the tries kept (a row per step, so the long rows are built once, not per use)."""
    done = _cut_late(_steps_done(tries, q.n_steps), q)
    done = done.mutate(reached=done.k.count().over(ibis.window(group_by=[done.person, done.p0])))
    if q.per == "person":  # the try that reached furthest (the earliest of equals), as _best
        person = ibis.window(group_by=done.person)
        done = done.mutate(most=done.reached.max().over(person))
        done = done.mutate(best=ibis.ifelse(done.reached == done.most, done.p0, None)
                           .min().over(person))
        done = done.filter(done.p0 == done.best)
    unit = done.k == 0  # each unit's first step: one row per unit
    return done.aggregate(
        **{f"count{k}": (unit & (done.reached >= k + 1)).cast("int64").sum()
           for k in range(q.n_steps)},
        **{f"median{k}": done.gap.median(where=done.k == k) for k in range(1, q.n_steps)})


def _best(tries: Table) -> Table:
    """Per person, the try that reached furthest (the earliest of equals, by its start's
    position)."""
    w = ibis.window(group_by=tries.person, order_by=[tries.reached.desc(), tries.p0])
    return tries.filter(ibis.row_number().over(w) == 0)


def funnel_stats(tagged: Table, events: Table | None, q: FunnelQuery) -> Table:
    """One row: ``count{k}`` units reaching step k and ``median{k}`` ms from step k-1.

    ``events`` (all events with ``person``) is needed by strict funnels only."""
    if q.order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}")
    f = _funnel_events(tagged, q.n_steps)
    if q.order == "ordered":
        tries = _ordered_tries(f, q)
    elif q.order == "strict":
        if events is None:
            raise ValueError("a strict funnel needs the person's events")
        tries = _strict_tries(f, events, q)
    else:
        tries = _unordered_tries(f, q)
        if q.step_windows_ms:
            return _unordered_within_stats(tries, q)
    units = _best(tries) if q.per == "person" else tries
    counts = {f"count{k}": (units.reached >= k + 1).cast("int64").sum() for k in range(q.n_steps)}
    if q.order != "unordered":
        medians = {f"median{k}": (units[f"t{k}"] - (units[f"t{k - 1}"] if k > 1 else units.t0))
                   .median() for k in range(1, q.n_steps)}
        return units.aggregate(**counts, **medians)
    # Unordered: the k-th distinct step done, whatever it was; time from the one before.
    done = _steps_done(units, q.n_steps)
    med = done.aggregate(**{f"median{k}": done.gap.median(where=done.k == k)
                            for k in range(1, q.n_steps)})
    return units.aggregate(**counts).cross_join(med)


# -- a moment's own funnel, kept as a derived table ----------------------------------------


def moment_query(moment: Moment) -> FunnelQuery:
    """The funnel of ``moment`` as it is asked without options: ordered, per person, its
    timeout as the window, its steps' own windows."""
    return FunnelQuery(n_steps=len(moment.funnel), window_ms=round(moment.timeout * 1000),
                       step_windows_ms=step_windows_ms([m.within for m in moment.funnel]))


def kept_tries(tagged: Table, workspace: Workspace, moments: Iterable[str] | None = None) -> Table:
    """Every try of each moment's own funnel (:func:`moment_query`), a row each: ``moment``,
    ``person``, ``t0`` and ``s0`` (its first step's time and sequence number), ``reached``
    and ``gaps`` (ms from the step before, for steps 1 to n-1; NULL past ``reached``): what
    the derived table ``funnel_tries`` keeps, so that a moment's funnel is counted from it
    (:func:`kept_funnel_stats`) instead of following every try again.

    A try reads only its person's funnel events from its first step to the window's end,
    so the tries from a point in time on are made again from the rows from there on."""
    parts = []
    for name in sorted(workspace.moments if moments is None else moments):
        q = moment_query(workspace.moments[name])
        f = _funnel_events(tagged.filter(tagged.moment == name), q.n_steps)
        t = _ordered_tries(f, q)
        gaps = [t[f"t{k}"] - (t[f"t{k - 1}"] if k > 1 else t.t0) for k in range(1, q.n_steps)]
        parts.append(t.select(
            moment=ibis.literal(name), person=t.person, t0=t.t0, s0=t.s0.cast("int64"),
            reached=t.reached,
            gaps=ibis.array(gaps) if gaps else ibis.literal([], type="array<int64>")))
    return _balanced(parts, ibis.union)


def kept_funnel_stats(tries: Table, q: FunnelQuery) -> Table:
    """:func:`funnel_stats` of one moment's own funnel from its kept tries (``funnel_tries``
    of that moment; ordered, with the moment's windows)."""
    units = tries
    if q.per == "person":
        # :func:`_best` by one grouping instead of a sort by person: the earliest of equals
        # by its start's time and sequence number, which order a try's start as its
        # position does (a start event is never placed after another step's event).
        t = tries
        best = ibis.struct({"reached": t.reached, "t0": -t.t0, "s0": -t.s0})
        units = t.group_by("person").aggregate(reached=t.reached.max(), gaps=t.gaps.argmax(best))
    return units.aggregate(
        **{f"count{k}": (units.reached >= k + 1).cast("int64").sum() for k in range(q.n_steps)},
        **{f"median{k}": units.gaps[k - 1].median() for k in range(1, q.n_steps)})
