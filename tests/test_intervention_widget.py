"""Interventions end to end: Chromium on a shop page fails a payment twice → ``GET /v1/decide``
→ the SDK's offer → accepted, the page opens its chat → the agent's context shows the two
failures and the accepted offer; a person in the holdout sees nothing, and a third failure is
not offered again (docs/interventions.md, docs/handoff.md)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import httpx
import pytest

from microjourney.server.decide import share

from .live_server import LiveServer, make_workspace
from .test_sdk import _Quiet, browser  # noqa: F401 - the Chromium of the SDK's tests

pytestmark = pytest.mark.slow

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Pay</title></head>
<body>
<h1>Pay</h1>
<button id="pay">Pay now</button>
<div id="chat" hidden>Chat: an agent joins you</div>
<script src="COLLECTOR/sdk/microjourney.js"></script>
<script>
mj.init({host: 'COLLECTOR', key: 'KEY', flushInterval: 100, interventions: true,
         onIntervention: (d) => { if (d.action === 'accepted' && d.offer === 'chat')
                                    document.getElementById('chat').hidden = false; }});
mj.identify(new URLSearchParams(location.search).get('user'));
document.getElementById('pay').addEventListener('click', () => {
  mj.track('checkout_opened');
  mj.track('payment_failed', {reason: 'declined'});
});
</script>
</body></html>
"""
JOURNEYS = ("[{name: shop, moments: [{name: card_payment, start: {event: checkout_opened}, "
            "complete: {event: payment_succeeded}, fail: {event: payment_failed}, timeout: 30m}]}]")
RULE, HOLDOUT = "pay_help", 50
RULES = f"""interventions:
  - name: {RULE}
    moment: card_payment
    when: {{signal: failure, count: 2, seconds: 30m}}
    offer: chat
    text: "Declined twice? <b>Chat</b> with us: we can see what happened."
    holdout: {HOLDOUT}
"""


def user(held: bool) -> str:
    """A user id the rule's holdout takes (``held``) or not."""
    return next(u for u in (f"shopper-{i}" for i in range(200))
                if (share("holdout", RULE, u) < HOLDOUT) == held)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[tuple[str, LiveServer, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("offers")
    pages = tmp / "pages"
    pages.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(pages)))
    origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    root = tmp / "ws"
    keys = make_workspace(root, server=f'{{cors_origins: ["{origin}"], refresh_every: 1s}}',
                          journeys=JOURNEYS)
    with (root / "microjourney.yaml").open("a", encoding="utf-8") as fh:
        fh.write(RULES)
    collector = LiveServer(root).start()
    (pages / "pay.html").write_text(PAGE.replace("COLLECTOR", collector.url)
                                    .replace("KEY", keys["write_key"]), encoding="utf-8")
    yield origin, collector, keys
    collector.stop()
    httpd.shutdown()
    httpd.server_close()


def pay(page, times: int) -> None:
    for _ in range(times):
        with page.expect_response(lambda r: "/v1/decide" in r.url):
            page.click("#pay")


def context_of(collector: LiveServer, keys: dict[str, str], who: str, until) -> dict:
    """The person's context once ``until(context)`` holds (the background refresh takes the
    events in within a second or two)."""
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=collector.url, headers={"Authorization": f"Bearer {keys['secret_key']}"}) as c:
        while True:
            got = c.get(f"/v1/persons/{who}/context")
            if got.status_code == 200 and until(got.json()):
                return got.json()
            assert time.monotonic() < deadline, got.text
            time.sleep(0.5)


def test_a_second_failure_offers_a_chat_that_opens_and_the_agent_sees_why(shop, browser):  # noqa: F811
    origin, collector, keys = shop
    who = user(held=False)
    context = browser.new_context(reduced_motion="reduce")
    page = context.new_page()
    page.goto(f"{origin}/pay.html?user={who}")
    page.wait_for_function("window.mj && mj._cfg !== null")
    pay(page, 1)
    page.wait_for_timeout(300)
    assert page.locator(".mj-offer").count() == 0  # one failure: nothing yet
    pay(page, 1)
    offer = page.get_by_role("region", name="Help")
    offer.wait_for(timeout=5000)
    # The text as text, never HTML; in a live region; the page's own focus untouched.
    assert "Declined twice? <b>Chat</b> with us" in offer.inner_text()
    assert page.evaluate("document.querySelector('.mj-offer b')") is None
    assert page.evaluate("!!document.querySelector('.mj-offer [aria-live=polite]')")
    assert page.evaluate("document.activeElement.id") == "pay"
    accepted = "intervention_accepted"
    with page.expect_request(lambda r: "/v1/batch" in r.url and accepted in (r.post_data or "")):
        offer.get_by_role("button", name="Chat with us").click()
    page.locator("#chat").wait_for(state="visible")
    assert page.locator(".mj-offer").count() == 0
    # A third failure is not a second one after the offer: nothing more (one a person a day).
    pay(page, 2)
    page.wait_for_timeout(300)
    assert page.locator(".mj-offer").count() == 0
    # The agent's view: the failures and the offer the customer took.
    seen = context_of(collector, keys, who, lambda c: c["last_intervention"] is not None
                      and c["last_intervention"]["event"] == "intervention_accepted")
    failed = [a for a in seen["recent"] if a["moment"] == "card_payment" and a["outcome"] == "failed"]
    assert len(failed) >= 2
    assert seen["last_intervention"]["intervention"] == RULE
    assert seen["last_intervention"]["offer"] == "chat"
    context.close()


def test_the_holdout_sees_nothing_and_is_recorded(shop, browser):  # noqa: F811
    origin, collector, keys = shop
    who = user(held=True)
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{origin}/pay.html?user={who}")
    page.wait_for_function("window.mj && mj._cfg !== null")
    pay(page, 2)
    page.wait_for_timeout(500)
    assert page.locator(".mj-offer").count() == 0
    seen = context_of(collector, keys, who, lambda c: c["last_intervention"] is not None)
    assert seen["last_intervention"]["event"] == "intervention_held"
    context.close()
