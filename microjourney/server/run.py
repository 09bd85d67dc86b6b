"""Run the app with uvicorn: one process, graceful shutdown on SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn

from ..store.private import write_atomic
from ..workspace import STORE_DIR
from .app import create_app

#: The file in the store folder that says where a running server listens.
SERVER_FILE = "server.json"

#: Seconds a thread may hold the GIL while another waits for it (see :func:`serve`).
SWITCH_INTERVAL = 0.0005


class _Server(uvicorn.Server):
    """Tells where it listens once it accepts requests (port 0 picks a free port)."""

    def __init__(self, config: uvicorn.Config, ready: Callable[[str], None],
                 found: Path) -> None:
        super().__init__(config)
        self._ready, self._found = ready, found

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._ready(f"http://{host}:{port}")

    async def shutdown(self, sockets: list | None = None) -> None:
        # Here, not after run(): uvicorn raises the stopping signal again once run() ends.
        self._found.unlink(missing_ok=True)
        await super().shutdown(sockets)


def serve(directory: str | Path = ".", *, host: str = "127.0.0.1", port: int = 8321,
          lake: str | Path | None = None, ready: Callable[[str], None] = print,
          log_level: str = "warning") -> None:
    """Serve the workspace in ``directory`` until stopped; ``ready`` gets the base URL;
    ``lake``: the collector appends events to this Parquet lake instead of the store;
    ``log_level``: the least level of microjourney's own log lines written to stderr
    (``info`` adds each background refresh's mode, counts and seconds).

    Stopping (SIGTERM, Ctrl-C) lets requests in flight finish, commits what the collector
    holds and closes the store.
    """
    # The collector's writer thread takes the GIL back after every DuckDB call (several per
    # statement); with Python's default 5 ms switch interval each of those waits behind the
    # request loop. 0.5 ms gave 4-10% more events/s (docs/benchmarks.md, "HTTP ingest").
    sys.setswitchinterval(SWITCH_INTERVAL)
    _log_to_stderr(log_level)
    # Everything a server writes holds events or keys (the store and the write-ahead log
    # DuckDB makes anew after each checkpoint, the journal, lake files): owner only.
    os.umask(os.umask(0o077) | 0o077)
    app = create_app(directory, lake=lake)

    found = Path(directory) / STORE_DIR / SERVER_FILE

    def listening(url: str) -> None:
        app.listening(url)  # its own origin: pages it serves may call the API
        # Where the CLI finds this server while it holds the store (cli/served.py).
        write_atomic(found, json.dumps({"url": url, "pid": os.getpid()}).encode())
        ready(url)

    # Access logs stay off: a path may name a person (DELETE /v1/persons/{person}).
    config = uvicorn.Config(app, host=host, port=port, loop="uvloop",
                            http="httptools", lifespan="on", access_log=False, log_level="warning",
                            timeout_graceful_shutdown=30)
    _Server(config, listening, found).run()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """microjourney's log lines on stderr, each with its time."""


def _log_to_stderr(level: str) -> None:
    """Write microjourney's log lines of ``level`` and above to stderr (once, however often
    called); its messages carry kinds of error and counts, never values of the data."""
    logger = logging.getLogger("microjourney")
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        handler = _Stderr(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())
