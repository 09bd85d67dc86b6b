"""The browser SDK end to end: Chromium on a test page → the real collector → the store.

The test page is served from its own origin (a `http.server` on 127.0.0.1), loads the
SDK from the collector's `/sdk/microjourney.js` and sends across origins, as a shop
would. Debian's Chromium is used; no browser is downloaded.
"""

from __future__ import annotations

import functools
import json
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import microjourney as mj

from .live_server import LiveServer, make_workspace

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SECRET = "4111-SECRET-xyzzy-9876"  # typed into a field: must never reach the store

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Checkout</title></head>
<body>
<h1>Checkout</h1>
<form id="pay" onsubmit="event.preventDefault()">
  <input id="email" name="email" type="email" required>
  <input id="card" name="card_number" pattern="[0-9]{16}" required>
  <button id="pay-button" type="submit">Pay</button>
</form>
<button id="go" class="btn primary">Continue</button>
<p id="static">Just some text.</p>
<button id="broken" onclick="brokenHandler()">Broken</button>
<script>function brokenHandler() { throw new Error('boom in handler'); }</script>
<script src="COLLECTOR/sdk/microjourney.js"></script>
<script>SETUP</script>
</body></html>
"""

JOURNEYS = ("[{name: shop, moments: [{name: checkout, start: {event: page_viewed}, "
            "complete: {event: checkout_done}, timeout: 30m}]}]")


BEACON_LOG = """
const send = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, data) => {
  const ok = send(url, data);
  const log = JSON.parse(localStorage.getItem('test_beacons') || '[]');
  log.push({url, data: String(data), ok});
  localStorage.setItem('test_beacons', JSON.stringify(log));
  return ok;
};
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class Site:
    """A test page server on its own origin, and a workspace whose collector allows that origin."""

    def __init__(self, tmp: Path, server: str = "", sections: str = "") -> None:
        self.pages = tmp / "pages"
        self.pages.mkdir()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0),
                                         functools.partial(_Quiet, directory=str(self.pages)))
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.root = tmp / "ws"
        more = f", {server}" if server else ""  # further settings of the `server:` section
        self.keys = make_workspace(self.root, server=f'{{cors_origins: ["{self.origin}"]{more}}}',
                                   journeys=JOURNEYS)
        if sections:  # further sections of microjourney.yaml
            with (self.root / "microjourney.yaml").open("a", encoding="utf-8") as f:
                f.write(sections)
        self.collector = LiveServer(self.root).start()

    def page(self, name: str, setup: str, body: str = PAGE) -> str:
        """Write a page whose script runs ``setup`` (``KEY`` and ``COLLECTOR`` filled in)."""
        text = body.replace("SETUP", setup).replace("COLLECTOR", self.collector.url)
        (self.pages / name).write_text(text.replace("KEY", self.keys["write_key"]), encoding="utf-8")
        return f"{self.origin}/{name}"

    def events(self) -> list[dict]:
        """Stop the collector (SIGTERM: it flushes) and read the stored events."""
        # uvicorn re-raises the SIGTERM once it has shut down gracefully
        assert self.collector.stop() in (0, -signal.SIGTERM), self.collector.log.read_text(errors="replace")
        with mj.open(self.root) as ws:
            rows = ws.con.execute(
                "SELECT event_id, event, epoch_ms(timestamp) AS ms, anonymous_id, user_id, channel, "
                "session_id, properties, context FROM events ORDER BY timestamp, seq").fetchall()
        names = ("event_id", "event", "ms", "anonymous_id", "user_id", "channel", "session_id")
        return [dict(zip(names, r[:7], strict=True), properties=json.loads(r[7] or "{}"),
                     context=json.loads(r[8] or "{}")) for r in rows]

    def close(self) -> None:
        self.collector.stop()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browsers are never downloaded")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


@pytest.fixture
def tab(browser):
    context = browser.new_context()
    page = context.new_page()
    page.warnings = []  # the SDK's console warnings (rejected calls, refused batches)
    page.on("console", lambda m: "microjourney" in m.text and page.warnings.append(m.text))
    # Playwright does not see beacons sent while a page unloads: record them in the page's origin.
    context.add_init_script(BEACON_LOG)
    yield page
    context.close()


def open_page(tab, url: str) -> None:
    tab.goto(url)
    tab.wait_for_function("window.microjourney && window.microjourney._cfg !== null")


def flush(tab) -> None:
    tab.evaluate("mj.flush()")
    tab.wait_for_function("mj._queue.length === 0 && !mj._flushing", timeout=10_000)


