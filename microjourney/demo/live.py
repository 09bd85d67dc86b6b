"""Send events through the collector, as a contact-centre platform would: the demo's HTTP path.

The collector runs as ``microjourney serve`` in a process of its own, on 127.0.0.1 and a
free port: while it runs it holds the store, as it would in production. :class:`Collector`
starts that process early, so that it loads its modules while the caller still works on
the store; :meth:`Collector.start` lets it open the store and serve. :func:`send` sends
every event of a JSON Lines file with the Python client, checks that all were accepted,
and stops the collector with SIGTERM (it commits what is queued and closes the store).
Only the loopback address is ever used.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import orjson

from ..client import Client
from ..errors import MicrojourneyError
from ..workspace import keys

READY = "listening on "
HOST = "127.0.0.1"
#: Calls a request: fewer requests, each well under the collector's limits (5,000 calls,
#: 1 MB; a demo event is about 250 bytes).
BATCH = 2500
#: The collector's process: load everything, wait for the word, then run ``microjourney
#: serve`` with the arguments given. A closed stdin (the caller gone) ends it quietly.
BOOT = """import sys
import microjourney.cli, microjourney.server
if sys.stdin.readline().strip() == "serve":
    sys.argv = ["microjourney", "serve", *sys.argv[1:]]
    microjourney.cli.main()
"""


@dataclass(frozen=True)
class Sent:
    """What :func:`send` delivered."""

    url: str          # where the collector listened
    events: int       # calls sent (= accepted: anything else raises)
    seconds: float    # from the first call queued to the last answer


class Collector:
    """``microjourney serve -w directory --host 127.0.0.1 --port 0`` in its own process.

    The process starts at once but opens the store only on :meth:`start`; :meth:`stop`
    (also on leaving a ``with`` block) ends it with SIGTERM.
    """

    def __init__(self, directory: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.url = ""
        self._log = tempfile.TemporaryFile("w+", encoding="utf-8")
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", BOOT, "-w", str(directory), "--host", HOST, "--port", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True)
        threading.Thread(target=self._read, name="microjourney-demo-collector", daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        with self._proc.stdout:
            for line in self._proc.stdout:
                self._lines.put(line)
        self._lines.put(None)

    def start(self) -> str:
        """Open the store and serve; returns the base URL once the collector accepts requests.
        Nothing else may hold the store meanwhile."""
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it has ended already: reported below
            self._proc.stdin.write("serve\n")
            self._proc.stdin.close()
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:  # its output closed: it is ending
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(10)
                break
            if READY in line:
                url = line.split(READY, 1)[1].strip()
                if not url.startswith(f"http://{HOST}:"):  # loopback only, never another host
                    self.stop()
                    raise MicrojourneyError(f"the collector listens on {url}, not on {HOST}",
                                            code="demo/collector")
                self.url = url
                return url
        ended = self._proc.poll()
        self._proc.kill()
        self._proc.wait()
        why = f"within {self.timeout:.0f}s" if ended is None else f"(it ended with status {ended})"
        tail = self._tail()
        self._log.close()  # stopped and reported: stop() has nothing left to do
        raise MicrojourneyError(f"the collector did not start {why}: {tail}", code="demo/collector")

    def stop(self) -> None:
        """SIGTERM: the collector commits what is queued and closes the store. Raises if it
        ended with an error."""
        if self._log.closed:
            return
        proc = self._proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(OSError):  # the pipe may be broken: the process has ended
                proc.stdin.close()
        code = proc.returncode
        tail = self._tail() if code not in (0, -signal.SIGTERM) else ""
        self._log.close()
        if tail:
            raise MicrojourneyError(f"the collector ended with status {code}: {tail}",
                                    code="demo/collector")

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        except MicrojourneyError:
            if exc[0] is None:
                raise

    def _tail(self, chars: int = 2000) -> str:
        """The end of the collector's error output."""
        try:
            self._log.seek(0)
            text = self._log.read().strip()
        except (OSError, ValueError):
            return "(no output)"
        return text[-chars:] or "(no output)"


def send(directory: str | os.PathLike[str], events: str | os.PathLike[str], *,
         collector: Collector | None = None, batch_size: int = BATCH) -> Sent:
    """Send the events of ``events`` (JSON Lines, one event a line with the fields of file
    ingest) to a collector serving ``directory`` (``collector``, started here, or a new one),
    then stop it. Nothing else may hold the workspace's store meanwhile.

    Raises :class:`MicrojourneyError` unless the collector accepted every event.
    """
    key = keys(directory).write_key
    with collector or Collector(directory) as server:
        url = server.start()
        began = time.perf_counter()
        count = 0
        with Client(url, key, batch_size=batch_size, timeout=60.0) as client:
            with open(events, "rb") as lines:
                for line in lines:
                    if line.strip():
                        call = orjson.loads(line)
                        client.track(call.pop("event"), **call)
                        count += 1
            delivery = client.flush()
        seconds = time.perf_counter() - began
    if delivery.accepted != count or delivery.rejected:
        first = delivery.rejected[0] if delivery.rejected else None
        why = f"; first refused: {first.id}: {first.reason}" if first else ""
        raise MicrojourneyError(
            f"the collector accepted {delivery.accepted:,} of {count:,} events "
            f"({delivery.duplicates:,} duplicates, {len(delivery.rejected):,} refused){why}",
            code="demo/collector")
    return Sent(url=url, events=count, seconds=seconds)
