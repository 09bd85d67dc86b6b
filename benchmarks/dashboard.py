"""The dashboard's speed on a large workspace: server time per page, a page in Chromium, and
the report's size.

    python benchmarks/dashboard.py --events 10000000 [--keep DIR] [--repeat 20]

On ``benchmarks/run.py``'s cached events and a workspace holding them (``--keep`` reuses
it), starts ``microjourney serve`` on 127.0.0.1, waits for its first refresh, signs in with
the viewer key and times, from this process over loopback:

    each page, first      the portfolio, journeys, data quality, a moment page, its attempt
                          explorer and one attempt: the first request after the refresh
                          (its analyses computed)
    each page, again      ``--repeat`` more requests: the answers kept until the next refresh
    a new filter          each page with a different ``since`` each time (nothing kept):
                          what a person exploring filters waits for
    Chromium              sign-in to the portfolio, and a moment page to its chart drawn
                          (``/usr/bin/chromium``; skipped when absent)
    report                ``microjourney report``: its wall time and file size

and prints p50 and p95 of each against the targets (server time per page ≤ 300 ms p95,
page rendered ≤ 1.5 s, report ≤ 5 MB), with the DuckDB floor (read and sort the events)
from the same run.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MJ = Path(sys.executable).parent / "microjourney"
CHROMIUM = Path("/usr/bin/chromium")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _serve(root: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([str(MJ), "serve", "-w", str(root), "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on " in line:
            return proc, line.split("listening on ", 1)[1].strip()
    raise SystemExit("microjourney serve did not start")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", metavar="DIR", help="workspace folder, ingested once and reused")
    ap.add_argument("--repeat", type=int, default=20, help="requests per page once kept (default 20)")
    ap.add_argument("--filters", type=int, default=5, help="new-filter requests per page (default 5)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    import httpx
    from incremental import _floor
    from run import prepared

    data, root = prepared(args.events, args.seed, args.keep, "mj-dashboard-")
    floor = _floor(data, narrow=False)
    keys = json.loads(subprocess.check_output([str(MJ), "keys", "-w", str(root), "--json"], text=True))
    proc, url = _serve(root)
    rows: list[tuple[str, str]] = []
    try:
        with httpx.Client(base_url=url, timeout=1800, follow_redirects=False) as c:
            while c.get("/healthz").status_code != 200:
                time.sleep(0.5)
            form = c.get("/sign-in").text
            token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
            assert c.post("/sign-in", data={"csrf": token, "key": keys["viewer_key"]}).status_code == 303
            # The first page waits for the server's first refresh (frictions included).
            first_page = time.perf_counter()
            assert c.get("/").status_code == 200
            rows.append(("first refresh + portfolio", f"{time.perf_counter() - first_page:.1f} s"))
            # The highest-ranked moment with attempts, and one of its failed attempts (else any).
            attempt = None
            for moment in re.findall(r'<tr data-moment="([^"]+)"', c.get("/").text):
                for q in ("?outcome=failed", ""):
                    listed = c.get(f"/moments/{moment}/attempts{q}").text
                    found = re.findall(r'href="(/attempts/[^"]+)"', listed)
                    attempt = attempt or (found[0] if found else None)
                if attempt is not None:
                    break
            if attempt is None:
                raise SystemExit("no moment's attempt explorer lists an attempt")
            pages = {"portfolio": "/", "journeys": "/journeys", "data quality": "/data-quality",
                     "moment": f"/moments/{moment}", "attempt explorer": f"/moments/{moment}/attempts",
                     "one attempt": attempt}
            kept_all: list[float] = []
            fresh_all: list[float] = []
            for name, path in pages.items():
                t = time.perf_counter()
                assert c.get(path).status_code == 200, path
                first = time.perf_counter() - t
                kept = []
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    c.get(path)
                    kept.append(time.perf_counter() - t)
                fresh = []
                if name not in ("data quality", "one attempt"):  # these take no filters
                    for k in range(args.filters):
                        since = f"2026-0{1 + k % 9}-0{1 + k % 9}"
                        t = time.perf_counter()
                        c.get(path + ("&" if "?" in path else "?") + f"since={since}")
                        fresh.append(time.perf_counter() - t)
                kept_all += kept
                fresh_all += fresh
                text = f"{_ms(first)} / {_ms(_p(kept, .5))}, {_ms(_p(kept, .95))}"
                if fresh:
                    text += f" / {_ms(_p(fresh, .5))}, {_ms(_p(fresh, .95))}"
                rows.append((f"{name}: first / kept p50, p95 / new filter p50, p95", text))
            rows.append(("every page, kept: p95 (target ≤ 300 ms)", _ms(_p(kept_all, .95))))
            rows.append(("every page, new filter: p95", _ms(_p(fresh_all, .95))))
        if CHROMIUM.exists():
            from playwright.sync_api import sync_playwright

            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
                page = b.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url + "/sign-in")
                page.fill("#key", keys["viewer_key"])
                t = time.perf_counter()
                page.click("button[type=submit]")
                page.wait_for_selector("table.portfolio")
                rows.append(("Chromium: sign-in to portfolio shown", f"{time.perf_counter() - t:.2f} s"))
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    page.goto(f"{url}/moments/{moment}")
                    page.wait_for_selector("#chart-series[data-rendered=true]")
                    times.append(time.perf_counter() - t)
                rows.append(("Chromium: moment page to chart drawn, median (target ≤ 1.5 s)",
                             f"{statistics.median(times):.2f} s"))
                b.close()
    finally:
        proc.terminate()
        proc.wait(60)
    t = time.perf_counter()
    out = root / "report.html"
    subprocess.run([str(MJ), "report", "-w", str(root), "--output", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    rows.append(("report: wall time", f"{time.perf_counter() - t:.1f} s"))
    rows.append(("report: size (target ≤ 5 MB)", f"{out.stat().st_size / 1e6:.2f} MB"))
    rows.append(("floor: read + sort (DuckDB alone)", f"{floor:.2f} s"))
    print(f"dashboard benchmark, {args.events:,} events, workspace {root}")
    for label, value in rows:
        print(f"  {label:<70} {value}")


if __name__ == "__main__":
    main()
