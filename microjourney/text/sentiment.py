"""Sentiment of free-text answers: VADER's compound score in [−1, 1] and its label.

VADER (Hutto & Gilbert, ICWSM 2014) is a lexicon with rules for negation, intensifiers,
"but" and punctuation; the lexicon ships inside the ``vadersentiment`` wheel, so nothing
is downloaded, and it scores thousands of short texts a second in pure Python. Labels use
VADER's published cut-offs: positive from +0.05, negative up to −0.05, neutral between.
On real telecom NPS verbatims it separates detractors from promoters (docs/intents.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .embed import Note, clip

#: VADER's cut-offs for the labels.
POSITIVE, NEGATIVE = 0.05, -0.05
#: Characters scored per text: VADER's rules grow faster than linearly with a text's length
#: (10,000 emoji took 4.5 s), and a survey answer is far shorter.
SENTIMENT_MAX_CHARS = 2_000


@dataclass(frozen=True)
class Sentiment:
    """One score in [−1, 1] per text (0 for a blank text) and its label, ``"negative"``,
    ``"neutral"`` or ``"positive"``; the method and coded warnings."""

    scores: NDArray[np.float64] = field(compare=False)
    labels: tuple[str, ...]
    method: str = "vader"
    warnings: tuple[Note, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


@functools.lru_cache(maxsize=1)
def _analyzer() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

    return SentimentIntensityAnalyzer()


def label(score: float) -> str:
    """The label of a compound score by VADER's cut-offs.

    >>> label(0.6), label(0.0), label(-0.3)
    ('positive', 'neutral', 'negative')
    """
    return "positive" if score >= POSITIVE else "negative" if score <= NEGATIVE else "neutral"


def sentiment(texts: Sequence[str]) -> Sentiment:
    """Score each text's sentiment in [−1, 1] and label it.

    >>> s = sentiment(["Great service, thank you!", "The engineer never turned up.", ""])
    >>> s.labels
    ('positive', 'neutral', 'neutral')
    >>> bool(s.scores[0] > 0.5)
    True
    """
    clipped, notes = clip(texts, SENTIMENT_MAX_CHARS)
    analyzer = _analyzer()
    scores = np.array([analyzer.polarity_scores(t)["compound"] if t.strip() else 0.0 for t in clipped],
                      dtype=np.float64)
    return Sentiment(scores, tuple(label(float(s)) for s in scores), "vader", notes)
