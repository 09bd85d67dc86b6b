"""The process's peak resident memory, measured per part of a benchmark.

A benchmark that runs DuckDB's floors and microjourney in one process must measure their
peaks apart: the wide floor's in-memory sort of every column alone reaches about 5 GB at
10M events. :func:`reset` starts the high-water mark again (Linux's ``clear_refs``) and
:func:`mb` reads it; where the mark cannot be reset, it is the process's peak so far.
"""

from __future__ import annotations

import re
import resource
from pathlib import Path


def reset() -> None:
    """Start the process's RSS high-water mark again (Linux; elsewhere it keeps rising)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def mb() -> float:
    """The process's RSS high-water mark since the last :func:`reset`, in MB (MiB)."""
    try:
        found = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        found = None
    if found is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(found.group(1)) / 1024
