"""Live answers while the collector takes events: analysis latency and staleness.

    python benchmarks/live.py --events 10000000 [--rate 2000] [--seconds 120] [--keep DIR]
    python benchmarks/live.py --events 1000000 --rate 50000 --seconds 600 --connections 8 \
        --batch 500          # the soak

Prepares a workspace of ``--events`` generated events (``benchmarks/run.py``'s cached file;
``--keep`` reuses its folder), refreshes its derived tables, then starts ``microjourney
serve`` on it (127.0.0.1, a free port) and, for ``--seconds``:

* sends ``--rate`` track events per second to ``POST /v1/batch`` in batches of ``--batch``
  (events of 5,000 persons already in the store, or with ``--people new`` of new visitors
  of 20 events each, a little after the end of the data), over
  ``--connections`` keep-alive connections, paced by the clock; every request must be
  answered 200 with all its events accepted;
* asks ``GET /v1/analyses/scorecard`` and ``GET /v1/analyses/funnel?moment=card_payment``
  in turn over a second connection, one every ``--ask-every`` seconds (a few dashboards'
  worth; 0: as fast as they answer).

Prints the events/s sent, the collector's request latency (p50, p99, max), each
analysis's latency (p50, p95, p99, max), the staleness its answers reported
(``meta.stale_s``: median, p95, max, and p95 and max after the first minute), the
refreshes seen (distinct ``meta.refreshed_at``), the server's resident memory (sampled each
second: at one minute, at most after it, the peak of each whole minute and the growth from
the second minute's peak to the last's) and peak, and checks afterwards that
the store holds each sent event once. Targets (issue
"derived tables that stay fresh"): p95 ≤ 300 ms and staleness ≤ 5 s at 2,000 events/s on
10M events; the soak: 10 minutes at 50,000 events/s, resident memory flat after the first
minute (within 10%), collector p99 ≤ 100 ms, every answered event stored once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).with_name("microjourney")
#: This run's mark in its event ids: a store reused by several runs holds each run's events.
RUN = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
#: A person's events, in turn: a checkout that ends with its payment, then a look around.
#: (Each person's events once took every third name in turn, so half of them never paid and
#: their one attempt grew all run long, which every refresh cut again.)
NAMES = ("checkout_payment_opened", "payment_gateway_loaded", "card_details_entered",
         "payment_succeeded", "click", "page_viewed")


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: str,
                   payload: bytes = b"") -> tuple[bytes, bytes]:
    from collector import read_response

    writer.write(head.encode() + payload)
    return await read_response(reader)


#: One track call; filled in by text formatting, as cheap as the load allows (the load
#: generator shares the server's two cores: building the calls as dicts and encoding them
#: took a quarter of the machine at 50k events/s).
CALL = ('{"type":"track","event_id":"live-%s-%d-%d","event":"%s","timestamp":"%s.%03dZ",'
        '"anonymous_id":%s,%s"channel":"web","properties":{"valid":true,"x":10,"y":10}}')


class _SecondsText(dict[int, str]):
    """A second since the epoch -> its ISO text without the fraction (each made once)."""

    def __missing__(self, second: int) -> str:
        text = self[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return text


def _encoded(people: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """Each person's anonymous id and ``"user_id":…,`` member (or nothing) as JSON text."""
    return [(json.dumps(a), f'"user_id":{json.dumps(u)},' if u else "") for a, u in people]


