"""Baselines frozen on request: a moment's scorecard over a period kept in the store with
the day it was frozen (Python, CLI, HTTP), the latest counting, wrong requests named."""

from __future__ import annotations

import json

import pytest

from microjourney.errors import QueryError

from . import planted
from .live_server import LiveServer, run_cli


def test_a_baseline_keeps_the_scorecard_of_its_period(make_ws):
    ws = make_ws(planted.SPEC, planted.rows(28, seed=4, per_day=10))
    kept = ws.freeze_baseline("pay", since="2024-01-08", until="2024-01-22")
    card = ws.analysis("scorecard", since="2024-01-08", until="2024-01-22").table()
    pay = card[card.moment == "pay"].iloc[0]
    assert kept["figures"]["attempts"] == pay.attempts
    assert kept["figures"]["completion_rate"] == pytest.approx(pay.completion_rate)
    assert kept["figures"]["completion_ci"] == pytest.approx(list(pay.completion_ci))
    assert kept["since"].date().isoformat() == "2024-01-08"
    assert kept["until"].date().isoformat() == "2024-01-22"
    # Default: the 28 days before the end of the data; the latest first.
    again = ws.freeze_baseline("pay")
    assert again["until"].date().isoformat() == "2024-01-29"
    assert again["since"].date().isoformat() == "2024-01-01"
    assert [b["frozen_at"] for b in ws.baselines("pay")] == [again["frozen_at"], kept["frozen_at"]]
    for args, code in ((("nope",), "query/moment"), (("reset",), "query/option")):
        with pytest.raises(QueryError) as caught:
            ws.freeze_baseline(*args)
        assert caught.value.code == code
    with pytest.raises(QueryError, match="not a day"):
        ws.freeze_baseline("pay", since="Jan 8")
    with pytest.raises(QueryError, match="is empty"):
        ws.freeze_baseline("pay", since="2024-01-20", until="2024-01-10")


def test_baselines_through_the_cli_and_the_api(tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "microjourney.yaml").write_text(planted.SPEC, encoding="utf-8")
    import microjourney as mj

    from .helpers import write_events
    with mj.open(root) as ws:
        ws.ingest(write_events(tmp_path / "e.csv", planted.rows(21, seed=2, per_day=8)))
    said = run_cli("baseline", "pay", "--days", "7", "-w", str(root))
    assert "baseline of pay frozen: 2024-01-15 to 2024-01-21" in said
    keys = json.loads(run_cli("keys", "-w", str(root), "--json"))
    with LiveServer(root) as server, server.client(keys["secret_key"]) as api:
        kept = api.post("/v1/baselines/pay", json={"since": "2024-01-01", "until": "2024-01-08"})
        assert kept.status_code == 201 and kept.json()["figures"]["attempts"] > 0
        assert api.post("/v1/baselines/pay", json={"days": 0}).json()["error"]["code"] == "request/bad"
        assert api.post("/v1/baselines/nope", json={}).status_code == 404
        listed = api.get("/v1/baselines", params={"moment": "pay"}).json()["baselines"]
        assert len(listed) == 2 and listed[0]["since"].startswith("2024-01-01")
        with server.client(keys["write_key"]) as writer:
            assert writer.post("/v1/baselines/pay", json={}).status_code == 403
        # While served, the CLI goes through the server.
        shown = json.loads(run_cli("baseline", "-w", str(root), "--json"))
        assert len(shown) == 2
