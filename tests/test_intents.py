"""Intents (docs/intents.md): customer texts imported as events, clustered, mapped to the
moments whose phrases they are nearest, and joined with demand and the moment's failure
rate; on the CLI with a file, in Python and over the registry."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

import microjourney as mj
from microjourney.errors import IngestError, QueryError

from .helpers import PAYMENT_YAML, ev, write_events

YAML = PAYMENT_YAML.replace("        owner: payments-team\n", """\
        owner: payments-team
        keywords: [declined, checkout]
        phrases: [my card payment was declined, the payment failed at checkout]
""") + """\
      - name: reset
        start: {event: reset_opened}
        complete: {event: reset_done}
        phrases: [I forgot my password, the password reset email never came]
"""

DECLINED = ["my card was declined at checkout", "card payment declined again",
            "why is my card declined", "the shop declined my card payment",
            "payment declined but I have money", "card keeps getting declined when I pay"]
PASSWORD = ["I forgot my password", "reset password email did not arrive",
            "cannot reset my password", "password reset link expired",
            "how do I change my forgotten password", "the password reset email never came"]
WEATHER = ["is your branch open on saturday", "what are the opening hours of the branch",
           "branch opening times on sunday", "when does the city branch open"]


def text_rows() -> list[dict]:
    rows = []
    for i, t in enumerate(DECLINED + PASSWORD + WEATHER):
        day = 1 + i % 9
        rows.append({"id": f"t{i}", "at": f"2024-01-{day:02d}T12:00:00+00:00", "who": f"u{i % 4}",
                     "said": t, "where": "chat"})
    rows.append({"id": "t-mail", "at": "2024-01-09T13:00:00+00:00", "who": "u1",
                 "said": "please write to ann.smith@example.org about my declined card",
                 "where": "chat"})
    rows.append({"id": "t-blank", "at": "2024-01-09T13:00:00+00:00", "who": "u1", "said": "  ",
                 "where": "chat"})
    return rows


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("intents")
    w = mj.init(root)
    (root / "microjourney.yaml").write_text(YAML)
    w.reload()
    # card_payment: 3 attempts, 1 completed, 2 failed.
    w.ingest(write_events(root / "e.csv", [
        ev("10:00:00", "checkout_payment_opened", "u1"), ev("10:00:30", "payment_succeeded", "u1"),
        ev("11:00:00", "checkout_payment_opened", "u2"), ev("11:00:30", "payment_failed", "u2"),
        ev("12:00:00", "checkout_payment_opened", "u3"), ev("12:00:30", "payment_failed", "u3"),
    ]))
    path = root / "texts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in text_rows()) + "\n")
    r = w.ingest_texts(path, text="said", time="at", person="who", ident="id",
                       channel_column="where", source="chat")
    assert (r.accepted, r.rejected) == (17, 0)  # the blank text is no text
    yield w
    w.close()


def test_texts_cluster_into_intents_mapped_to_their_moments(ws):
    r = ws.analysis("intents")
    t = r.table("intents")
    assert r.meta["texts"] == 17 and r.meta["k"] == len(t) >= 3
    by_moment = t.groupby("moment")["texts"].sum().to_dict()
    # Every declined-card text (and the scrubbed e-mail one) maps to card_payment, every
    # password text to reset; the branch questions to no moment.
    assert by_moment["card_payment"] == 7 and by_moment["reset"] == 6
    assert by_moment["(unmapped)"] == 4
    payment = t[t.moment == "card_payment"].iloc[0]
    assert "declined" in payment.terms
    # The moment's failure rate beside it: 2 failed of 3 finished attempts.
    assert payment.attempts == 3 and payment.failure_rate == pytest.approx(2 / 3)
    # Demand: texts per week sum to the intent's texts; shares sum to 1.
    weekly = r.table("weekly").groupby("intent")["texts"].sum()
    assert (weekly == t.set_index("intent")["texts"]).all()
    assert t.share.sum() == pytest.approx(1.0)
    only = ws.analysis("intents", moment="reset").table("intents")
    assert set(only.moment) == {"reset"} and only.texts.sum() == 6


def test_texts_are_scrubbed_stored_once_and_listed_with_their_intent(ws, tmp_path):
    stored = ws.texts().to_pandas()
    assert len(stored) == 17 and set(stored.source) == {"chat"} and set(stored.channel) == {"chat"}
    mail = stored[stored.text_id == "t-mail"].text.iloc[0]
    assert "example.org" not in mail and "[email]" in mail
    listed = ws.analysis("intents", texts=True).table("texts")
    assert len(listed) == 17 and listed.intent.notna().all()


def test_the_command_imports_a_file_and_writes_every_text_with_its_intent(tmp_path):
    root = tmp_path / "ws"
    mj.init(root).close()
    (root / "microjourney.yaml").write_text(YAML)
    path = tmp_path / "searches.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["id", "at", "said"])
        w.writeheader()
        for r in text_rows():
            w.writerow({k: r[k] for k in ("id", "at", "said")})
    out = tmp_path / "out.csv"
    cmd = [sys.executable, "-m", "microjourney", "intents", str(path), "--text", "said", "--time", "at",
           "--id", "id", "--source", "search", "--out", str(out), "-w", str(root)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "17 texts stored" in run.stdout and "card_payment" in run.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "0 texts stored, 17 duplicate" in again.stdout
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 17 and {r["source"] for r in rows} == {"search"}
    declined = [r for r in rows if "declined" in r["text"]]
    assert {r["moment"] for r in declined} == {"card_payment"}


def test_mistakes_are_named(ws, tmp_path):
    with pytest.raises(QueryError, match="unknown text source 'tweets'"):
        ws.analysis("intents", source="tweets")
    with pytest.raises(QueryError, match="no moment 'nope'"):
        ws.analysis("intents", moment="nope")
    path = tmp_path / "t.csv"
    path.write_text("said\nhello\n")
    with pytest.raises(IngestError, match="has no column 'text'; columns: said"):
        ws.ingest_texts(path, text="text")
    few = ws.analysis("intents", source="search")
    assert few.table("intents").empty and [w.code for w in few.warnings] == ["few-texts"]
