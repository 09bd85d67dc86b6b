"""Answers imported from other tools' files (docs/surveys.md, "Importing answers"): bad
answers go to quarantine with their row and column, a second import stores nothing twice,
answers link to the nearest attempt, and the real telecom NPS survey gives NPS per journey
stage with intervals."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

import microjourney as mj
from microjourney.errors import IngestError

from .helpers import PAYMENT_YAML, TELECOM, ev, telecom_workspace, write_events

YAML = PAYMENT_YAML + """\
surveys:
  - name: ivr_csat
    moment: card_payment
    questions:
      - {id: csat, type: csat, text: How satisfied were you?}
      - {id: channel_used, type: single, text: How did you pay?, choices: [card, wallet]}
      - {id: comment, type: text, text: Anything else?, required: false}
"""

CSV = """\
called_at,customer,score,how,note
2024-01-01 10:05,u1,5,card,fine
2024-01-01 11:10,u2,11,card,
2024-01-01 12:00,u3,2,cheque,call me on +44 20 7946 0958
31/02/2024,u4,3,card,
2024-01-01 13:00,u5,,wallet,
"""


@pytest.fixture()
def ws(tmp_path):
    w = mj.init(tmp_path)
    (tmp_path / "microjourney.yaml").write_text(YAML)
    w.reload()
    w.ingest(write_events(tmp_path / "e.csv", [
        ev("10:00:00", "checkout_payment_opened", "u1"), ev("10:00:30", "payment_failed", "u1"),
        ev("10:02:00", "checkout_payment_opened", "u1"), ev("10:02:30", "payment_succeeded", "u1"),
        ev("12:00:00", "checkout_payment_opened", "u3"), ev("12:00:40", "payment_failed", "u3"),
    ]))
    yield w
    w.close()


def _import(ws, path):
    return ws.ingest_responses(path, survey="ivr_csat", time="called_at",
                               time_format="%Y-%m-%d %H:%M", person="customer", timezone="UTC",
                               answers={"csat": "score", "channel_used": "how", "comment": "note"},
                               channel="voice")


def test_bad_answers_go_to_quarantine_and_a_second_import_stores_nothing_twice(ws, tmp_path):
    path = tmp_path / "ivr.csv"
    path.write_text(CSV)
    r = _import(ws, path)
    # Stored: u1 csat/how/note, u2 how, u3 csat/note, u5 how = 7 answers. Rejected: u2's 11
    # (off the scale), u3's 'cheque' (not a choice), u4's date (not the format).
    assert (r.accepted, r.rejected) == (7, 3)
    q = ws.quarantine().to_pandas().sort_values("row")
    reasons = dict(zip(q.row, q.reason, strict=True))
    assert "score: '11' is not an answer to csat question 'csat' (a whole number from 1 to 5)" in reasons[2]
    assert "how: 'cheque' is not a choice of question 'channel_used': card, wallet" in reasons[3]
    assert "called_at: '31/02/2024' does not match the time format" in reasons[4]
    assert set(q.field) == {"score", "how", "timestamp"}
    again = _import(ws, path)
    assert (again.accepted, again.duplicates) == (0, 7)
    # Free text is scrubbed on the way in, as every property is.
    notes = ws.survey_answers("ivr_csat").to_pandas().set_index("question")
    assert "7946" not in " ".join(notes.loc[["comment"], "answer"])


def test_imported_answers_link_to_the_nearest_attempt_before_them(ws, tmp_path):
    path = tmp_path / "ivr.csv"
    path.write_text(CSV)
    _import(ws, path)
    a = ws.survey_answers("ivr_csat").to_pandas()
    by_person = a[a.question == "csat"].set_index("person").attempt_id
    attempts = ws.attempts("card_payment").to_pandas().sort_values("start_ts")
    u1 = attempts[attempts.person == "u1"].attempt_id.tolist()
    # u1 answered at 10:05 after two attempts (10:00 failed, 10:02 completed): the latest.
    assert by_person["u1"] == u1[1]
    assert by_person["u3"] == attempts[attempts.person == "u3"].attempt_id.iloc[0]
    assert set(a.channel) == {"voice"}


def test_mistakes_in_the_mapping_are_named(ws, tmp_path):
    path = tmp_path / "ivr.csv"
    path.write_text(CSV)
    with pytest.raises(IngestError, match="survey 'ivr_csat' has no question 'nps'; its questions: "
                                          "csat, channel_used, comment"):
        ws.ingest_responses(path, survey="ivr_csat", answers={"nps": "score"}, time="called_at")
    with pytest.raises(IngestError, match="has no column 'when'; columns: called_at, customer"):
        ws.ingest_responses(path, survey="ivr_csat", answers={"csat": "score"}, time="when")
    with pytest.raises(IngestError, match="'channel' is a field of the answer event"):
        ws.ingest_responses(path, survey="ivr_csat", answers={"csat": "score"}, time="called_at",
                            properties={"channel": "how"})


def test_json_lines_answers_import_by_their_keys(ws, tmp_path):
    path = tmp_path / "app.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"at": "2024-01-01T10:05:00+00:00", "who": "u1", "stars": 4, "id": "r1"},
        {"at": "2024-01-01T12:01:00+00:00", "who": "u3", "stars": 1, "id": "r2"},
    ]) + "\n")
    r = ws.ingest_responses(path, survey="ivr_csat", answers={"csat": "stars"}, time="at",
                            person="who", response="id", channel="app")
    assert (r.accepted, r.rejected) == (2, 0)
    s = ws.analysis("survey-scores", survey="ivr_csat").table("scores").set_index("question")
    assert s.loc["csat", "responses"] == 2 and s.loc["csat", "satisfied"] == 0.5


@pytest.mark.skipif(not TELECOM.exists(), reason=f"real data not found at {TELECOM}")
def test_the_telecom_nps_survey_by_journey_stage(tmp_path):
    w, r = telecom_workspace(tmp_path)
    assert r.rejected == 0
    result = w.analysis("survey-scores", survey="telecom_nps", by="stage")
    got = result.table("scores").set_index("stage")
    # The file's own classification (NPS_RATING) gives the same NPS per stage.
    with gzip.open(TELECOM, "rt", encoding="utf-8") as fh:
        df = pd.read_csv(fh)
    df = df[df.NPS_SCORE.notna()]
    for stage, rows in df.groupby("SURVEY_SUB_TYPE"):
        share = rows.NPS_RATING.value_counts(normalize=True)
        expected = share.get("Promoter", 0) - share.get("Detractor", 0)
        assert got.loc[stage, "responses"] == len(rows)
        assert got.loc[stage, "nps"] == pytest.approx(expected, abs=1e-12)
        low, high = got.loc[stage, "nps_ci"]
        assert low < expected < high and high - low < 0.5
    assert set(got.index) == {"Order", "Equipment Received", "First Payment", "Service in Use"}
    # 30 answers at 'Service in Use': above the floor of the few-units warning (20).
    assert not [w for w in result.warnings if w.code == "few-units"]
    w.close()
