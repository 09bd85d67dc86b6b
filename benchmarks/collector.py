"""HTTP ingest benchmark: the collector under a bounded load on loopback.

    python benchmarks/collector.py [--events 2000000] [--batch 100] [--connections 32]

Starts ``microjourney serve`` on a fresh workspace (127.0.0.1, a free port), then sends
``--events`` track events in batches of ``--batch`` over ``--connections`` keep-alive
connections from one asyncio process (the load generator shares the machine's cores with
the server). Every request must be answered 200 with all its events accepted, and the store
must then hold each event once. Prints events/s answered, request latency (p50, p99, max),
the server's peak memory, events/s stored (until the stopped server has stored every
answered event: the journal's last events are stored after their answer), and the DuckDB
floor: the same events inserted as one Arrow table into a DuckDB file, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).with_name("microjourney")

EVENT = ('{"type":"track","event_id":"e-%d","event":"%s","timestamp":"2026-11-%02dT%02d:%02d:%02d.%03dZ",'
         '"user_id":"u-%d","channel":"web","session_id":"s-%d",'
         '"properties":{"page":"/checkout/payment","x":%d,"y":%d,"valid":true}}')
NAMES = ("page_viewed", "click", "field_edited", "payment_gateway_loaded", "payment_succeeded")


def body(first: int, n: int) -> bytes:
    calls = []
    for i in range(first, first + n):
        calls.append(EVENT % (i, NAMES[i % 5], 1 + i % 28, i % 24, i % 60, (i // 60) % 60, i % 1000,
                              i // 20, i // 50, i % 1280, i % 720))
    return ('{"batch":[' + ",".join(calls) + "]}").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 answer: its status line and its body (by Content-Length)."""
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status_line, await reader.readexactly(length)


async def _client(host: str, port: int, key: str, jobs: asyncio.Queue, latencies: list[float],
                  failures: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST /v1/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n")
    try:
        while True:
            try:
                payload = jobs.get_nowait()
            except asyncio.QueueEmpty:
                return
            start = time.perf_counter()
            writer.write((head % len(payload)).encode() + payload)
            status_line, answer = await read_response(reader)
            latencies.append(time.perf_counter() - start)
            if b" 200 " not in status_line or b'"rejected":[]' not in answer:
                failures.append(status_line.decode().strip() + " " + answer[:200].decode())
    finally:
        writer.close()


async def load(host: str, port: int, key: str, events: int, batch: int, connections: int) -> dict:
    jobs: asyncio.Queue = asyncio.Queue()
    for first in range(0, events, batch):
        jobs.put_nowait(body(first, min(batch, events - first)))
    latencies: list[float] = []
    failures: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(*(_client(host, port, key, jobs, latencies, failures)
                           for _ in range(connections)))
    wall = time.perf_counter() - start
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"events": events, "requests": len(latencies), "wall_s": round(wall, 2),
            "events_per_s": round(events / wall), "p50_ms": round(q(0.5), 1),
            "p99_ms": round(q(0.99), 1), "max_ms": round(latencies[-1] * 1000, 1),
            "failures": len(failures), "first_failure": failures[0] if failures else None}


def floor(events: int, batch: int, where: Path) -> float:
    """Events/s of DuckDB inserting the same events (parsed from the same JSON) in one go."""
    import duckdb
    import orjson
    import pyarrow as pa

    rows = []
    for first in range(0, events, batch):
        rows.extend(orjson.loads(body(first, min(batch, events - first)))["batch"])
    start = time.perf_counter()
    batch_table = pa.table({f: pa.array([r.get(f) if not isinstance(r.get(f), dict) else orjson.dumps(r[f])
                                   .decode() for r in rows], pa.string())
                      for f in ("event_id", "event", "timestamp", "user_id", "channel", "session_id",
                                "properties")})
    con = duckdb.connect(str(where / "floor.duckdb"))
    con.register("batch_table", batch_table)
    con.execute("CREATE TABLE events AS SELECT event_id, CAST(timestamp AS TIMESTAMPTZ) AS timestamp, "
                "event, user_id, channel, session_id, CAST(properties AS JSON) AS properties FROM "
                "batch_table").fetchall()
    con.close()
    return events / (time.perf_counter() - start)


def peak_kib(pid: int) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", text).group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--note", default="")
    ap.add_argument("--no-record", action="store_true", help="do not append to results.jsonl")
    ap.add_argument("--no-floor", action="store_true", help="skip the DuckDB floor (implies --no-record)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mj-http-") as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([BIN, "init", ws], check=True, capture_output=True)
        (ws / "microjourney.yaml").write_text(
            "server: {rate_limit: 1000000, burst: 1000000}\n", encoding="utf-8")
        key = json.loads(subprocess.run([BIN, "keys", "-w", ws, "--json"], check=True,
                                        capture_output=True, text=True).stdout)["write_key"]
        server = subprocess.Popen([BIN, "serve", "-w", ws, "--port", "0"], stdout=subprocess.PIPE,
                                  text=True)
        try:
            line = server.stdout.readline()
            url = line.split()[-1]
            host, port = url.removeprefix("http://").split(":")
            try:
                import uvloop
                uvloop.install()
            except ImportError:
                pass
            result = asyncio.run(load(host, int(port), key, args.events, args.batch, args.connections))
            result["server_peak_mib"] = round(peak_kib(server.pid) / 1024)
        finally:
            # A graceful stop stores whatever the journal still holds: until then, not all
            # answered events are in the events table.
            stop = time.perf_counter()
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        stored_s = result["wall_s"] + time.perf_counter() - stop
        result["stored_events_per_s"] = round(args.events / stored_s)
        import duckdb

        from microjourney.workspace import STORE_DIR, STORE_FILE
        with duckdb.connect(str(ws / STORE_DIR / STORE_FILE), read_only=True) as con:
            rows, ids = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchall()[0]
            result["stored"] = ids
            if rows != args.events or ids != args.events:
                result["failures"] += 1
                result["first_failure"] = result["first_failure"] or "the store does not hold each event once"
        if not args.no_floor:
            result["floor_events_per_s"] = round(floor(min(args.events, 1_000_000), args.batch, Path(tmp)))
            result["floor_ratio"] = round(result["floor_events_per_s"] / result["events_per_s"], 2)
    result.update(batch=args.batch, connections=args.connections, note=args.note,
                  date=datetime.now(UTC).isoformat(timespec="seconds"), machine=platform.node(),
                  cores=os.cpu_count())
    print(json.dumps(result, indent=2))
    if not (args.no_record or args.no_floor):
        with (HERE / "results.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"stage": "http_ingest", **result}) + "\n")


if __name__ == "__main__":
    main()
