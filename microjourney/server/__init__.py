"""The collector and HTTP API (``microjourney serve``): see docs/collector.md."""

from __future__ import annotations

from .app import create_app
from .run import serve

__all__ = ["create_app", "serve"]
