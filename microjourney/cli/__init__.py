"""The ``microjourney`` command: parse arguments, call the core, render. Nothing else.

The commands live in :mod:`.admin` (make, fill, serve, administer), :mod:`.analyses` and
:mod:`.voice` (survey answers);
importing them registers them on :data:`app`, in the order ``--help`` lists them.
"""

from __future__ import annotations

from . import admin, alerting, analyses, experiments, playbook, voice  # noqa: F401 - registers the commands
from .common import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