def _body(lane: int, first: int, batch: int, rate: float, start_ms: int,
          people: list[tuple[str, str]], new: bool, seconds_text: _SecondsText) -> bytes:
    """The JSON body of ``batch`` track calls from the lane's call ``first`` on: of new
    visitors (20 events each), or of the store's persons in turn (``people``: encoded by
    :func:`_encoded`). Each person's events go through :data:`NAMES` in order, so each of
    their checkouts ends with its payment."""
    calls = []
    for i in range(first, first + batch):
        if new:
            (anonymous, user), nth = (f'"new-{lane}-{i // 20}"', ""), i % 20
        else:
            (anonymous, user), nth = people[i % len(people)], i // len(people)
        second, ms = divmod(start_ms + int(i * 1000 // rate), 1000)
        calls.append(CALL % (RUN, lane, i, NAMES[nth % len(NAMES)], seconds_text[second], ms,
                             anonymous, user))
    return ('{"batch":[' + ",".join(calls) + "]}").encode()


async def send(host: str, port: int, key: str, people: list[tuple[str, str | None]], start: datetime,
               rate: float, batch: int, seconds: float, failures: list[str], latencies: list[float],
               lane: int, new: bool) -> int:
    """Paced batches of track events until ``seconds`` pass; returns the events sent."""
    reader, writer = await asyncio.open_connection(host, port)
    sent, t0 = 0, time.perf_counter()
    start_ms, seconds_text, encoded = round(start.timestamp() * 1000), _SecondsText(), _encoded(people)
    try:
        while (elapsed := time.perf_counter() - t0) < seconds:
            due = int(elapsed * rate) + batch
            if sent >= due:
                await asyncio.sleep(batch / rate / 4)
                continue
            payload = _body(lane, sent, batch, rate, start_ms, encoded, new, seconds_text)
            head = (f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
            asked = time.perf_counter()
            status, answer = await _request(reader, writer, head, payload)
            latencies.append(time.perf_counter() - asked)
            if b" 200 " not in status or b'"rejected":[]' not in answer:
                failures.append(status.decode().strip() + " " + answer[:200].decode())
            sent += batch
    finally:
        writer.close()
    return sent


async def ask(host: str, port: int, key: str, stop: asyncio.Event, seen: dict[str, list],
              failures: list[str], every: float) -> None:
    """Scorecard and funnel in turn, one every ``every`` seconds (0: as fast as they
    answer), until ``stop``: (latency s, stale_s, refreshed_at, when asked)."""
    reader, writer = await asyncio.open_connection(host, port)
    paths = {"scorecard": "/v1/analyses/scorecard",
             "funnel": "/v1/analyses/funnel?moment=card_payment"}
    try:
        while not stop.is_set():
            for name, path in paths.items():
                head = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                        f"Authorization: Bearer {key}\r\n\r\n")
                t0 = time.perf_counter()
                status, answer = await _request(reader, writer, head)
                took = time.perf_counter() - t0
                if b" 200 " not in status:
                    failures.append(f"{name}: {status.decode().strip()} {answer[:200].decode()}")
                    continue
                meta = json.loads(answer)["meta"]
                seen[name].append((took, meta["stale_s"], meta["refreshed_at"], time.perf_counter()))
                await asyncio.sleep(max(0.0, every - took))
    finally:
        writer.close()


async def run(host: str, port: int, keys: dict, people: list, start: datetime, args: argparse.Namespace,
              pid: int) -> tuple[int, dict[str, list], list[str], list[float], list[tuple[float, int]]]:
    failures: list[str] = []
    seen: dict[str, list] = {"scorecard": [], "funnel": []}
    latencies: list[float] = []
    rss: list[tuple[float, int]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        t0 = time.perf_counter()
        while not stop.is_set():
            rss.append((time.perf_counter() - t0, _rss_kib(pid)))
            await asyncio.sleep(1)

    asker = asyncio.create_task(ask(host, port, keys["secret_key"], stop, seen, failures, args.ask_every))
    sampler = asyncio.create_task(sample())
    lanes = args.connections
    sent = sum(await asyncio.gather(*(
        send(host, port, keys["write_key"], people[k::lanes], start, args.rate / lanes, args.batch,
             args.seconds, failures, latencies, k, args.people == "new") for k in range(lanes))))
    stop.set()
    await asker
    await sampler
    return sent, seen, failures, latencies, rss


def _rss_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def _q(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rate", type=int, default=2000, help="events per second sent")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--connections", type=int, default=1, help="sending connections")
    ap.add_argument("--people", choices=("stored", "new"), default="stored",
                    help="send events of 5,000 persons of the store, or of new visitors (20 each)")
    ap.add_argument("--memory-limit", help="the workspace's engine.memory_limit while served (e.g. 4GB)")
    ap.add_argument("--ask-every", type=float, default=0.25,
                    help="seconds between two analysis requests (0: as fast as they answer)")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--keep", help="workspace folder to reuse (ingested once)")
    ap.add_argument("--log-level", choices=("warning", "info"), default="warning",
                    help="the server's --log-level (info: each refresh's time, on stderr)")
    ap.add_argument("--record", action="store_true", help="append to benchmarks/results.jsonl")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from run import prepared
    from scratch import scratch

    _, root = prepared(args.events, args.seed, args.keep, "mj-live-")
    # On a copy of a kept workspace, so that it stays at the events it was ingested with.
    with scratch(root, args.keep, "mj-live-") as copy:
        return _measure(copy, args)


def _measure(root: Path, args: argparse.Namespace) -> int:
    """Serve ``root``, send to it and ask it while it refreshes; print what was seen."""
    from collector import peak_kib

    import microjourney as mj

    with mj.open(root) as ws:
        ws.refresh(frictions=True)  # as the server keeps them
        before = ws.con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        people = ws.con.execute("SELECT anonymous_id, any_value(user_id) FROM events "
                                "GROUP BY anonymous_id ORDER BY hash(anonymous_id) LIMIT 5000").fetchall()
        end = ws.con.execute("SELECT max(timestamp) FROM events").fetchall()[0][0]
    spec = root / "microjourney.yaml"
    text = spec.read_text(encoding="utf-8")
    if args.memory_limit:  # for this run only; put back after
        spec.write_text(text + f"\nengine: {{memory_limit: {args.memory_limit}}}\n", encoding="utf-8")
    keys = json.loads(subprocess.run([BIN, "keys", "-w", root, "--json"], check=True,
                                     capture_output=True, text=True).stdout)
    server = subprocess.Popen([BIN, "serve", "-w", root, "--port", "0", "--log-level", args.log_level],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[-1]  # type: ignore[union-attr]
        host, port = url.removeprefix("http://").split(":")
        t0 = time.perf_counter()
        sent, seen, failures, latencies, rss = asyncio.run(run(host, int(port), keys, people,
                                                               end + timedelta(minutes=1), args,
                                                               server.pid))
        wall = time.perf_counter() - t0
        peak = peak_kib(server.pid) / 1024
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
        spec.write_text(text, encoding="utf-8")
    with mj.open(root) as ws:
        stored, ids = ws.con.execute("SELECT count(*), count(DISTINCT event_id) FROM events "
                                     "WHERE starts_with(event_id, ?)", [f"live-{RUN}-"]).fetchall()[0]
        total = ws.con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    if stored != sent or ids != sent or total != before + sent:
        failures.append(f"the store holds {stored} sent events ({ids} distinct) of {sent}")
    result: dict = {"benchmark": "live", "events": args.events, "rate": args.rate,
                    "sent": sent, "events_per_s": round(sent / wall), "seconds": round(wall, 1),
                    "server_peak_mib": round(peak), "failures": len(failures),
                    "first_failure": failures[0] if failures else None}
    if latencies:
        took = [x * 1000 for x in latencies]
        result["collector"] = {"requests": len(took), "p50_ms": round(_q(took, 0.5), 1),
                               "p99_ms": round(_q(took, 0.99), 1), "max_ms": round(max(took), 1)}
    after = [k for t, k in rss if t >= 60]
    if after:
        # Each refresh takes memory and gives it back, so one sample depends on when it is
        # taken: the peak of each whole minute, and the growth from the second's to the last's.
        peaks = [max(k for t, k in rss if m * 60 <= t < (m + 1) * 60) / 1024
                 for m in range(int(rss[-1][0] // 60))]
        result["rss_mib"] = {"at_1_min": round(after[0] / 1024), "max_after": round(max(after) / 1024),
                             "peak_by_minute": [round(p) for p in peaks]}
        if len(peaks) >= 3:
            result["rss_mib"]["growth_after_1_min"] = round(peaks[-1] / peaks[1] - 1, 3)
    for name, rows in seen.items():
        took = [r[0] * 1000 for r in rows]
        stale = [r[1] for r in rows]
        if not rows:
            continue
        result[name] = {"answers": len(rows), "p50_ms": round(_q(took, 0.5)),
                        "p95_ms": round(_q(took, 0.95)), "p99_ms": round(_q(took, 0.99)),
                        "max_ms": round(max(took)), "stale_median_s": round(statistics.median(stale), 1),
                        "stale_p95_s": round(_q(stale, 0.95), 1),
                        "stale_max_s": round(max(stale), 1), "refreshes_seen": len({r[2] for r in rows})}
        # After the first minute: without the first refresh that takes in events, which
        # compiles the refresh's statements (once per server process).
        later = [r[1] for r in rows if r[3] - t0 >= 60]
        if later:
            result[name].update(stale_p95_after_1_min_s=round(_q(later, 0.95), 1),
                                stale_max_after_1_min_s=round(max(later), 1))
    result.update(date=datetime.now(UTC).isoformat(timespec="seconds"), machine=platform.node())
    print(json.dumps(result, indent=2))
    if args.record:
        with (HERE / "results.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(result) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
