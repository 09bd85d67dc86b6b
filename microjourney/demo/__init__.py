"""A realistic, deterministic sample workspace: Northwind Bank & Shop.

``generate(directory)`` writes ``microjourney.yaml`` (6 journeys, 12 moments across
web, app, email, SMS, chat, voice and agent) and event files in three formats, plus
customer support texts, all seeded so the same call gives the same bytes.
"""

from .generate import DemoFiles, generate

__all__ = ["DemoFiles", "generate"]
