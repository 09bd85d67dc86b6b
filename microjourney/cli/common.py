"""What every command shares: the app, the consoles, common options, JSON and number
formatting, opening the workspace, and the entry point."""

from __future__ import annotations

import json
import math
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from .. import workspace as ws_api
from ..errors import MicrojourneyError

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


def _jsonable(value: Any) -> Any:
    """Plain JSON values: NaN, NaT and NA become null, times ISO text, arrays lists."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _jsonable(value.tolist())
    if value is None or isinstance(value, str | bool):
        return value
    if pd.isna(value):
        return None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in df.to_dict("records")]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(data), indent=2, ensure_ascii=False) + "\n")


def _pct(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v * 100:.1f}%"


def _secs(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    for size, unit, limit in ((1, "s", 120), (60, "m", 120 * 60), (3600, "h", 48 * 3600)):
        if v < limit:
            return f"{v / size:.0f}{unit}" if unit == "s" else f"{v / size:.1f}{unit}"
    return f"{v / 86400:.1f}d"


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
