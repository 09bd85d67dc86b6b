"""A realistic, deterministic sample workspace: Northwind Bank & Shop.

``generate(directory)`` writes ``microjourney.yaml`` (6 journeys, 12 moments across
web, app, email, SMS, chat, voice and agent, and friction detector settings) and
event files in three formats, plus customer support texts, all seeded so the same
call gives the same bytes. ``microjourney demo`` sends the contact centre's events
(``DemoFiles.live``) through the collector with the Python client (``live``). Web
and app events include the friction signals a browser SDK sends (clicks, field edits,
errors shown, help opened; see ``signals``).
"""

from .generate import DemoFiles, generate

__all__ = ["DemoFiles", "generate"]
