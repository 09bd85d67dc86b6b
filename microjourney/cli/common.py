"""What every command shares: the app, the consoles, common options, JSON and number
formatting, opening the workspace, and the entry point."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from .. import workspace as ws_api
from ..errors import MicrojourneyError
from ..jsonable import dumps

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Customer-experience analytics at the level of micro-moments.")
# Piped output (scripts, CI logs) gets room for a full table rather than Rich's 80 columns.
out = Console(highlight=False, width=None if Console().is_terminal else 160)
err = Console(stderr=True, highlight=False)

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.",
                                            show_default="current directory")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
WideOpt = Annotated[bool, typer.Option("--wide", help="Show every column and row (a table "
                                       "otherwise fits 100 characters).")]


def main() -> None:
    """Entry point: run the app, turning product errors into one clear line."""
    try:
        app(standalone_mode=False)
    except MicrojourneyError as exc:
        err.print(f"[bold red]error[/] {escape(f'[{exc.code}]')}: {escape(exc.message)}",
                  soft_wrap=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: bad option values, missing arguments
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))


def _print_json(data: Any) -> None:
    """``data`` as indented JSON, encoded as every surface encodes it (microjourney.jsonable)."""
    sys.stdout.write(dumps(data, indent=True) + "\n")


#: The engine options given before the command (``microjourney --engine spark ...``).
_engine: dict[str, Any] = {}


@app.callback()
def _options(
    engine: Annotated[str | None, typer.Option(
        help="Run the analyses on this engine: duckdb or spark (default: the workspace's "
             "engine section, else duckdb). See docs/scaling.md.")] = None,
    lake: Annotated[str | None, typer.Option(
        metavar="<path|url>",
        help="Read events from this Parquet lake, a folder or an s3:// URL (written by "
             "`export --lake`), instead of the workspace's store.")] = None,
) -> None:
    """Customer-experience analytics at the level of micro-moments."""
    _engine.update(engine=engine, lake=lake)


def _open(workspace: Path) -> ws_api.Workspace:
    return ws_api.open(workspace, engine=_engine.get("engine"), lake=_engine.get("lake"))
