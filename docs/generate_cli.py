"""Write docs/cli.md from the command line's own help (``make docs``); a test checks it is current."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from typer.testing import CliRunner

from microjourney.cli import app

HEADER = """# Command-line reference

Generated from `microjourney COMMAND --help` by `python docs/generate_cli.py`;
`tests/test_docs.py` fails when this page and the command line disagree.
Every command takes `--workspace/-w DIR` (default: the current folder); every
analysis takes `--json` for machine-readable output.
"""


def render() -> str:
    runner = CliRunner()
    env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    parts = [HEADER]
    top = runner.invoke(app, ["--help"], prog_name="microjourney", env=env).output
    parts.append("```text\n" + top.strip() + "\n```\n")
    for command in app.registered_commands:
        if command.hidden:
            continue
        name = command.name or command.callback.__name__
        text = runner.invoke(app, [name, "--help"], prog_name="microjourney", env=env).output
        parts.append(f"## microjourney {name}\n\n```text\n{text.strip()}\n```\n")
    for group in app.registered_groups:  # commands with subcommands: `experiment analyze`...
        assert group.name is not None and group.typer_instance is not None
        for command in group.typer_instance.registered_commands:
            name = command.name or command.callback.__name__
            args = [group.name, name, "--help"]
            text = runner.invoke(app, args, prog_name="microjourney", env=env).output
            parts.append(f"## microjourney {group.name} {name}\n\n```text\n{text.strip()}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "100")
    target = Path(__file__).with_name("cli.md")
    target.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