def test_autocapture_end_to_end(site, tab):
    url = site.page("checkout.html", "mj.init({host: 'COLLECTOR', key: 'KEY', flushInterval: 200});")
    open_page(tab, url)
    assert tab.evaluate("window.mj === window.microjourney")
    anonymous_id = tab.evaluate("mj.anonymousId")
    tab.locator("#go").click(click_count=3)  # a rage click: three clicks in a burst
    tab.click("#static")  # nothing there reacts: a dead click
    tab.locator("#card").press_sequentially(SECRET)
    tab.click("#pay-button")  # the e-mail is missing and the card fails its pattern
    tab.click("#broken")  # a JavaScript error
    tab.evaluate("mj.identify('user-42', {plan: 'gold'})")
    tab.evaluate("history.pushState({}, '', '/receipt')")
    tab.evaluate("mj.track('checkout_done', {total: 12})")
    flush(tab)
    assert tab.warnings == []
    assert tab.evaluate("localStorage.getItem('mj_anonymous_id')") == anonymous_id

    events = site.events()
    assert {e["anonymous_id"] for e in events} == {anonymous_id}
    assert {e["channel"] for e in events} == {"web"}
    assert len({e["session_id"] for e in events}) == 1 and events[0]["session_id"]
    assert len({e["event_id"] for e in events}) == len(events)

    def by(name: str) -> list[dict]:
        return [e for e in events if e["event"] == name]

    assert [e["properties"]["page"] for e in by("page_viewed")] == ["/checkout.html", "/receipt"]
    assert by("page_viewed")[0]["properties"]["title"] == "Checkout"

    clicks = by("click")
    rage = [c for c in clicks if c["properties"]["target"] == "button#go"]
    assert len(rage) == 3
    for c in rage:
        assert isinstance(c["properties"]["x"], int | float) and isinstance(c["properties"]["y"], int | float)
        assert "dead" not in c["properties"]
    assert rage[-1]["ms"] - rage[0]["ms"] < 1000
    assert {(c["properties"]["x"], c["properties"]["y"]) for c in rage} == {
        (rage[0]["properties"]["x"], rage[0]["properties"]["y"])}
    dead = [c for c in clicks if c["properties"]["target"] == "p#static"]
    assert len(dead) == 1 and dead[0]["properties"]["dead"] is True

    edited = by("field_edited")
    assert [(e["properties"]["field"], e["properties"]["edits"]) for e in edited] == [
        ("card_number", len(SECRET))]
    assert edited[0]["properties"]["dwell_ms"] >= 0
    invalid = {(e["properties"]["field"], e["properties"]["reason"]) for e in by("error_shown")}
    assert invalid == {("email", "valueMissing"), ("card_number", "patternMismatch")}
    assert all(e["properties"]["valid"] is False for e in by("error_shown"))

    (error,) = by("js_error")
    assert "boom in handler" in error["properties"]["message"] and len(error["properties"]["message"]) <= 200
    assert error["properties"]["source"].startswith(f"{site.origin}/checkout.html:")
    assert "stack" not in error["properties"]

    (done,) = by("checkout_done")
    assert done["user_id"] == "user-42" and done["properties"]["total"] == 12
    assert by("page_viewed")[1]["user_id"] == "user-42"  # identified from then on
    assert {c["user_id"] for c in clicks} == {None}

    # The typed value is nowhere: not in any table, not in any file of the workspace.
    with mj.open(site.root) as ws:
        tables = [t for (t,) in ws.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'").fetchall()]
        for table in tables:
            (hits,) = ws.con.execute(
                f'SELECT count(*) FROM "{table}" AS t WHERE CAST(t AS VARCHAR) LIKE ?',
                [f"%{SECRET[5:11]}%"]).fetchall()[0]
            assert hits == 0, table
        # The events are useful: the friction detectors find the rage click, the dead click
        # and the validation errors.
        kinds = set(ws.frictions("checkout").to_pandas()["kind"])
    assert {"rage_click", "dead_click", "error_shown"} <= kinds
    for f in site.root.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def test_consent_refused_sends_nothing(site, tab):
    url = site.page("no.html", "mj.init({host: 'COLLECTOR', key: 'KEY', flushInterval: 100});"
                               "mj.consent({analytics: false});")
    batches = []
    tab.on("request", lambda r: "/v1/batch" in r.url and batches.append(r.url))
    open_page(tab, url)
    tab.click("#go")
    tab.locator("#card").press_sequentially("1234")
    tab.click("#static")
    tab.evaluate("mj.track('something', {a: 1}); mj.identify('user-1')")
    flush(tab)
    tab.wait_for_timeout(300)
    assert tab.evaluate("localStorage.getItem('mj_anonymous_id')") is None  # nothing kept about them
    # Leaving the page sends no beacon either, and the next page remembers the choice.
    open_page(tab, site.page("after.html", "mj.init({host: 'COLLECTOR', key: 'KEY', flushInterval: 100});"))
    tab.evaluate("mj.track('on_the_next_page')")
    flush(tab)
    tab.wait_for_timeout(300)
    assert batches == []
    assert tab.evaluate("localStorage.getItem('test_beacons')") is None
    assert tab.evaluate("localStorage.getItem('mj_consent')") == "false"
    assert site.events() == []


def test_consent_required_then_given(site, tab):
    url = site.page("yes.html", "mj.init({host: 'COLLECTOR', key: 'KEY', requireConsent: true});"
                                "mj.track('before_consent');")
    open_page(tab, url)
    tab.click("#go")
    assert tab.evaluate("mj._queue.length") == 0  # nothing is even queued before consent
    tab.evaluate("mj.consent({analytics: true}); mj.track('after_consent')")
    tab.click("#go")
    flush(tab)
    events = site.events()
    assert [e["event"] for e in events] == ["page_viewed", "after_consent", "click"]
    assert all(e["context"]["consent"] == {"analytics": True} for e in events)


def test_beacon_when_the_page_is_left(site, tab):
    url = site.page("beacon.html", "mj.init({host: 'COLLECTOR', key: 'KEY', flushInterval: 600000, "
                                   "batchSize: 100});")
    open_page(tab, url)
    tab.evaluate("for (let i = 0; i < 3; i++) mj.track('queued', {n: i})")
    assert tab.evaluate("mj._queue.length") == 4  # the page view and three events, unsent
    tab.goto(site.page("next.html", ""))  # pagehide / visibilitychange: sendBeacon
    beacons = tab.evaluate("JSON.parse(localStorage.getItem('test_beacons') || '[]')")
    assert [(b["url"], b["ok"]) for b in beacons] == [(f"{site.collector.url}/v1/batch", True)]
    body = json.loads(beacons[0]["data"])  # a string: sent as text/plain, so no preflight
    assert body["key"] == site.keys["write_key"] and len(body["batch"]) == 4
    tab.wait_for_timeout(500)
    events = site.events()
    assert [e["event"] for e in events] == ["page_viewed", "queued", "queued", "queued"]
    assert [e["properties"].get("n") for e in events[1:]] == [0, 1, 2]


def test_other_origins_are_refused(site, tab):
    url = site.page("elsewhere.html", "mj.init({host: 'COLLECTOR', key: 'KEY', flushInterval: 100,"
                                      " maxRetries: 0});")
    open_page(tab, url.replace("127.0.0.1", "localhost"))  # another origin than the one allowed
    tab.evaluate("mj.track('from_elsewhere')")
    tab.evaluate("mj.flush()")
    tab.wait_for_function("mj._queue.length === 0", timeout=10_000)  # dropped: no retries allowed
    # A beacon needs no preflight: the collector itself must refuse the origin.
    tab.evaluate("mj.track('beacon_from_elsewhere'); mj._beacon()")
    assert [b["ok"] for b in tab.evaluate("JSON.parse(localStorage.getItem('test_beacons'))")] == [True]
    tab.wait_for_timeout(500)
    assert site.events() == []


# The SDK's own back-off before its first retry: 500 ms +-25 % (microjourney.js, _retry).
SDK_FIRST_BACKOFF_MS = 625


@pytest.fixture
def limited_site(tmp_path: Path) -> Iterator[Site]:
    """One request every 2 s per key and no burst beyond it: once another client of the key
    has taken the token, the page's flush is answered 429 with Retry-After: 2."""
    s = Site(tmp_path, server="rate_limit: 0.5, burst: 1")
    yield s
    s.close()


def test_retry_after_is_honoured(limited_site, tab):
    # The page is on another origin than the collector: the SDK reads Retry-After only
    # because CORS exposes it (Access-Control-Expose-Headers).
    site = limited_site
    posts, finished = [], []
    tab.on("request", lambda r: r.method == "POST" and "/v1/batch" in r.url and posts.append(r))
    tab.on("requestfinished", lambda r: r.method == "POST" and "/v1/batch" in r.url
           and finished.append(r))
    tab.on("requestfailed", lambda r: r.method == "POST" and "/v1/batch" in r.url
           and finished.append(r))
    open_page(tab, site.page("limited.html", "mj.init({host: 'COLLECTOR', key: 'KEY', "
                                             "flushInterval: 600000});"))
    tab.evaluate("mj.track('checkout_done', {total: 12})")
    ids = tab.evaluate("mj._queue.map(c => c.event_id)")  # the page view and the track
    assert len(ids) == 2 and posts == []
    backend_id = str(uuid.uuid4())
    with site.collector.client(site.keys["write_key"]) as http:
        taken = http.post("/v1/batch", json={"batch": [{
            "event": "from_the_backend", "event_id": backend_id, "anonymous_id": "backend-1",
            "timestamp": "2026-01-05T10:00:00+00:00"}]})
    assert taken.status_code == 200 and taken.json()["accepted"] == 1, taken.text
    tab.evaluate("mj.flush()")  # resolves once the retry is scheduled
    tab.wait_for_function("mj._queue.length === 0 && !mj._flushing && !mj._retryTimer",
                          timeout=15_000)
    deadline = time.monotonic() + 10
    while len(finished) < len(posts) and time.monotonic() < deadline:
        tab.wait_for_timeout(50)  # Playwright's events arrive while it is called

    assert len(posts) >= 2 and posts[0].response().status == 429
    refused, retry = posts[:2]
    # What the page saw: the server's Retry-After, exposed to it by CORS.
    headers = refused.response().headers
    assert headers["access-control-allow-origin"] == site.origin
    assert "retry-after" in headers["access-control-expose-headers"].lower().split(", ")
    retry_after_ms = int(headers["retry-after"]) * 1000
    assert retry_after_ms > SDK_FIRST_BACKOFF_MS
    # The retry came no earlier than Retry-After after the 429's headers arrived (so not
    # after the SDK's own back-off), and not much later either. From the headers, not the
    # body's end: fetch() resolves with the headers, and the SDK schedules the retry then;
    # under load the body's end came 56 ms later and the retry looked early.
    assert refused.timing["responseStart"] > 0 and retry.timing["startTime"] > 0
    answered = refused.timing["startTime"] + refused.timing["responseStart"]
    waited = retry.timing["startTime"] - answered
    # (20 ms for the browser's wall clock, which startTime is read from)
    assert retry_after_ms - 20 <= waited < retry_after_ms + 5000, (waited, retry_after_ms)
    assert [p.response().status for p in posts] == [429, 200]  # one retry, and it was accepted
    # The same batch, the same event ids; the refused attempt stored nothing.
    assert [c["event_id"] for c in refused.post_data_json["batch"]] == ids
    assert [c["event_id"] for c in retry.post_data_json["batch"]] == ids
    assert retry.response().json()["accepted"] == 2 and retry.response().json()["duplicates"] == 0
    assert tab.warnings == []

    events = site.events()
    assert Counter(e["event_id"] for e in events) == Counter([*ids, backend_id])  # each once
    assert sorted(e["event"] for e in events) == ["checkout_done", "from_the_backend", "page_viewed"]


EXPERIMENTS = "experiments: [{name: copy, moment: checkout, variants: [{name: a}, {name: b}, {name: c}]}]\n"


@pytest.fixture
def experiment_site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, sections=EXPERIMENTS)
    yield s
    s.close()


