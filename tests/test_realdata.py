"""Real public event logs through the whole pipeline, checked against independent counts."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from datetime import datetime

import pytest

from .helpers import REALDATA

pytestmark = pytest.mark.skipif(not REALDATA.is_dir(),
                                reason=f"real data folder {REALDATA} is absent")

LOAN = """\
name: BPI Challenge 2012 loan applications
journeys:
  - name: loan
    moments:
      - name: application
        start: {event: A_SUBMITTED}
        steps:
          - {event: A_PREACCEPTED}
          - {event: A_ACCEPTED}
          - {event: A_FINALIZED}
        complete: {event: A_APPROVED}
        fail: {event: [A_DECLINED, A_CANCELLED]}
        timeout: 365d
"""

_TRACE = re.compile(r"<trace>(.*?)</trace>", re.S)
_EVENT = re.compile(r"<event>(.*?)</event>", re.S)
_CASE = re.compile(r'<string key="concept:name" value="([^"]*)"')
_NAME = re.compile(r'<string key="concept:name" value="([^"]*)"')
_TIME = re.compile(r'<date key="time:timestamp" value="([^"]*)"')


def parse_log(path) -> dict[str, list[tuple[datetime, int, str]]]:
    """Plain-Python parse: case -> [(time, file order, activity)], independent of the product."""
    text = gzip.open(path, "rt", encoding="utf-8").read()
    cases: dict[str, list[tuple[datetime, int, str]]] = {}
    order = 0
    for trace in _TRACE.findall(text):
        head = trace.split("<event>", 1)[0]
        case = _CASE.search(head).group(1)
        for body in _EVENT.findall(trace):
            order += 1
            stamp = datetime.fromisoformat(_TIME.search(body).group(1))
            cases.setdefault(case, []).append((stamp, order, _NAME.search(body).group(1)))
    return cases


@pytest.fixture(scope="module")
def bpic():
    return parse_log(REALDATA / "eventlogs" / "bpic2012.xes.gz")


@pytest.mark.slow
def test_bpic2012_ingest_funnel_and_outcomes(make_ws, bpic):
    ws = make_ws(LOAN)
    path = REALDATA / "eventlogs" / "bpic2012.xes.gz"
    r = ws.ingest(path)
    assert (r.accepted, r.duplicates, r.rejected) == (262_200, 0, 0)
    assert ws.ingest(path).duplicates == 262_200  # idempotent: nothing added twice

    # Published stage counts (cases having each activity), checked against our own parse.
    having = Counter(a for evs in bpic.values() for a in {e[2] for e in evs})
    published = {"A_SUBMITTED": 13087, "A_PREACCEPTED": 7367, "A_ACCEPTED": 5113,
                 "A_FINALIZED": 5015, "A_APPROVED": 2246, "A_DECLINED": 7635, "A_CANCELLED": 2807}
    assert {a: having[a] for a in published} == published

    # Ordered funnel, independently: greedy in (time, step, file order) per case.
    steps = ["A_SUBMITTED", "A_PREACCEPTED", "A_ACCEPTED", "A_FINALIZED", "A_APPROVED"]
    reach = Counter()
    for evs in bpic.values():
        ordered = sorted((t, steps.index(a), o) for t, o, a in evs if a in steps)
        k = 0
        for _, step, _ in ordered:
            if step == k:
                k += 1
        reach.update(range(k))
    funnel = ws.funnel("application", window="365d").to_pandas()
    assert list(funnel["count"]) == [reach[k] for k in range(len(steps))]
    assert list(funnel["count"]) == [13087, 7367, 5113, 5015, 2246]

    # Outcomes: the first outcome event of each case decides it.
    outcome = Counter()
    for evs in bpic.values():
        for _, _, a in sorted(evs):
            if a in ("A_APPROVED", "A_DECLINED", "A_CANCELLED"):
                outcome["completed" if a == "A_APPROVED" else "failed"] += 1
                break
    card = ws.scorecard().to_pandas().iloc[0]
    assert (card.completed, card.failed) == (outcome["completed"], outcome["failed"])
    assert card.completed == 2246 and card.attempts == 13087 and card.persons == 13087


@pytest.mark.slow
def test_helpdesk_case_durations(make_ws):
    spec = """\
journeys:
  - name: service
    moments:
      - name: ticket
        start: {event: Assign seriousness}
        complete: {event: Closed}
        timeout: 400d
"""
    ws = make_ws(spec)
    path = REALDATA / "eventlogs" / "helpdesk.xes.gz"
    assert ws.ingest(path).accepted == 21_348
    cases = parse_log(path)
    expected = []
    for evs in cases.values():
        evs = sorted(evs)
        starts = [t for t, _, a in evs if a == "Assign seriousness"]
        if not starts:
            continue
        closed = [t for t, _, a in evs if a == "Closed" and t >= starts[0]]
        if closed:
            expected.append((closed[0] - starts[0]).total_seconds())
    a = ws.attempts("ticket").to_pandas()
    done = a[a.outcome == "completed"]
    assert len(done) == len(expected)
    assert sorted(done.duration_s.round(3)) == sorted(round(x, 3) for x in expected)
