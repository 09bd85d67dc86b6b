"""p95 latency of ``GET /v1/decide`` with interventions while events arrive at 2,000 events/s
(docs/interventions.md, "Benchmark").

A fresh workspace with intervention rules is served by ``microjourney serve`` on 127.0.0.1;
one thread posts batches of 20 events every 10 ms (2,000 events/s: persons opening a
payment, failing, clicking), another asks decide after an event as the SDK does, one
request at a time. Bounded: ``--seconds`` (default 10) of sending, at most ``--decides``
decides. Prints the decide latencies (p50, p95, p99, max), the events sent and stored, the
offers made, and whether the target (p95 ≤ 20 ms) is met.

    python benchmarks/decide_interventions.py [--seconds 10] [--decides 5000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

import microjourney as mj

SPEC = """\
server: {rate_limit: 100000, burst: 100000}
journeys:
  - name: shop
    moments:
      - name: pay
        start: {event: pay_opened}
        steps: [{event: card_entered}]
        complete: {event: paid}
        fail: {event: pay_failed}
interventions:
  - {name: pay_help, moment: pay, when: {signal: failure, count: 2}, offer: help, text: Declined twice?,
     holdout: 10}
  - {name: rage_chat, moment: pay, when: {signal: rage_click}, offer: chat, text: Need a hand?}
  - {name: errors, moment: pay, when: {signal: error_shown, count: 2}, offer: callback, text: Call you?}
"""
#: What each person does, in turn.
SCRIPT = ["pay_opened", "card_entered", "pay_failed", "pay_opened", "click", "click", "click",
          "error_shown", "pay_failed", "paid"]
TARGET_MS = 20.0


def serve(root: Path) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).parent / "microjourney"
    proc = subprocess.Popen([str(exe), "serve", "-w", str(root), "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "listening on " in line:
            return proc, line.split("listening on ", 1)[1].strip()
    raise RuntimeError("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--decides", type=int, default=5_000)
    parser.add_argument("--rate", type=int, default=2_000, help="events per second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        mj.init(root).close()
        (root / "microjourney.yaml").write_text(SPEC, encoding="utf-8")
        key = mj.workspace.keys(root).write_key
        proc, url = serve(root)
        try:
            run(url, key, args)
        finally:
            proc.terminate()
            proc.wait(30)


def run(url: str, key: str, args: argparse.Namespace) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    stop = threading.Event()
    sent = [0]
    last: dict[str, tuple[str, str, str]] = {}  # the latest event of a person: (person, event, id)
    ids = itertools.count()

    def send() -> None:
        per_batch, tick = 20, 20 / args.rate
        persons = itertools.count()
        steps: dict[str, int] = {}
        active: list[str] = []
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            t_next = time.perf_counter()
            while not stop.is_set():
                calls = []
                for _ in range(per_batch):
                    if len(active) < 200:
                        active.append(f"bench-{next(persons)}")
                    who = active[next(ids) % len(active)]
                    n = steps.get(who, 0)
                    event = SCRIPT[n]
                    steps[who] = n + 1
                    if n + 1 == len(SCRIPT):
                        active.remove(who)
                        steps.pop(who)
                    eid = f"b{next(ids)}"
                    calls.append({"type": "track", "event": event, "event_id": eid, "anonymous_id": who,
                                  "timestamp": datetime.now(UTC).isoformat(),
                                  "properties": {"selector": "#pay"} if event == "click" else {}})
                    last["x"] = (who, event, eid)
                r = c.post("/v1/batch", json={"batch": calls})
                r.raise_for_status()
                sent[0] += len(calls)
                t_next += tick
                time.sleep(max(0.0, t_next - time.perf_counter()))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    time.sleep(0.5)
    latencies, offers, held = [], 0, 0
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        deadline = time.perf_counter() + args.seconds
        while time.perf_counter() < deadline and len(latencies) < args.decides:
            who, event, eid = last["x"]
            t0 = time.perf_counter()
            r = c.get("/v1/decide", params={"event": event, "anonymous_id": who, "event_id": eid})
            latencies.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
            body = r.json()
            offers += body["intervention"] is not None
            held += "holdout" in body["intervention_refused"].values()
            time.sleep(0.002)
    stop.set()
    sender.join(30)
    lat = np.array(latencies)
    p50, p95, p99 = np.percentile(lat, [50, 95, 99])
    elapsed = args.seconds + 0.5
    print(json.dumps({
        "benchmark": "decide_interventions", "events_sent": sent[0],
        "events_per_s": round(sent[0] / elapsed), "decides": len(lat), "offers": offers, "held_out": held,
        "decide_ms": {"p50": round(p50, 2), "p95": round(p95, 2), "p99": round(p99, 2),
                      "max": round(float(lat.max()), 2)},
        "target_p95_ms": TARGET_MS, "met": bool(p95 <= TARGET_MS)}, indent=2))


if __name__ == "__main__":
    main()