def test_variant_and_its_exposure(experiment_site, tab):
    from microjourney.spec.experiments import Experiment

    site = experiment_site
    copy = Experiment(name="copy", moment="checkout", variants=[{"name": n} for n in "abc"])
    exposures = []
    tab.on("request", lambda r: "/v1/exposures" in r.url and exposures.append(r.post_data))
    open_page(tab, site.page("exp.html", "mj.init({host: 'COLLECTOR', key: 'KEY', autocapture: false});"))
    anonymous = tab.evaluate("mj.anonymousId")
    # The collector's assignment is Experiment.variant_of of the page's id; asked once a page view.
    want = copy.variant_of(anonymous)
    assert tab.evaluate("mj.variant('copy')") == want
    assert tab.evaluate("mj.variant('copy') === mj.variant('copy')") is True
    assert tab.evaluate("mj.variant('nope')") is None  # unknown: the page shows its default
    assert tab.evaluate(f"mj.exposed('copy', '{want}')") is True
    assert tab.evaluate(f"mj.exposed('copy', '{want}')") is True  # once a page view
    assert len(exposures) == 1 and json.loads(exposures[0])["anonymous_id"] == anonymous
    events = [e for e in site.events() if e["event"] == "experiment_exposure"]
    assert [(e["anonymous_id"], e["properties"]) for e in events] == [
        (anonymous, {"experiment": "copy", "variant": want})]
