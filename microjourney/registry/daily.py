"""The moments' figures per day as the playbook and the alerts read them: the engine's daily
sufficient statistics (:mod:`microjourney.engine.daily`) with their day as a date, and the
day's CSAT and CES tallies merged in where a survey of the moment asks them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from ibis.expr.types import Table

from ..engine.daily import daily_metrics, daily_surveys
from ..engine.experiments import scored_answers
from .experiment import survey_questions

if TYPE_CHECKING:
    from ..workspace import Workspace

__all__ = ["daily_table", "with_surveys"]


def daily_table(attempts: Table, frictions: Table, by: str | None = None) -> pd.DataFrame:
    """:func:`~microjourney.engine.daily.daily_metrics` as a frame, ``day`` a date."""
    daily: pd.DataFrame = daily_metrics(attempts, frictions, by=by).to_pandas()
    daily["day"] = pd.to_datetime(daily["day"]).dt.date
    return daily


def with_surveys(ws: Workspace, daily: pd.DataFrame, moment: str | None) -> pd.DataFrame:
    """``daily`` with each day's CSAT and CES tallies of the moments' surveys, when any
    survey of them asks one (0 on a day without answers)."""
    questions = survey_questions(ws.spec.surveys, [moment] if moment else None)
    if questions is None or daily.empty:
        return daily
    answers = scored_answers(ws.survey_answers(), questions, ws.attempts(moment))
    scores = daily_surveys(answers).to_pandas()
    scores["day"] = pd.to_datetime(scores["day"]).dt.date
    out = daily.merge(scores, on=["moment", "day"], how="left")
    cols = [c for c in scores.columns if c not in ("moment", "day")]
    out[cols] = out[cols].fillna(0)
    return out
