"""Workspace, journey and moment definitions; loading with file:line errors."""

from .duration import format_duration, parse_duration
from .load import load_workspace, parse_workspace
from .model import Journey, Matcher, Moment, Predicate, Target, Workspace

__all__ = [
    "Journey",
    "Matcher",
    "Moment",
    "Predicate",
    "Target",
    "Workspace",
    "format_duration",
    "load_workspace",
    "parse_workspace",
    "parse_duration",
]
