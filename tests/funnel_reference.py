"""A plain-Python reference for funnels, written from the documented semantics.

This is deliberately naive (it follows every try event by event) and shares no code
with :mod:`microjourney.engine.funnel`; the tests compare the two.

Semantics (the engine's module docstring, made precise):

* A person's events are ordered by (time, smallest funnel step the event matches —
  events matching no step come after funnel events at the same instant —, ingest
  order). "After" below means later in that order.
* ordered: every event matching step 1 begins a try. For step k the try takes the
  first event after its step k-1 event that matches step k, if that event's time
  minus the try's start is at most the window (inclusive); otherwise the try stops.
  Positions strictly increase, so one event never fills two steps.
* strict: as ordered, but step k must be the person's very next event (funnel or
  not); any other event in between stops the try.
* unordered: every event matching any step begins a try; the try reaches the number
  of distinct steps that have a matching event at or after its first event within
  the window. Times: the k-th distinct step's first time minus the (k-1)-th's (equal
  times ordered by step index).
* per-step windows (``step_windows_ms[k]``, None for none; the start has none): on
  top of the window, a step comes at most its window after the step before it in
  the try, inclusive; the try stops at the first step that comes later. ordered and
  strict: step k after the try's step k-1 event (the one the try took, as above).
  unordered: the try's steps in the order done (time, then step index), each after
  the one just before it in that order; the try's first step has none before it.
* per person: the try reaching the most steps (the earliest such try) is the unit;
  per attempt: every try is a unit. ``counts[k]`` = units reaching at least k+1
  steps; ``medians[k]`` = median over those units of the time from step k to step
  k+1 (1-based), the mean of the two middle values for an even count.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

ORDERS = ("ordered", "strict", "unordered")
PER = ("person", "attempt")


@dataclass(frozen=True)
class Event:
    """One event of a person: ``steps`` are the funnel step indices (0-based) it matches.

    An event with no steps is a non-funnel event; it only matters to strict funnels.
    ``index`` is the ingest (file) order.
    """

    person: str
    t_ms: int
    index: int
    steps: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Try:
    person: str
    start: int  # position of the first event in the person's ordered events
    times: tuple[int, ...]  # time (ms) of each step reached, in the order reached

    @property
    def reached(self) -> int:
        return len(self.times)

    @property
    def gaps(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.times, self.times[1:], strict=False))


@dataclass(frozen=True)
class FunnelResult:
    counts: tuple[int, ...]
    medians_ms: tuple[float | None, ...]  # index 0 is always None


def ordered_events(events: Iterable[Event], n_steps: int) -> list[Event]:
    """One person's events in funnel order."""
    return sorted(events, key=lambda e: (e.t_ms, min(e.steps) if e.steps else n_steps, e.index))


Windows = Sequence[int | None]


def _late(t: int, before: int, step: int, within: Windows) -> bool:
    """Step ``step`` at ``t`` is later than its own window after ``before``."""
    w = within[step] if within else None
    return w is not None and t - before > w


def _ordered_try(evs: Sequence[Event], i: int, n: int, window_ms: int,
                 within: Windows) -> tuple[int, ...]:
    t0 = evs[i].t_ms
    times = [t0]
    cur = i
    for k in range(1, n):
        nxt = next((j for j in range(cur + 1, len(evs)) if k in evs[j].steps), None)
        if (nxt is None or evs[nxt].t_ms - t0 > window_ms
                or _late(evs[nxt].t_ms, times[-1], k, within)):
            break
        times.append(evs[nxt].t_ms)
        cur = nxt
    return tuple(times)


def _strict_try(evs: Sequence[Event], i: int, n: int, window_ms: int,
                within: Windows) -> tuple[int, ...]:
    t0 = evs[i].t_ms
    times = [t0]
    for k in range(1, n):
        j = i + k
        if (j >= len(evs) or k not in evs[j].steps or evs[j].t_ms - t0 > window_ms
                or _late(evs[j].t_ms, times[-1], k, within)):
            break
        times.append(evs[j].t_ms)
    return tuple(times)


