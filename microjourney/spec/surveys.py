"""Micro-surveys: the ``surveys:`` section of ``microjourney.yaml`` (docs/workspace.md,
"Surveys").

A survey belongs to a moment and is triggered by its outcomes; it asks a few questions
(CSAT, CES, NPS, thumbs, single or multiple choice, free text, a follow-up shown only for
some scores) under display rules people who used Formbricks or PostHog know::

    surveys:
      - name: payment_csat
        moment: card_payment
        trigger: {outcomes: [completed, failed], channel: [web, app], delay: 2s}
        questions:
          - {id: ease, type: csat, text: How easy was paying?}
          - {id: why, type: text, text: What made it hard?, when: {question: ease, at_most: 3}}
        display: {show: once, sample: 25, recontact: 30d, cap: 2000}
        control: 5
        languages:
          de: {ease: Wie einfach war das Bezahlen?, why: Was war schwierig?}
    survey_cooldown: 7d

The models validate alone what a survey says; that its moment exists is checked with the
workspace (:class:`microjourney.spec.model.Workspace`).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, Field, field_validator, model_validator

from .types import LANGUAGE, MAX_LIST, Frozen, Names, Seconds, as_tuple, check_channels, check_name

QuestionType = Literal["nps", "csat", "ces", "thumbs", "single", "multiple", "text"]
QUESTION_TYPES: tuple[str, ...] = get_args(QuestionType)
#: The answers of each scored question type: its lowest and highest (thumbs: 0 down, 1 up).
SCALES: dict[str, tuple[int, int]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7), "thumbs": (0, 1)}
#: Outcomes a survey can be triggered by (an attempt's outcomes, once it has one).
Outcome = Literal["completed", "failed", "abandoned", "escalated"]
#: The outcomes of a finished attempt.
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
#: Surveys per workspace, questions per survey, languages per survey.
MAX_SURVEYS, MAX_QUESTIONS, MAX_LANGUAGES = 200, 20, 50
#: Characters of a question's text (or a choice's), in any language.
MAX_TEXT = 500
#: Characters of a free-text answer.
MAX_ANSWER = 5_000
#: Thumbs answers given as words.
THUMBS = {"up": "1", "down": "0", "yes": "1", "no": "0", "true": "1", "false": "0"}


def cut(text: str, length: int = 40) -> str:
    """``text`` quoted for a message, cut to ``length`` characters."""
    return repr(text if len(text) <= length else text[:length] + "…")


class Trigger(Frozen):
    """When an attempt of the moment asks: on these outcomes, in these channels (any when
    empty), ``delay`` after the outcome."""

    outcomes: Annotated[tuple[Outcome, ...], BeforeValidator(as_tuple)] = Field(
        OUTCOMES, min_length=1)
    channel: Names = ()
    delay: Seconds = Field(0.0, ge=0, le=86_400)

    @field_validator("channel")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_channels(value) or ()


class When(Frozen):
    """A follow-up's condition: the answer to an earlier scored ``question`` is at least
    ``at_least`` and at most ``at_most`` (either or both)."""

    question: str
    at_least: int | None = None
    at_most: int | None = None

    @model_validator(mode="after")
    def _bounded(self) -> When:
        if self.at_least is None and self.at_most is None:
            raise ValueError("a follow-up's `when` needs at_least, at_most or both")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least {self.at_least} is above at_most {self.at_most}: no answer "
                             "would show it")
        return self


class Question(Frozen):
    """One question: its ``id`` (how answers name it), ``type``, ``text``, ``choices`` (for
    single and multiple choice only), ``required``, and ``when`` for a follow-up."""

    id: str
    type: QuestionType
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    choices: tuple[str, ...] = Field((), max_length=MAX_LIST)
    required: bool = True
    when: When | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_name(value, "question id")

    def answer(self, value: object) -> str:
        """An answer to this question as it is stored (text: a scored answer as its whole
        number, thumbs as 1 up or 0 down); a ``ValueError`` saying why it is no answer to it.

        >>> Question(id="q", type="nps", text="?").answer("9.0")
        '9'
        >>> Question(id="q", type="csat", text="?").answer(6)
        Traceback (most recent call last):
        ...
        ValueError: '6' is not an answer to csat question 'q' (a whole number from 1 to 5)
        """
        text = str(value).strip() if not isinstance(value, bool) else ("1" if value else "0")
        if self.type == "thumbs" and text.lower() in THUMBS:
            return THUMBS[text.lower()]
        if self.type in SCALES:
            low, high = SCALES[self.type]
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            if not (number.is_integer() and low <= number <= high):
                raise ValueError(f"{cut(text)} is not an answer to {self.type} question {self.id!r} "
                                 f"(a whole number from {low} to {high})")
            return str(int(number))
        if self.type == "single" and text not in self.choices:
            raise ValueError(f"{cut(text)} is not a choice of question {self.id!r}: "
                             f"{', '.join(self.choices)}")
        if self.type == "multiple":
            picked = [c.strip() for c in text.split(";") if c.strip()]
            wrong = [c for c in picked if c not in self.choices]
            if wrong or not picked:
                raise ValueError(f"{cut(text)} is not a choice of question {self.id!r} (choices "
                                 f"separated by ';'): {', '.join(self.choices)}")
            return "; ".join(picked)
        if len(text) > MAX_ANSWER:
            raise ValueError(f"the answer to {self.id!r} has {len(text):,} characters; at most "
                             f"{MAX_ANSWER:,}")
        return text

    @model_validator(mode="after")
    def _choices(self) -> Question:
        choosing = self.type in ("single", "multiple")
        if choosing and len(self.choices) < 2:
            raise ValueError(f"a {self.type} choice question needs at least two choices")
        if not choosing and self.choices:
            raise ValueError(f"a {self.type} question has no choices (only single and multiple do)")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("a choice is listed twice")
        return self


class Display(Frozen):
    """How often a person sees the survey: ``show`` it ``once``, ``until_answered`` or up
    to ``times`` times; to a ``sample`` percentage of the attempts that qualify; not again
    to a person within ``recontact``; no more once ``cap`` responses came in; only from
    ``start`` to ``end`` (UTC days, inclusive)."""

    show: Literal["once", "until_answered", "times"] = "once"
    times: int | None = Field(None, ge=1, le=1000)
    sample: float = Field(100.0, gt=0, le=100)
    recontact: Seconds = Field(0.0, ge=0)
    cap: int | None = Field(None, ge=1)
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Display:
        if self.show == "times" and self.times is None:
            raise ValueError("show: times needs `times` (how many displays at most)")
        if self.show != "times" and self.times is not None:
            raise ValueError(f"`times` applies to show: times, not show: {self.show}")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class Survey(Frozen):
    """A micro-survey of a moment (module docstring). ``control``: the percentage of the
    moment's attempts asked whatever their outcome, so that scores can be reweighted to all
    attempts (docs/surveys.md); ``languages``: each language's question texts by id.

    ``moment`` may be left out for a survey of no moment (a relationship survey, or answers
    imported from another tool by journey stage): it is never shown by the SDK and its
    answers link to no attempt. ``link_within``: an answer that does not name its attempt
    links to the person's latest attempt of the moment that started before it and ended no
    longer than this before it (docs/surveys.md, "Linking answers to attempts")."""

    name: str
    moment: str | None = None
    #: A survey of a whole journey (no moment): its answers rate the person's journey that
    #: ended last before them (within ``link_within``), for the Peak-End validation.
    journey: str | None = None
    title: str | None = None
    trigger: Trigger = Trigger()
    questions: tuple[Question, ...] = Field(min_length=1, max_length=MAX_QUESTIONS)
    display: Display = Display()
    control: float = Field(0.0, ge=0, le=100)
    link_within: Seconds = Field(7 * 86_400.0, gt=0, le=366 * 86_400)
    languages: dict[str, dict[str, str]] = Field(default_factory=dict, max_length=MAX_LANGUAGES)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "survey name")

    @model_validator(mode="after")
    def _of_one(self) -> Survey:
        if self.moment is not None and self.journey is not None:
            raise ValueError("a survey is of a moment or of a journey, not both")
        return self

    @model_validator(mode="after")
    def _questions(self) -> Survey:
        seen: dict[str, Question] = {}
        for q in self.questions:
            if q.id in seen:
                raise ValueError(f"question id {q.id!r} is used twice")
            if q.when is not None:
                before = seen.get(q.when.question)
                if before is None:
                    raise ValueError(f"question {q.id!r} follows up {q.when.question!r}, which is not "
                                     "an earlier question of this survey")
                if before.type not in SCALES:
                    raise ValueError(f"question {q.id!r} follows up {before.id!r}, a {before.type} "
                                     "question: only scored questions (nps, csat, ces, thumbs) have a score")
                low, high = SCALES[before.type]
                for bound in (q.when.at_least, q.when.at_most):
                    if bound is not None and not low <= bound <= high:
                        raise ValueError(f"question {q.id!r}: {bound} is outside {before.id!r}'s "
                                         f"{before.type} scale ({low}–{high})")
            seen[q.id] = q
        for language, texts in self.languages.items():
            if not LANGUAGE.match(language):
                raise ValueError(f"language {language!r} is not a language tag like de or pt-BR")
            for qid, text in texts.items():
                if qid not in seen:
                    raise ValueError(f"language {language!r} translates {qid!r}, which is not a "
                                     f"question of this survey ({', '.join(seen)})")
                if not text or len(text) > MAX_TEXT:
                    raise ValueError(f"language {language!r}, question {qid!r}: a text of 1 to "
                                     f"{MAX_TEXT} characters")
        return self

    def question(self, qid: str) -> Question:
        """The question ``qid`` (KeyError when the survey has none)."""
        for q in self.questions:
            if q.id == qid:
                return q
        raise KeyError(qid)

    @property
    def scored(self) -> tuple[Question, ...]:
        """The questions with a score (nps, csat, ces, thumbs)."""
        return tuple(q for q in self.questions if q.type in SCALES)


__all__ = ["MAX_SURVEYS", "QUESTION_TYPES", "SCALES", "Display", "Question", "Survey", "Trigger",
           "When"]
