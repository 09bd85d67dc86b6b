"""The self-contained, offline HTML report: moment scorecards, funnels and trends.

>>> from microjourney.report import render_report, write_report
"""

from microjourney.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
