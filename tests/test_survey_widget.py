"""The survey widget end to end: Chromium on a shop page → ``GET /v1/decide`` → the widget,
answered by keyboard → ``POST /v1/responses`` → the store, where the answer links to the
attempt the page just completed (docs/sdk.md, "Surveys")."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

import microjourney as mj

from .live_server import LiveServer, make_workspace
from .test_sdk import _Quiet, browser  # noqa: F401 - the Chromium of the SDK's tests

pytestmark = pytest.mark.slow

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pay</title></head>
<body>
<h1>Pay</h1>
<p id="above">Text above</p>
<button id="pay">Pay now</button>
<p id="below">Text below</p>
<script src="COLLECTOR/sdk/microjourney.js"></script>
<script>
mj.init({host: 'COLLECTOR', key: 'KEY', flushInterval: 100, surveys: true, language: 'LANG'});
document.getElementById('pay').addEventListener('click', () => {
  mj.track('checkout_opened');
  mj.track('payment_succeeded', {amount: 20});
});
</script>
</body></html>
"""

JOURNEYS = ("[{name: shop, moments: [{name: card_payment, start: {event: checkout_opened}, "
            "complete: {event: payment_succeeded, where: {amount: {gt: 10}}}, "
            "fail: {event: payment_failed}, timeout: 30m}]}]")
SURVEYS = """surveys:
  - name: pay_csat
    moment: card_payment
    title: "<b>How</b> was paying?"
    trigger: {outcomes: [completed]}
    questions:
      - {id: ease, type: csat, text: How easy was paying?}
      - {id: why, type: text, text: What made it hard?, when: {question: ease, at_most: 3}}
    display: {show: times, times: 5, recontact: 1h}
    languages:
      de: {ease: Wie einfach war das Bezahlen?}
"""


class Shop:
    """A shop page on its own origin and a collector allowing it, with the survey above."""

    def __init__(self, tmp: Path) -> None:
        pages = tmp / "pages"
        pages.mkdir()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(pages)))
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.root = tmp / "ws"
        self.keys = make_workspace(self.root, server=f'{{cors_origins: ["{self.origin}"]}}',
                                   journeys=JOURNEYS)
        with (self.root / "microjourney.yaml").open("a", encoding="utf-8") as fh:
            fh.write(SURVEYS)
        self.collector = LiveServer(self.root).start()
        for language in ("en", "de"):
            text = PAGE.replace("COLLECTOR", self.collector.url).replace("KEY", self.keys["write_key"])
            (pages / f"pay-{language}.html").write_text(text.replace("LANG", language), encoding="utf-8")

    def close(self) -> None:
        self.collector.stop()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    s = Shop(tmp_path)
    yield s
    s.close()


def visit(browser, shop: Shop, language: str = "en", reduced: bool = False):  # noqa: F811
    context = browser.new_context(reduced_motion="reduce" if reduced else "no-preference")
    page = context.new_page()
    page.goto(f"{shop.origin}/pay-{language}.html")
    page.wait_for_function("window.mj && mj._cfg !== null")
    return context, page


def focused_in_dialog(page) -> bool:
    return page.evaluate("!!document.activeElement.closest('[role=dialog]')")


