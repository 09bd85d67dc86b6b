"""The change playbook: changes kept (Python, CLI, HTTP API, the dashboard's form), each
measured by an interrupted time series on planted data, patterns by kind, the experiment
that tested it beside it, and changes marked on the trends."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

import microjourney as mj
from microjourney.errors import QueryError

from . import dashboard_site as site
from . import planted
from .helpers import write_events
from .live_server import LiveServer, run_cli

CHANGE_DAY = planted.FIRST + timedelta(days=28)


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """56 days of payments failing 12% of the time, 4% from day 28 (the change)."""
    root = tmp_path_factory.mktemp("playbook") / "ws"
    root.mkdir()
    (root / "microjourney.yaml").write_text(planted.SPEC, encoding="utf-8")
    rows = planted.rows(56, fail=lambda day, os_: 0.12 if day < 28 else 0.04)
    with mj.open(root) as ws:
        ws.ingest(write_events(root.parent / "events.csv", rows))
        ws.add_change("pay", CHANGE_DAY, "structure", "One page instead of three")
    return root


def test_a_change_is_kept_once_and_a_wrong_one_is_named_by_its_field(make_ws):
    ws = make_ws(planted.SPEC.replace("alerts:\n  segments: [os]\n", "experiments: [{name: e, "
                                      "moment: pay, variants: [{name: a}, {name: b}]}]\n"))
    kept = ws.add_change("pay", "2024-02-01", "copy", "  Shorter error text ", experiment="e")
    assert kept["new"] and kept["title"] == "Shorter error text" and len(kept["change_id"]) == 12
    again = ws.add_change("pay", "2024-02-01", "copy", "Shorter error text")
    assert (again["new"], again["change_id"]) == (False, kept["change_id"])
    assert [c["title"] for c in ws.changes()] == ["Shorter error text"]
    assert ws.changes("reset") == []
    for args, extra, field in ((("pay", "2024-02-01", "colour", "x"), {}, "kind"),
                               (("nope", "2024-02-01", "copy", "x"), {}, "moment"),
                               (("pay", "2024-02-31", "copy", "x"), {}, "day"),
                               (("pay", "2024-02-01", "copy", ""), {}, "title"),
                               (("pay", "2024-02-01", "copy", "x" * 201), {}, "title"),
                               (("pay", "2024-02-01", "copy", "a\x00b"), {}, "title"),
                               (("pay", "2024-02-01", "copy", "x"), {"experiment": "f"}, "experiment")):
        with pytest.raises(QueryError) as caught:
            ws.add_change(*args, **extra)
        assert caught.value.code == "query/change" and caught.value.message.startswith(field), args
    assert ws.remove_change(kept["change_id"]) and not ws.remove_change(kept["change_id"])
    assert ws.changes() == []


def test_the_playbook_measures_a_planted_level_change(shifted):
    with mj.open(shifted) as ws:
        r = ws.analysis("playbook").to_dict()
    (change,) = r["tables"]["changes"]
    assert change["day"] == CHANGE_DAY.isoformat() and change["kind"] == "structure"
    # Completion of finished attempts: 88% before, 96% after planted (this seed drew 88.4%
    # and 95.2%); the model's jump is read against the trend before, carried on.
    assert change["before"] == pytest.approx(0.88, abs=0.012)
    assert change["after"] == pytest.approx(0.96, abs=0.01)
    low, high = change["effect_ci"]
    assert 0 < low < 0.069 < high < 0.15 and change["verdict"] == "better"
    rates = {x["metric"]: x for x in r["tables"]["rates"]}
    assert rates["failure_rate"]["verdict"] == "better" and rates["failure_rate"]["effect"] < 0
    assert rates["completion_rate"]["level"] == pytest.approx(0.08, abs=0.035)
    assert {x["metric"] for x in r["tables"]["times"]} == {"duration", "friction_seconds"}
    (pattern,) = r["tables"]["patterns"]
    assert (pattern["kind"], pattern["changes"], pattern["better"]) == ("structure", 1, 1)
    assert pattern["worse"] == 0
    assert pattern["median_effect"] == pytest.approx(change["effect"])


def test_a_change_that_changed_nothing_is_inconclusive_and_one_too_early_unmeasured(make_ws, tmp_path):
    ws = make_ws(planted.SPEC, planted.rows(56, seed=10))
    ws.add_change("pay", CHANGE_DAY, "copy", "A friendlier button label")
    ws.add_change("pay", planted.FIRST + timedelta(days=3), "timing", "Reminder an hour earlier")
    r = ws.analysis("playbook").to_dict()
    verdicts = {c["title"]: c["verdict"] for c in r["tables"]["changes"]}
    assert verdicts == {"A friendlier button label": "inconclusive",
                        "Reminder an hour earlier": "unmeasured"}
    assert any(w["code"] == "too-few-days-before" for w in r["warnings"])
    copy = ws.analysis("playbook", kind="copy").to_dict()
    assert [c["kind"] for c in copy["tables"]["changes"]] == ["copy"]


def test_changes_through_the_api_the_cli_and_the_dashboard(shifted):
    keys = json.loads(run_cli("keys", "-w", str(shifted), "--json"))
    with LiveServer(shifted) as server:
        with server.client(keys["secret_key"]) as api:
            kept = api.post("/v1/changes", json={"moment": "pay", "date": "2024-02-12",
                                                 "kind": "copy", "title": "Clearer decline message"})
            assert kept.status_code == 201 and kept.json()["new"]
            again = api.post("/v1/changes", json={"moment": "pay", "date": "2024-02-12",
                                                  "kind": "copy", "title": "Clearer decline message"})
            assert again.status_code == 200 and not again.json()["new"]
            bad = api.post("/v1/changes", json={"moment": "pay", "date": "2024-02-12",
                                                "kind": "colour", "title": "x"})
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "query/change"
            assert "kind" in bad.json()["error"]["message"]
            odd = api.post("/v1/changes", json={"moment": "pay", "date": 20240212, "kind": "copy",
                                                "title": "x", "colour": "red"})
            assert odd.status_code == 400 and odd.json()["error"]["code"] == "request/bad"
            assert api.delete("/v1/changes/nope").json()["error"]["code"] == "query/no-change"
            titles = [c["title"] for c in api.get("/v1/changes").json()["changes"]]
            assert titles == ["One page instead of three", "Clearer decline message"]
            # The playbook answers with the new change at once (no stale kept answer).
            listed = api.get("/v1/analyses/playbook").json()["tables"]["changes"]
            assert [c["title"] for c in listed] == titles
        with server.client(keys["write_key"]) as writer:
            assert writer.post("/v1/changes", json={}).status_code == 403
        # The CLI goes through the server that holds the store.
        said = run_cli("change", "add", "pay", "--date", "2024-02-14", "--kind", "policy",
                       "--title", "Retry allowed twice", "-w", str(shifted))
        assert "kept: change" in said
        with site.browser(server) as c:
            site.sign_in(c, keys["viewer_key"])
            page = c.get("/playbook")
            assert page.status_code == 200 and "Sign in with the secret key to add a change" in page.text
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            refused = c.post("/playbook", data={"csrf": token, "moment": "pay", "date": "2024-02-15",
                                                "kind": "copy", "title": "Viewer's change"})
            assert refused.status_code == 403
        with site.browser(server) as c:
            site.sign_in(c, keys["secret_key"])
            page = c.get("/playbook")
            assert 'aria-label="Add a change"' in page.text
            token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            forged = c.post("/playbook", data={"csrf": "forged", "moment": "pay", "date": "2024-02-15",
                                               "kind": "copy", "title": "<b>New</b> wording"})
            assert forged.status_code == 403
            added = c.post("/playbook", data={"csrf": token, "moment": "pay", "date": "2024-02-15",
                                              "kind": "copy", "title": "<b>New</b> wording"})
            assert added.status_code == 303 and added.headers["location"].startswith("/playbook?kept=")
            shown = c.get(added.headers["location"]).text
            assert "&lt;b&gt;New&lt;/b&gt; wording" in shown and "<b>New</b>" not in shown
            wrong = c.post("/playbook", data={"csrf": token, "moment": "pay", "date": "2024-02-30",
                                              "kind": "copy", "title": "x"})
            assert wrong.status_code == 400 and "day" in wrong.text
            # The moment's trends mark each change on its day.
            moment = c.get("/moments/pay").text
            assert "One page instead of three" in moment and CHANGE_DAY.isoformat() in moment
    removed = run_cli("change", "list", "-w", str(shifted), "--json")
    assert len(json.loads(removed)) == 4


def test_the_csat_share_is_measured_where_a_survey_asks_it(make_ws):
    from .helpers import SURVEY_YAML, survey_rows

    ws = make_ws(planted.SPEC + SURVEY_YAML.format(moment="pay"), planted.rows(42, seed=6, per_day=15))
    ws.ingest(write_events(ws.root / "answers.csv", survey_rows(ws.attempts("pay").to_pandas(), seed=2,
                                                                share=0.6)))
    day = planted.FIRST + timedelta(days=21)
    ws.add_change("pay", day, "framing", "The total shown before the card form")
    rates = {r["metric"]: r for r in ws.analysis("playbook").to_dict()["tables"]["rates"]}
    # Before: answers of 4-5 over CSAT answers linked to attempts that started before the day.
    answers = ws.survey_answers("pay_csat").to_pandas()
    answers = answers[(answers.question == "ease") & answers.attempt_id.notna()]
    started = ws.attempts("pay").to_pandas().set_index("attempt_id").start_ts.dt.date
    before = answers[answers.attempt_id.map(started) < day]
    assert rates["csat"]["before"] == pytest.approx((before.answer.astype(float) >= 4).mean())
    assert rates["csat"]["verdict"] in ("better", "worse", "inconclusive")