def _unordered_try(evs: Sequence[Event], i: int, n: int, window_ms: int,
                   within: Windows) -> tuple[int, ...]:
    t0 = evs[i].t_ms
    first: dict[int, int] = {}
    for e in evs[i:]:
        if e.t_ms - t0 > window_ms:
            continue
        for s in e.steps:
            if s < n and s not in first:
                first[s] = e.t_ms
    times: list[int] = []
    for t, s in sorted((t, s) for s, t in first.items()):
        if times and _late(t, times[-1], s, within):
            break
        times.append(t)
    return tuple(times)


def tries(events: Iterable[Event], n_steps: int, order: str, window_ms: int,
          step_windows_ms: Windows = ()) -> list[Try]:
    """Every try of every person, persons sorted, tries in order of their first event."""
    if order not in ORDERS:
        raise ValueError(order)
    if step_windows_ms and (len(step_windows_ms) != n_steps or step_windows_ms[0] is not None):
        raise ValueError(step_windows_ms)
    w = step_windows_ms
    by_person: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_person[e.person].append(e)
    out: list[Try] = []
    for person in sorted(by_person):
        evs = by_person[person]
        if order != "strict":  # non-funnel events matter only to strict funnels
            evs = [e for e in evs if e.steps]
        evs = ordered_events(evs, n_steps)
        for i, e in enumerate(evs):
            if order == "ordered" and 0 in e.steps:
                out.append(Try(person, i, _ordered_try(evs, i, n_steps, window_ms, w)))
            elif order == "strict" and 0 in e.steps:
                out.append(Try(person, i, _strict_try(evs, i, n_steps, window_ms, w)))
            elif order == "unordered" and e.steps:
                out.append(Try(person, i, _unordered_try(evs, i, n_steps, window_ms, w)))
    return out


def units(all_tries: Iterable[Try], per: str) -> list[Try]:
    """The counted units: every try, or per person the furthest (earliest of equals)."""
    if per not in PER:
        raise ValueError(per)
    all_tries = list(all_tries)
    if per == "attempt":
        return all_tries
    best: dict[str, Try] = {}
    for tr in all_tries:
        cur = best.get(tr.person)
        if cur is None or (tr.reached, -tr.start) > (cur.reached, -cur.start):
            best[tr.person] = tr
    return [best[p] for p in sorted(best)]


def funnel(events: Iterable[Event], n_steps: int, order: str = "ordered",
           window_ms: int = 1_800_000, per: str = "person",
           step_windows_ms: Windows = ()) -> FunnelResult:
    """Counts and median times (ms) from the previous step, per step."""
    us = units(tries(events, n_steps, order, window_ms, step_windows_ms), per)
    counts = tuple(sum(1 for u in us if u.reached >= k + 1) for k in range(n_steps))
    medians: list[float | None] = [None]
    for k in range(1, n_steps):
        gaps = [u.gaps[k - 1] for u in us if u.reached > k]
        medians.append(float(statistics.median(gaps)) if gaps else None)
    return FunnelResult(counts, tuple(medians))


def ref_counts(events: list[tuple[str, float, str]], steps: list[str], order: str = "ordered",
               window_s: float = 3600, per: str = "person",
               within_s: tuple[float | None, ...] = ()):
    """The reference on (person, t seconds, event name) triples in file order."""
    evs = [Event(p, round(t * 1000), i, frozenset(k for k, s in enumerate(steps) if s == name))
           for i, (p, t, name) in enumerate(events)]
    within = tuple(None if w is None else round(w * 1000) for w in within_s)
    r = funnel(evs, len(steps), order, round(window_s * 1000), per, within)
    return list(r.counts), [None if m is None else m / 1000 for m in r.medians_ms]