def test_a_completed_payment_is_surveyed_answered_by_keyboard_and_linked(shop, browser):  # noqa: F811
    context, page = visit(browser, shop)
    before = page.evaluate("document.getElementById('below').getBoundingClientRect().top")
    page.focus("#pay")
    page.keyboard.press("Enter")  # completes the moment: the survey is due
    dialog = page.get_by_role("dialog", name="<b>How</b> was paying?")  # the title as text
    dialog.wait_for()
    assert page.evaluate("document.querySelector('[role=dialog] h2 b')") is None  # never HTML
    assert page.evaluate("document.getElementById('below').getBoundingClientRect().top") == before
    assert dialog.get_attribute("aria-modal") == "true"
    assert page.evaluate("getComputedStyle(document.querySelector('[role=dialog]')).position") == "fixed"
    assert page.evaluate("getComputedStyle(document.querySelector('[role=dialog]')).animationName") == \
        "mj-survey-in"
    assert focused_in_dialog(page)  # focus moved in, to the first answer
    assert page.evaluate("document.activeElement.type") == "radio"
    for _ in range(6):  # Tab never leaves the dialog
        page.keyboard.press("Tab")
        assert focused_in_dialog(page)
    # Back to the radio group, and pick 2 of 5 with the arrow keys.
    page.get_by_role("radio", name="1").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_role("radio", name="2").is_checked()
    page.keyboard.press("Tab")  # to Next
    assert page.evaluate("document.activeElement.textContent") == "Next"
    with page.expect_response(lambda r: "/v1/responses" in r.url) as partial:
        page.keyboard.press("Enter")
    assert partial.value.json()["accepted"] == 1
    # 2 is at most 3: the follow-up appears, with focus in its text box.
    why = page.get_by_role("textbox", name="What made it hard?")
    why.wait_for()
    assert why.evaluate("el => el === document.activeElement")
    page.keyboard.type("The 3-D Secure page <script>alert(1)</script> hung")
    page.keyboard.press("Tab")
    with page.expect_response(lambda r: "/v1/responses" in r.url) as final:
        page.keyboard.press("Enter")  # Send: the last answer, final
    assert final.value.json()["accepted"] == 1
    page.get_by_role("status").wait_for()  # thanks; Escape closes it now, not dismissed
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached", timeout=5000)
    assert page.evaluate("document.activeElement.id") == "pay"  # focus went back where it was

    # A second completion within the recontact wait shows nothing.
    with page.expect_response(lambda r: "event=payment_succeeded" in r.url) as again:
        page.keyboard.press("Enter")
    assert again.value.json() == {"ok": True, "survey": None, "experiments": {},
                                  "refused": {"pay_csat": "recontact"}}
    page.wait_for_timeout(200)
    assert page.get_by_role("dialog").count() == 0
    anonymous_id = page.evaluate("mj.flush().then(() => mj.anonymousId)")
    context.close()

    assert shop.collector.stop() in (0, -15)
    with mj.open(shop.root) as ws:
        answers = ws.survey_answers("pay_csat").order_by("question").to_pyarrow().to_pylist()
        attempts = ws.attempts("card_payment").to_pyarrow().to_pylist()
        displays = ws.survey_displays("pay_csat").to_pyarrow().to_pylist()
    assert [(a["question"], a["answer"], a["final"]) for a in answers] == [
        ("ease", "2", False), ("why", "The 3-D Secure page <script>alert(1)</script> hung", True)]
    completed = [a for a in attempts if a["outcome"] == "completed"]
    assert len(completed) == 2  # the second completion is an attempt of its own, not surveyed
    first = min(completed, key=lambda a: a["start_ts"])
    assert {a["attempt_id"] for a in answers} == {first["attempt_id"]}
    assert {a["a_outcome"] for a in answers} == {"completed"}
    assert {a["person"] for a in answers} == {first["person"]} == {anonymous_id}
    assert [(d["control"], d["dismissed"]) for d in displays] == [(False, False)]


def test_escape_dismisses_and_reduced_motion_has_no_animation(shop, browser):  # noqa: F811
    context, page = visit(browser, shop, language="de", reduced=True)
    page.focus("#pay")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert page.get_by_role("group", name="Wie einfach war das Bezahlen?").count() == 1
    assert page.evaluate("getComputedStyle(document.querySelector('[role=dialog]')).animationName") == "none"
    with page.expect_response(lambda r: "/v1/responses" in r.url) as gone:
        page.keyboard.press("Escape")
    assert gone.value.json()["accepted"] == 1
    dialog.wait_for(state="detached", timeout=5000)
    assert page.evaluate("document.activeElement.id") == "pay"
    page.evaluate("mj.flush()")
    context.close()
    assert shop.collector.stop() in (0, -15)
    with mj.open(shop.root) as ws:
        displays = ws.survey_displays("pay_csat").to_pyarrow().to_pylist()
        answered = ws.survey_answers("pay_csat", linked=False).count().to_pyarrow().as_py()
    assert [d["dismissed"] for d in displays] == [True] and answered == 0
