"""Where an incremental refresh cuts a person's rows again from: each road, by hand.

A refresh keeps a person's rows before the point their change can reach and recomputes
the rest (microjourney/workspace_person_refresh.py). Each case below stores one batch,
refreshes, stores the next and refreshes incrementally; the tables must then equal a
full rebuild's, and the fact the case is about is checked against its hand-worked value.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .helpers import ev, write_events
from .test_refresh import SHORT_WINDOWS, snapshot

CHAT = {"channel": "chat"}


def _attempts(ws, moment: str = "pay") -> list[dict]:
    rows = ws.con.execute("SELECT * FROM attempts WHERE moment = ? ORDER BY start_ts", [moment])
    names = [d[0] for d in rows.description]
    return [dict(zip(names, r, strict=True)) for r in rows.fetchall()]


def _continued(ws) -> None:  # the new rows go on the last cut: one attempt of four events
    (a,) = _attempts(ws)  # steps: loaded 1, card 2, the outcome 3
    assert (a["outcome"], a["events"], a["furthest_step"]) == ("completed", 4, 3)


def _hopped(ws) -> None:  # the new rows go on the last cut from another channel: one hop
    (a,) = _attempts(ws)
    assert (a["events"], a["channels"], a["channel_hops"], a["end_channel"]) == (4, 2, 1, "app")


def _after_outcome(ws) -> None:  # an outcome closes the cut: a second attempt
    assert [a["outcome"] for a in _attempts(ws)] == ["completed", "failed"]


def _after_gap(ws) -> None:  # 10 min later than a 3 min timeout: a new cut, outside any attempt
    assert [a["outcome"] for a in _attempts(ws)] == ["abandoned"]
    (n,) = ws.con.execute("SELECT count(*) FROM tagged WHERE event = 'loaded' AND segment IS NULL"
                          ).fetchall()[0]
    assert n == 1


def _escalated(ws) -> None:  # a contact 30 s after a failed attempt, within its 2 min window
    (a,) = _attempts(ws)  # the contact is an escalation, not an attempt of its own
    assert (a["outcome"], a["escalated"], a["escalation_channel"]) == ("failed", True, "chat")
    assert a["escalation_delay_s"] == 30.0


def _repeated(ws) -> None:  # a second chat 1 min after the first, within its 3 min window
    first, second = _attempts(ws, "chat")
    assert (first["repeat_contact"], second["repeat_contact"]) == (True, False)


def _timed_out(ws) -> None:  # another person's event moves the end of the data 10 min on
    (a,) = _attempts(ws)
    assert a["outcome"] == "abandoned"


def _late(ws) -> None:  # an event older than the last one kept: the whole history again
    (a,) = _attempts(ws)
    assert (a["outcome"], a["furthest_step"], a["events"]) == ("completed", 3, 3)


def _before_a_start(ws) -> None:  # a step before any start stays outside the attempt
    (a,) = _attempts(ws)
    assert (a["events"], a["furthest_step"]) == (2, 2)
    (n,) = ws.con.execute("SELECT count(*) FROM tagged WHERE segment IS NULL").fetchall()[0]
    assert n == 1


def _neighbour(ws) -> None:  # the last row kept learns its next neighbour
    rows = ws.con.execute("SELECT event, next_event, next_t - t_ms FROM timeline "
                          "ORDER BY t_ms").fetchall()
    assert rows == [("click", "click", 5000), ("click", None, None)]


def _rage(ws) -> None:  # five clicks on one spot within a second each, across two batches
    kinds = ws.con.execute("SELECT kind, len(evidence) FROM frictions").fetchall()
    assert ("rage_click", 5) in kinds


def _not_dead(ws) -> None:  # the click ending an attempt gets a next event 1 s later
    kinds = [k for (k,) in ws.con.execute("SELECT kind FROM frictions").fetchall()]
    assert "dead_click" not in kinds


def _help(seconds: float) -> Callable:
    def check(ws) -> None:  # help opened as a failed attempt ended, then the person's next event
        rows = ws.con.execute("SELECT seconds_lost FROM frictions WHERE kind = 'cognitive_load'").fetchall()
        assert rows == [(seconds,)]
    return check


HELP = [ev("10:00:00", "open"), ev("10:00:10", "failed"), ev("10:00:10", "help_opened")]

CASES: dict[str, tuple[list[list[dict]], Callable]] = {
    "continued": ([[ev("10:00:00", "open"), ev("10:00:30", "loaded")],
                   [ev("10:01:00", "card", properties={"valid": True}), ev("10:01:30", "ok")]],
                  _continued),
    "another channel": ([[ev("10:00:00", "open"), ev("10:00:30", "loaded")],
                         [ev("10:01:00", "card", channel="app", properties={"valid": True}),
                          ev("10:01:30", "ok", channel="app")]], _hopped),
    "after an outcome": ([[ev("10:00:00", "open"), ev("10:00:30", "ok")],
                          [ev("10:01:00", "open"), ev("10:01:30", "failed")]], _after_outcome),
    "after a gap": ([[ev("10:00:00", "open")], [ev("10:10:00", "loaded")]], _after_gap),
    "escalated": ([[ev("10:00:00", "open"), ev("10:00:30", "failed")],
                   [ev("10:01:00", "contact_started", **CHAT)]], _escalated),
    "repeat contact": ([[ev("10:00:00", "chat_opened", **CHAT), ev("10:00:30", "resolved", **CHAT)],
                        [ev("10:01:30", "chat_opened", **CHAT), ev("10:02:00", "resolved", **CHAT)]],
                       _repeated),
    "timed out": ([[ev("10:00:00", "open"), ev("10:00:00", "click", "u2")],
                   [ev("10:10:00", "click", "u2")]], _timed_out),
    "late": ([[ev("10:00:00", "open"), ev("10:02:00", "ok")], [ev("10:01:00", "loaded")]], _late),
    "before a start": ([[ev("10:00:00", "card", properties={"valid": True})],
                        [ev("10:00:30", "open"), ev("10:01:00", "card", properties={"valid": True})]],
                       _before_a_start),
    "dead click": ([[ev("10:00:00", "open"), ev("10:00:01", "ok"), ev("10:00:01", "click")],
                    [ev("10:00:02", "page_viewed")]], _not_dead),
    # Back later than the cap: the attempt is left alone (nothing after it counts the cap).
    "help, back later": ([HELP, [ev("10:20:00", "page_viewed")]], _help(300.0)),
    # Back within the cap: the attempt holding the last event is detected again.
    "help, back soon": ([HELP, [ev("10:01:50", "page_viewed")]], _help(100.0)),
    "neighbour": ([[ev("10:00:00", "click")], [ev("10:00:05", "click")]], _neighbour),
    "rage click": ([[ev("10:00:00", "open"), *(ev(f"10:00:0{k}", "click", properties={"x": 5, "y": 5})
                                              for k in (1, 2, 3))],
                    [ev(f"10:00:0{k}", "click", properties={"x": 5, "y": 5}) for k in (4, 5)]], _rage),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_road_of_an_incremental_refresh_gives_a_full_rebuilds_tables(make_ws, tmp_path, case):
    batches, check = CASES[case]
    ws = make_ws(SHORT_WINDOWS, name=case.replace(" ", "-"))
    modes = []
    for k, events in enumerate(batches):
        ws.ingest(write_events(tmp_path / f"b{k}.csv", events))
        modes.append(ws.refresh(frictions=True).mode)
    assert modes == ["full", "incremental"]
    check(ws)
    incremental = snapshot(ws)
    assert ws.refresh(force=True).mode == "full"
    check(ws)
    assert snapshot(ws) == incremental


def test_a_workspace_without_moments_keeps_its_timeline_fresh(make_ws, tmp_path):
    """Who is who and the timeline only (the collector's first days): no attempts to age."""
    ws = make_ws("journeys: []\n", [ev("10:00:00", "click")], name="no-moments")
    ws.catch_up()
    ws.ingest(write_events(tmp_path / "more.csv", [ev("10:00:05", "click")]))
    assert ws.catch_up().mode == "incremental"
    assert ws.con.execute("SELECT next_t - t_ms FROM timeline ORDER BY t_ms").fetchall() == [(5000,), (None,)]


def test_prepare_compiles_the_next_incremental_refresh_and_changes_nothing(make_ws, tmp_path):
    """What a server does when it starts (refresher.py): every statement the next
    incremental refresh runs is compiled, the tables and their state stay as they were,
    and the refresh that takes in new events then compiles nothing."""
    from microjourney.engine import runtime

    ws = make_ws(SHORT_WINDOWS, [ev("10:00:00", "open"), ev("10:00:30", "loaded")], name="prepared")
    ws.refresh(frictions=True)
    before, state = snapshot(ws), ws.run.get_meta("refresh_state")
    runtime._COMPILED.clear()  # as in a server process that has compiled nothing yet
    assert ws.prepare()
    compiled = set(runtime._COMPILED)
    assert {key[1] for key in compiled} >= {"fresh", "flipped:True", "anchors", "restart",
                                             "attempts", "tries", "some:spans"}
    assert snapshot(ws) == before and ws.run.get_meta("refresh_state") == state
    ws.ingest(write_events(tmp_path / "more.csv", [ev("10:01:00", "card", properties={"valid": True}),
                                                    ev("10:01:30", "ok"), ev("10:20:00", "click", "u2")]))
    assert ws.prepare() and snapshot(ws) == before  # events stored since are not taken in
    assert ws.refresh().mode == "incremental"
    assert set(runtime._COMPILED) == compiled
    _continued(ws)
    assert snapshot(ws) != before
