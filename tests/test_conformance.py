"""Conformance to a moment's designed step order, on hand-worked attempts."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from microjourney.analysis import wilson_interval

from .helpers import ev
from .test_attempts import SPEC


def test_conformance_and_named_deviations(make_ws):
    card = {"valid": True}
    ws = make_ws(SPEC, [
        # a: by the book.  b: stops after loading (still conforming).  c: skips loading.
        ev("10:00:00", "open", "a"), ev("10:00:05", "loaded", "a"),
        ev("10:00:09", "card", "a", properties=card), ev("10:00:12", "ok", "a"),
        ev("10:00:00", "open", "b"), ev("10:00:05", "loaded", "b"), ev("10:00:09", "failed", "b"),
        ev("10:00:00", "open", "c"), ev("10:00:06", "card", "c", properties=card),
        ev("10:00:08", "ok", "c"),
        # d: loads twice, then goes back to loading after the card.
        ev("10:00:00", "open", "d"), ev("10:00:05", "loaded", "d"), ev("10:00:06", "loaded", "d"),
        ev("10:00:09", "card", "d", properties=card), ev("10:00:10", "loaded", "d"),
        ev("10:00:20", "ok", "d"),
    ])
    summary, dev = (t.to_pandas() for t in ws.conformance())
    s = summary.iloc[0]
    assert (s.moment, s.attempts, s.conforming) == ("pay", 4, 2)
    assert s.conformance_rate == 0.5 and list(s.conformance_ci) == list(wilson_interval(2, 4))
    got = {(r.kind, r.deviation, r.attempts, r.occurrences) for r in dev.itertuples()}
    assert got == {
        ("skipped", "skipped loaded (from open to card)", 1, 1),
        ("repeated", "repeated loaded", 1, 1),
        ("out_of_order", "loaded again after card", 1, 1),
        # d's loaded → ok skips the card step on the way back.
        ("skipped", "skipped card (from loaded to ok)", 1, 1),
    }


def test_conformance_cli_and_empty_moment(make_ws):
    ws = make_ws(SPEC, [ev("10:00:00", "noise", "a")])
    summary, dev = (t.to_pandas() for t in ws.conformance("pay"))
    assert summary.iloc[0].attempts == 0 and math.isnan(summary.iloc[0].conformance_rate)
    assert dev.empty
    ws.close()  # one process at a time may hold the store
    proc = subprocess.run([sys.executable, "-m", "microjourney", "conformance", "pay", "--json",
                           "-w", str(ws.root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tables"]["deviations"] == []
