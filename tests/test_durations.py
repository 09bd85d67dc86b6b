"""Time to complete against the SLA: completed attempts in bands of time, hand-worked, and
the share within the SLA equal to the scorecard's SLA met."""

from __future__ import annotations

import math

import pytest

from .helpers import ev

SPEC = """\
journeys:
  - name: j
    moments:
      - name: pay
        start: {event: open}
        complete: {event: ok}
        fail: {event: failed}
        timeout: 1h
        sla: 30s
"""


def test_bands_count_completed_attempts_and_the_sla_edge_is_met(make_ws):
    # Completed in 4 s, 12 s, 30 s (exactly the SLA: met), 31 s and 100 s; one failure.
    rows = []
    for who, seconds in (("a", 4), ("b", 12), ("c", 30), ("d", 31), ("e", 100)):
        rows += [ev("10:00:00", "open", who), ev(f"10:{seconds // 60:02d}:{seconds % 60:02d}", "ok", who)]
    rows += [ev("10:00:00", "open", "f"), ev("10:00:07", "failed", "f")]
    ws = make_ws(SPEC, rows)
    result = ws.analysis("durations", moment="pay")
    bands = result.table()
    got = {(r.from_s, r.to_s): r.completed for r in bands.itertuples() if r.completed}
    assert got == {(0.0, 5.0): 1, (10.0, 15.0): 1, (15.0, 30.0): 1, (30.0, 45.0): 1, (90.0, 120.0): 1}
    assert bands.completed.sum() == 5 and result.meta["completed"] == 5 and result.meta["sla_s"] == 30
    assert bands.share.sum() == pytest.approx(1.0) and bands.cumulative.iloc[-1] == pytest.approx(1.0)
    within = bands[bands.within_sla.astype(bool)]
    assert within.to_s.max() == 30.0
    met = ws.analysis("scorecard").table().sla_met_rate.iloc[0]
    assert within.cumulative.iloc[-1] == pytest.approx(met) == pytest.approx(3 / 5)


def test_no_completed_attempt_is_a_coded_warning(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "open", "a"), ev("10:00:09", "failed", "a")])
    result = ws.analysis("durations", moment="pay")
    assert len(result.table()) == 0 and [w.code for w in result.warnings] == ["no-completed"]
    assert not any(math.isnan(x) for x in result.table().share)
