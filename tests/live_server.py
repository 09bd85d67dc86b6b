"""The real collector in a subprocess (`microjourney serve`), for end-to-end tests."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

import microjourney as mj

MJ = Path(sys.executable).parent / "microjourney"
READY = "listening on "


def run_cli(*args: str) -> str:
    done = subprocess.run([str(MJ), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"microjourney {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def serve_available() -> bool:
    done = subprocess.run([str(MJ), "serve", "--help"], capture_output=True, text=True, timeout=120)
    return done.returncode == 0


def make_workspace(root: Path, *, server: str = "", journeys: str = "") -> dict[str, str]:
    """``mj.init(root)``, a ``server:`` section (YAML flow text), ``journeys`` (YAML
    flow text replacing the empty list) and the keys."""
    mj.init(root).close()
    spec = root / "microjourney.yaml"
    text = spec.read_text(encoding="utf-8")
    if journeys:
        text = text.replace("journeys: []\n", f"journeys: {journeys}\n")
    if server:
        text += f"server: {server}\n"
    spec.write_text(text, encoding="utf-8")
    return json.loads(run_cli("keys", "-w", str(root), "--json"))


class LiveServer:
    """`microjourney serve -w root --host 127.0.0.1 --port N [args]`; `stop()` sends
    SIGTERM; what it writes to stderr goes to :attr:`log`."""

    def __init__(self, root: Path, port: int = 0, args: tuple[str, ...] = ()) -> None:
        self.root, self.port, self.args = root, port, args
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log = root.parent / f"{root.name}-serve.log"

    def start(self, timeout: float = 60.0) -> LiveServer:
        cmd = [str(MJ), "serve", "-w", str(self.root), "--host", "127.0.0.1", "--port", str(self.port),
               *self.args]
        err = self.log.open("a", encoding="utf-8")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        err.close()
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if READY in line:
                self.url = line.split(READY, 1)[1].strip()
                self.port = int(self.url.rsplit(":", 1)[1])
                return self
        self.stop()
        pytest.fail(f"`{' '.join(cmd)}` did not say {READY!r}:\n{self.log.read_text(errors='replace')}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: no chance to commit or close anything."""
        if self.proc is not None:
            proc, self.proc = self.proc, None
            proc.kill()
            proc.wait()

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for this server, sending ``key`` as a bearer token."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
