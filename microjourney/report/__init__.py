"""The self-contained, offline HTML report: moment scorecards, funnels and trends.

>>> from microjourney.report import build_report, render_report, write_report
"""

from microjourney.report.build import build_report
from microjourney.report.html import render_report, write_report

__all__ = ["build_report", "render_report", "write_report"]
