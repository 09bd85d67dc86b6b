"""Regression alerts on a workspace: a failure rate planted to double for some days on one
platform is found with its start, the platform and the friction that grew; quiet data
raises nothing; and the alerts reach a webhook on 127.0.0.1, signed, once — from
`microjourney send-alerts` and from `serve` by itself."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

import microjourney as mj
from microjourney.webhooks import verify

from . import planted
from .helpers import write_events
from .live_server import LiveServer, run_cli

START = 60  # the incident's first day
INCIDENT = range(START, START + 6)
SECRET = "s3cret-for-tests"


def _fail(day: int, os_: str) -> float:
    return 0.16 if os_ == "android" and day in INCIDENT else 0.08


def _slow(day: int, os_: str) -> float:
    return 0.4 if os_ == "android" and day in INCIDENT else 0.05


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    root = tmp_path_factory.mktemp("alerts") / "ws"
    root.mkdir()
    (root / "microjourney.yaml").write_text(planted.SPEC, encoding="utf-8")
    with mj.open(root) as ws:
        ws.ingest(write_events(root.parent / "events.csv", planted.rows(84, per_day=150, fail=_fail,
                                                                       slow=_slow)))
    return root


def test_a_planted_regression_is_found_with_its_start_platform_and_friction(incident):
    with mj.open(incident) as ws:
        r = ws.analysis("alerts", moment="pay").to_dict()
    found = {a["metric"]: a for a in r["tables"]["alerts"]}
    failure = found["failure_rate"]
    start = date.fromisoformat(failure["start"])
    assert abs((start - (planted.FIRST + timedelta(days=START))).days) <= 2, failure
    assert failure["baseline"] == pytest.approx(0.08, abs=0.02)
    assert failure["size_ci"][0] > 0 and failure["segment"] == "os = android"
    assert failure["friction"] == "error_shown"
    segments = [s for s in r["tables"]["segments"] if s["alert_id"] == failure["alert_id"]]
    assert (segments[0]["dimension"], segments[0]["value"]) == ("os", "android")
    assert segments[0]["share"] > 0.6
    assert set(found) <= {"failure_rate", "completion_rate", "friction_seconds", "duration"}
    # Before the incident there was nothing to find; alerts since a later day leave it out.
    with mj.open(incident) as ws:
        before = ws.analysis("alerts", until=(planted.FIRST + timedelta(days=START - 1)).isoformat())
        later = ws.analysis("alerts", since=(planted.FIRST + timedelta(days=START + 10)).isoformat())
    assert before.table("alerts").empty and later.table("alerts").empty
    # Read by whole weeks, the incident's two weeks (Friday to Wednesday) are one regression
    # of Android's friction seconds (its failures, half of each week, are too few for a
    # week's test); no volume.
    with mj.open(incident) as ws:
        weeks = ws.analysis("alerts", moment="pay", every="week").to_dict()
    assert weeks["meta"]["every"] == "week"
    [weekly] = weeks["tables"]["alerts"]
    assert (weekly["metric"], weekly["scope"], weekly["start"], weekly["end"]) == (
        "friction_seconds", "os = android", "2024-02-26", "2024-03-04")
    assert weekly["friction"] == "error_shown"
    # The same regression read again keeps its id.
    with mj.open(incident) as ws:
        again = ws.analysis("alerts", moment="pay", metric="failure_rate").table("alerts")
    assert list(again["alert_id"]) == [failure["alert_id"]]


def test_quiet_data_raises_no_alert(make_ws):
    ws = make_ws(planted.SPEC, planted.rows(84, seed=11, slow=lambda d, o: 0.05))
    r = ws.analysis("alerts").to_dict()
    assert r["tables"]["alerts"] == [], r["tables"]["alerts"]


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - the handler's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.got.append((self.headers.get("Microjourney-Signature", ""), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver():
    _Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cx"
    server.shutdown()


def _with_webhook(root, url: str) -> None:
    spec = root / "microjourney.yaml"
    spec.write_text(planted.SPEC.replace(
        "  segments: [os]\n", f"  segments: [os]\n  every: 1s\n  webhooks:\n    - url: {url}\n"
                               "      secret_env: MJ_TEST_ALERT_SECRET\n"), encoding="utf-8")


def test_send_alerts_delivers_each_alert_once_signed(incident, receiver, monkeypatch):
    _with_webhook(incident, receiver)
    monkeypatch.setenv("MJ_TEST_ALERT_SECRET", SECRET)
    first = json.loads(run_cli("send-alerts", "-w", str(incident), "--json"))
    assert first["alerts"] >= 1 and {d["status"] for d in first["deliveries"]} == {"delivered"}
    assert len(_Receiver.got) == first["alerts"]
    header, body = _Receiver.got[0]
    assert verify(SECRET.encode(), header, body, time.time())
    assert json.loads(body)["moment"] == "pay"
    second = json.loads(run_cli("send-alerts", "-w", str(incident), "--json"))
    assert {d["status"] for d in second["deliveries"]} == {"already"}
    assert len(_Receiver.got) == first["alerts"]


def test_serve_sends_new_alerts_by_itself(tmp_path, receiver, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    _with_webhook(root, receiver)
    with mj.open(root) as ws:
        ws.ingest(write_events(tmp_path / "events.csv", planted.rows(70, fail=_fail, slow=_slow)))
    monkeypatch.setenv("MJ_TEST_ALERT_SECRET", SECRET)
    with LiveServer(root):
        deadline = time.monotonic() + 60
        while not _Receiver.got and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2.5)  # two more rounds: nothing is sent twice
    assert _Receiver.got
    ids = [json.loads(body)["alert_id"] for _, body in _Receiver.got]
    assert len(ids) == len(set(ids))
    assert all(verify(SECRET.encode(), h, b, time.time()) for h, b in _Receiver.got)


def test_survey_scores_are_watched_where_a_survey_asks_them(make_ws):
    from microjourney.analysis.alerts import detect
    from microjourney.registry.alerts import long_form, with_surveys
    from microjourney.spec.alerts import Alerts

    from .helpers import SURVEY_YAML, survey_rows

    rows = planted.rows(28, seed=3, per_day=20)
    ws = make_ws(planted.SPEC + SURVEY_YAML.format(moment="pay"), rows, name="surveyed")
    answers = survey_rows(ws.attempts("pay").to_pandas(), seed=4, share=0.5)
    ws.ingest(write_events(ws.root / "answers.csv", answers))
    daily = pd.DataFrame({"moment": ["pay", "reset"], "day": [planted.FIRST] * 2, "attempts": [1, 1]})
    merged = with_surveys(ws, daily, None)
    shown = {a["properties"]["display"] for a in answers if a["event"] == "survey_response"
             and a["properties"]["question"] == "ease"}
    first_day = ws.survey_answers("pay_csat").to_pandas()
    first_day = first_day[(first_day.question == "ease") & first_day.attempt_id.notna()]
    assert len(shown) >= len(first_day) > 0
    # Day one's CSAT answers, counted by hand from the linked answers.
    linked = ws.attempts("pay").to_pandas().set_index("attempt_id").start_ts.dt.date
    day_one = first_day[first_day.attempt_id.map(linked) == planted.FIRST]
    pay = merged[merged.moment == "pay"].iloc[0]
    assert pay.csat_answers == len(day_one)
    assert pay.csat_satisfied == (day_one.answer.astype(float) >= 4).sum()
    assert merged[merged.moment == "reset"].iloc[0].csat_answers == 0
    assert {"csat"} <= set(long_form(merged).metric)
    # A CSAT share that falls from 80% to 50% for four days is a regression (lower is worse).
    day0 = planted.FIRST
    share = [0.8] * 40 + [0.5] * 4 + [0.8] * 3
    frame = pd.DataFrame({"moment": "pay", "metric": "csat",
                          "day": [day0 + timedelta(days=i) for i in range(len(share))],
                          "num": [round(200 * s) for s in share], "den": 200.0})
    [alert], _ = detect(frame, Alerts())
    assert alert.metric == "csat" and alert.start == day0 + timedelta(days=40) and alert.size < 0
