"""The weekly review by webhook (docs/webhooks.md, "Sent every week"): each whole week's
review reaches a receiver on 127.0.0.1 signed, once per week and URL, from `microjourney
send-review` and from `serve` by itself; no webhooks or a week that is not whole send nothing.

The workspace: 27 days of planted payments from Monday 2024-01-01 to Saturday 2024-01-27, so
its whole weeks are 2024-W01 to 2024-W03 (W04 lacks its Sunday)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

import microjourney as mj
from microjourney.cli import app
from microjourney.errors import QueryError, SpecError
from microjourney.server.reviewing import last_whole_week
from microjourney.spec.load import parse_workspace
from microjourney.spec.review import Review
from microjourney.store import deliveries
from microjourney.webhooks import REVIEW_HEADER, SIGNATURE_HEADER, verify

from . import planted
from .helpers import workspace_of
from .live_server import LiveServer

SECRET = "s3cret-of-the-weekly-review"
ENV = "MJ_TEST_REVIEW_SECRET"
DAYS = 27  # Monday 2024-01-01 to Saturday 2024-01-27


@dataclass
class Got:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str = ""
    got: list[Got] = field(default_factory=list)


@pytest.fixture()
def receiver():
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the handler's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            rec.got.append(Got(dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/weekly"
    yield rec
    server.shutdown()
    server.server_close()


def _spec(url: str | None, every: str = "1s") -> str:
    if url is None:
        return planted.SPEC
    return planted.SPEC + (f"review:\n  every: {every}\n  webhooks:\n    - url: {url}\n"
                           f"      secret_env: {ENV}\n")


@pytest.fixture(scope="module")
def weeks(tmp_path_factory):
    root = tmp_path_factory.mktemp("review-webhook") / "ws"
    root.mkdir()
    workspace_of(root, planted.SPEC, planted.rows(DAYS, per_day=10)).close()
    return root


def _use(root, url: str | None) -> None:
    (root / "microjourney.yaml").write_text(_spec(url), encoding="utf-8")


def run_cli(*args: str) -> str:
    """The command, in this process (a subprocess costs seconds of imports)."""
    done = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert done.exit_code == 0, (done.output, done.exception)
    return done.output


def _signed(got: Got) -> dict:
    assert verify(SECRET.encode(), got.headers[SIGNATURE_HEADER], got.body, time.time())
    assert not verify(b"another secret", got.headers[SIGNATURE_HEADER], got.body, time.time())
    return json.loads(got.body)


def test_send_review_delivers_the_week_once_signed(weeks, receiver, monkeypatch):
    _use(weeks, receiver.url)
    monkeypatch.setenv(ENV, SECRET)
    first = json.loads(run_cli("send-review", "-w", str(weeks), "--json"))
    assert first["week"] == "2024-W03" and first["review_id"] == "review-2024-W03"
    assert [d["status"] for d in first["deliveries"]] == ["delivered"]
    [got] = receiver.got
    assert got.headers[REVIEW_HEADER] == "review-2024-W03"
    body = _signed(got)  # the HMAC is over the exact bytes received
    assert (body["kind"], body["review_id"], body["week"]) == ("review", "review-2024-W03", "2024-W03")
    assert (body["from"], body["to"]) == ("2024-01-15", "2024-01-21")
    review = body["review"]
    assert review["analysis"] == "review" and review["meta"]["week"] == "2024-W03"
    assert body["headline"] == review["meta"]["headline"] and body["headline"].startswith("2024-W03")
    assert body["rag"] == review["meta"]["rag"] and sum(body["rag"].values()) == 2
    assert {m["moment"] for m in review["tables"]["moments"]} == {"pay", "reset"}
    assert isinstance(body["markdown"], str) and "2024-W03" in body["markdown"]

    # Again: the log has the week for this URL, so nothing goes out.
    second = json.loads(run_cli("send-review", "-w", str(weeks), "--json"))
    assert [d["status"] for d in second["deliveries"]] == ["already"]
    assert len(receiver.got) == 1

    # Another week is another delivery.
    other = json.loads(run_cli("send-review", "-w", str(weeks), "--week", "2024-W02", "--json"))
    assert [d["status"] for d in other["deliveries"]] == ["delivered"]
    assert len(receiver.got) == 2
    body = _signed(receiver.got[1])
    assert (body["week"], body["from"], body["to"]) == ("2024-W02", "2024-01-08", "2024-01-14")
    assert receiver.got[1].headers[REVIEW_HEADER] == "review-2024-W02"

    with mj.open(weeks) as ws:
        log = {(r.alert_id, r.url): r.status for r in deliveries.rows(ws.con)}
    assert log == {("review-2024-W03", receiver.url): "delivered",
                   ("review-2024-W02", receiver.url): "delivered"}


def test_no_webhooks_send_nothing_and_say_so(weeks, receiver):
    _use(weeks, None)
    said = run_cli("send-review", "-w", str(weeks))
    assert "no webhooks" in said and "review.webhooks" in said and "nothing sent" in said
    assert json.loads(run_cli("send-review", "-w", str(weeks), "--json"))["deliveries"] == []
    assert receiver.got == []


@pytest.mark.parametrize(("week", "why"), [
    ("2024-W99", "'2024-W99' is not an ISO week (write e.g. 2026-W43)"),
    ("last week", "is not an ISO week"),
    ("2024-W04", "the data reaches 2024-01-27 only, not the end of 2024-W04 (Sunday 2024-01-28)"),
    ("2099-W01", "2099-W01 is not over yet"),
])
def test_a_week_that_is_not_whole_is_a_clear_error(weeks, receiver, monkeypatch, week, why):
    _use(weeks, receiver.url)
    monkeypatch.setenv(ENV, SECRET)
    done = CliRunner().invoke(app, ["send-review", "-w", str(weeks), "--week", week])
    assert isinstance(done.exception, QueryError), (done.output, done.exception)
    assert done.exception.code == "query/option" and why in done.exception.message
    assert done.exception.message.startswith("send-review: ")
    assert receiver.got == []


def test_the_last_whole_week_is_over_and_covered_by_the_data():
    def ms(day: str) -> int:
        return int(datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp() * 1000)

    today = date(2026, 10, 29)  # a Thursday of 2026-W44
    assert last_whole_week(ms("2026-10-27"), today) == "2026-W43"  # data to Tuesday: last week
    assert last_whole_week(ms("2026-10-25"), today) == "2026-W43"  # data to its Sunday
    assert last_whole_week(ms("2026-10-24"), today) == "2026-W42"  # not to its Sunday
    # Data to today, a Sunday: that week is not over.
    assert last_whole_week(ms("2026-11-01"), date(2026, 11, 1)) == "2026-W43"
    assert last_whole_week(ms("2026-11-01"), date(2026, 11, 2)) == "2026-W44"
    assert last_whole_week(0, today) is None
    assert last_whole_week(ms("2021-01-03"), today) == "2020-W53"  # ISO years


def test_the_review_section_is_checked():
    assert Review().every == 3600 and Review().webhooks == ()
    assert Review(every="1s", webhooks=[{"url": "http://127.0.0.1:1/w"}]).every == 1
    for bad in ({"webhooks": [{"url": "ftp://x/y"}]}, {"every": "2d"}, {"sent": True},
                {"webhooks": [{"url": "http://a/x"}, {"url": "http://a/x"}]}):
        with pytest.raises(ValueError):
            Review(**bad)


def test_a_bad_review_section_is_refused_with_its_line():
    text = planted.SPEC + ("review:\n  every: 2d\n  webhooks:\n    - url: hooks.example.com/weekly\n"
                           "      secret: abc\n")
    with pytest.raises(SpecError) as raised:
        parse_workspace(text)
    said = str(raised.value)
    assert "3 problems" in said, said
    assert "microjourney.yaml:11:10: Input should be less than or equal to 86400 (review.every)" in said
    assert ("microjourney.yaml:13:12: a webhook URL is http:// or https:// with a host, not "
            "'hooks.example.com/weekly' (review.webhooks[0].url)") in said, said
    assert "microjourney.yaml:14:7: unknown key 'secret'" in said, said


def test_serve_sends_the_last_whole_week_by_itself_once(tmp_path, receiver, monkeypatch):
    root = tmp_path / "ws"
    root.mkdir()
    workspace_of(root, _spec(receiver.url), planted.rows(DAYS, per_day=10)).close()
    monkeypatch.setenv(ENV, SECRET)
    with LiveServer(root):
        deadline = time.monotonic() + 60
        while not receiver.got and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.5)  # two more rounds at `every: 1s`: nothing is sent twice
    [got] = receiver.got
    body = _signed(got)
    assert (body["kind"], body["week"]) == ("review", "2024-W03")
    assert got.headers[REVIEW_HEADER] == "review-2024-W03"
    assert datetime.now(UTC).date().isoformat() > body["to"]
