"""The demo's surveys: an in-app CSAT after card payments, and a post-call IVR survey the
contact centre's phone system keeps and exports (``ivr_survey.csv``).

The card payment survey is triggered as teams usually do it: it asks failed payments far
more often (60%) than completed ones (15%), so its raw score is pulled down by failures;
a control sample of 10% of attempts is asked whatever the outcome (those who walk away
too, as they leave), and the reweighted score corrects the pull (docs/surveys.md).
Scores follow what happened: completions score high, a slow gateway or a rage click
lowers them, failures score low. Low scores often come with a sentence saying why.

Surveys draw from their own random stream, so adding them leaves every other event of
the demo as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .world import DAY, HOUR, SECOND, Batch, World, props

PAYMENT_SURVEY: dict[str, Any] = {
    "name": "payment_csat",
    "moment": "card_payment",
    "title": "A quick question about paying",
    "trigger": {"outcomes": ["completed", "failed"], "channel": ["web", "app"], "delay": "2s"},
    "questions": [
        {"id": "ease", "type": "csat", "text": "How easy was it to pay?"},
        {"id": "why", "type": "text", "text": "What made it hard?", "required": False,
         "when": {"question": "ease", "at_most": 3}},
    ],
    "display": {"show": "times", "times": 3, "sample": 15, "recontact": "7d"},
    "control": 10,
    "languages": {"de": {"ease": "Wie einfach war das Bezahlen?", "why": "Was war schwierig?"}},
}
IVR_SURVEY: dict[str, Any] = {
    "name": "call_csat",
    "moment": "call_transfer",
    "title": "Post-call survey (IVR, imported)",
    "trigger": {"outcomes": ["completed"], "channel": ["voice"]},
    "questions": [{"id": "csat", "type": "csat", "text": "Press 1 to 5: how satisfied are you "
                   "with this call?"}],
    "link_within": "1h",
}
#: The shop's relationship NPS, e-mailed a day after a customer's payments and imported
#: from the e-mail tool: it rates the payment journey as a whole (docs/peak_end.md).
NPS_SURVEY: dict[str, Any] = {
    "name": "payment_nps",
    "journey": "payment",
    "title": "How likely are you to recommend our shop? (e-mailed, imported)",
    "questions": [{"id": "nps", "type": "nps", "text": "How likely are you to recommend us?"}],
    "link_within": "3d",
}
#: The export of those answers (imported with ``microjourney responses``).
NPS_EXPORT = "shop_nps.csv"
SURVEYS = [PAYMENT_SURVEY, IVR_SURVEY, NPS_SURVEY]

#: What customers write when paying was hard, by what went wrong.
WHY = {
    "slow": ["the payment page took ages to load", "it kept spinning before the card form showed",
             "so slow, I almost gave up", "waited far too long for the payment page"],
    "rage": ["the pay button did nothing when I clicked it", "had to click pay several times",
             "buttons not responding on the payment page"],
    "failed": ["my card was declined for no reason", "payment failed and I don't know why",
               "the verification code never came", "error at checkout, had to start again",
               "it said the payment failed but the money left my account"],
    "other": ["too many steps to pay", "the card form is confusing", "not clear what happened"],
}
#: Sample shares: failures are asked far more often than completions; the control share is
#: asked whatever the outcome.
ASKED = {"completed": 0.15, "failed": 0.60, "abandoned": 0.0}
CONTROL = 0.10


def payment(w: World, b: Batch, outcome: str, slow: np.ndarray, rage: np.ndarray) -> None:
    """Ask the card payment survey after ``b``'s attempts ended with ``outcome`` (their
    clock at the outcome); ``slow``/``rage``: what went wrong in each."""
    n = len(b)
    if n == 0:
        return
    rng = w.survey_rng
    digital = np.isin(b.channel, ["web", "app"])
    control = digital & (rng.random(n) < CONTROL)
    asked = digital & (control | (rng.random(n) < ASKED[outcome]))
    if not asked.any():
        return
    s = b.take(asked)
    slow, rage, control = slow[asked], rage[asked], control[asked]
    m = len(s)
    display = np.array([f"dsp_{x:012x}" for x in rng.integers(0, 2**48, m)], dtype=object)
    s.t = s.t + 2 * SECOND + rng.integers(0, 1500, m)
    w.log.emit(s, "survey_shown", props(m, survey="payment_csat", display=display, control=control))
    # A fifth close it; the others answer a few seconds later.
    closed = rng.random(m) < 0.2
    gone = s.take(closed)
    gone.t = gone.t + rng.integers(2, 8, len(gone)) * SECOND
    w.log.emit(gone, "survey_dismissed", props(len(gone), survey="payment_csat",
                                               display=display[closed]))
    keep = ~closed
    s, slow, rage, display = s.take(keep), slow[keep], rage[keep], display[keep]
    m = len(s)
    base = {"completed": 4.6, "failed": 1.9, "abandoned": 2.6}[outcome]
    mean = base - 0.9 * slow - 0.8 * rage
    ease = np.clip(np.round(rng.normal(mean, 0.7)), 1, 5).astype(int)
    s.t = s.t + rng.integers(3, 12, m) * SECOND
    # Low scores are asked why: some answer, some close the question (a partial response).
    low = ease <= 3
    writes = low & (rng.random(m) < 0.55)
    leaves = low & ~writes & (rng.random(m) < 0.3)
    w.log.emit(s, "survey_response", props(m, survey="payment_csat", display=display,
                                           question="ease", answer=ease, final=~(writes | leaves)))
    said = s.take(writes)
    reason = np.where(rage[writes], "rage", np.where(slow[writes], "slow",
                      "failed" if outcome != "completed" else "other"))
    text = np.array([WHY[r][rng.integers(len(WHY[r]))] for r in reason], dtype=object)
    said.t = said.t + rng.integers(5, 30, len(said)) * SECOND
    w.log.emit(said, "survey_response", props(len(said), survey="payment_csat",
                                              display=display[writes], question="why",
                                              answer=text, final=True))


def ivr(w: World, b: Batch, transferred: np.ndarray, hold_s: np.ndarray) -> None:
    """After resolved calls, a third of callers press a score in the IVR; a transfer and
    a long hold cost them points."""
    rng = w.survey_rng
    n = len(b)
    took = rng.random(n) < 0.33
    mean = 4.4 - 1.3 * transferred - np.minimum(1.5, hold_s / 300)
    score = np.clip(np.round(rng.normal(mean, 0.8)), 1, 5).astype(int)
    w.ivr.t.append(b.t[took] + rng.integers(20, 60, int(took.sum())) * SECOND)
    w.ivr.pid.append(b.pid[took])
    w.ivr.score.append(score[took])
    w.ivr.known.append(b.user[took])


def write_ivr(w: World, path: Path, iso: Any) -> Path:
    """The phone system's export: one row per call survey, the caller's customer number
    when the call was identified, local time in ``DD.MM.YYYY HH:MM:SS`` as its reports
    write it (UTC here)."""
    c = w.ivr
    t = np.concatenate(c.t) if c.t else np.array([], dtype=np.int64)
    keep = (t >= w.start) & (t < w.end)
    order = np.argsort(t[keep], kind="stable")
    pid = (np.concatenate(c.pid) if c.pid else np.array([], dtype=np.int64))[keep][order]
    known = (np.concatenate(c.known) if c.known else np.array([], dtype=bool))[keep][order]
    score = (np.concatenate(c.score) if c.score else np.array([], dtype=np.int64))[keep][order]
    when = [x[8:10] + "." + x[5:7] + "." + x[0:4] + " " + x[11:19] for x in iso(t[keep][order])]
    table = pa.table({
        "call_survey_id": [f"ivr-{i + 1:06d}" for i in range(len(order))],
        "answered_at": when,
        "customer": np.where(known, w.people.user_id[pid], None).tolist(),
        "keypad_score": [str(s) for s in score],
    }, schema=pa.schema([(n, pa.string()) for n in ("call_survey_id", "answered_at", "customer",
                                                    "keypad_score")]))
    pacsv.write_csv(table, path)
    return path


def write_nps(w: World, cols: dict[str, np.ndarray], path: Path, iso: Any) -> Path:
    """The e-mail tool's NPS export: a third of the signed-in customers who paid are asked a
    day after the last payment of their first 30 days of paying, and answer by how they
    remember it — mostly its worst payment and its last one, a little the rest (the demo's
    people follow the Peak-End rule more than the mean, which the analysis should find)."""
    paid = np.isin(cols["event"], ["payment_succeeded", "payment_failed"]) & cols["user"].astype(bool)
    t, pid = cols["t"][paid], cols["pid"][paid]
    ok = np.where(cols["event"][paid] == "payment_succeeded", 1.0, -1.0)
    order = np.lexsort((t, pid))
    t, pid, ok = t[order], pid[order], ok[order]
    first = np.r_[True, pid[1:] != pid[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(pid)), 0))
    inside = t - t[start] < 30 * DAY
    rng = w.survey_rng
    # Per person: the worst payment (−1 if any failed), the last, and the mean, vectorised.
    keep = np.flatnonzero(inside)
    kp = pid[keep]
    heads = np.flatnonzero(np.r_[True, kp[1:] != kp[:-1]])
    last = np.r_[kp[1:] != kp[:-1], True]
    worst = np.minimum.reduceat(ok[keep], heads)
    mean = np.add.reduceat(ok[keep], heads) / np.diff(np.r_[heads, len(kp)])
    end_ok, end_t, who = ok[keep][last], t[keep][last], kp[last]
    peak = np.where(worst < 0, -1.0, 1.0)
    asked = rng.random(len(who)) < 1 / 3
    at = end_t + DAY + rng.integers(0, 6 * HOUR, len(who))
    asked &= at < w.end
    remembered = 0.5 * (peak + end_ok)
    score = np.clip(np.round(6.5 + 2.6 * remembered + 0.6 * mean + rng.normal(0, 1.4, len(who))), 0, 10)
    rows = [(f"nps-{i + 1:06d}", a, w.people.user_id[p], str(int(s_)))
            for i, (a, p, s_) in enumerate(zip(iso(at[asked]), who[asked], score[asked], strict=True))]
    table = pa.table({name: [r[k] for r in rows] for k, name in
                      enumerate(("response_id", "answered_at", "customer", "score"))},
                     schema=pa.schema([(n, pa.string()) for n in ("response_id", "answered_at",
                                                                  "customer", "score")]))
    pacsv.write_csv(table, path)
    return path


def import_exports(ws: Any, data: Path) -> tuple[Any, Any, Any]:
    """What the demo imports besides events: the phone system's post-call survey export
    (``ivr_survey.csv``), the support texts (``support_texts.csv``) and the e-mailed NPS
    (:data:`NPS_EXPORT`), into the open workspace ``ws``; the three ingest results."""
    ivr = ws.ingest_responses(data / "ivr_survey.csv", survey="call_csat",
                              answers={"csat": "keypad_score"}, time="answered_at",
                              time_format="%d.%m.%Y %H:%M:%S", timezone="UTC", person="customer",
                              response="call_survey_id", channel="voice")
    texts = ws.ingest_texts(data / "support_texts.csv", text="text", time="timestamp",
                            person="user_id", ident="text_id", channel_column="channel",
                            source_column="source")
    nps = ws.ingest_responses(data / NPS_EXPORT, survey="payment_nps", answers={"nps": "score"},
                              time="answered_at", person="customer", response="response_id",
                              channel="email")
    return ivr, texts, nps
