"""Workspace, journey and moment definitions; loading with file:line errors."""

from .duration import format_duration, parse_duration
from .frictions import KINDS, Frictions
from .load import load_workspace, parse_workspace
from .model import Journey, Matcher, Moment, Predicate, Target, Workspace

__all__ = [
    "KINDS",
    "Frictions",
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
