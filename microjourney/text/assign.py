"""Map clusters (or single texts) to named targets, such as a journey's moments, given each
target's example phrases and keywords.

A cluster's score for a target is the largest cosine between its centroid and the target's
phrases (both centred on the clustered texts' mean), plus :data:`KEYWORD_WEIGHT` for each
of the cluster's distinctive words that occurs in the target's phrases (at most
:data:`MAX_HITS`). The best-scoring target wins; below ``min_similarity`` the cluster stays
unmapped (``target`` None): a new intent, or one no moment covers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .cluster import Clusters, cluster
from .embed import Note

#: The score below which a cluster or text is left unmapped (cosine in the centred space).
MIN_SIMILARITY = 0.45
#: What each keyword hit adds to the score, and the most hits counted.
KEYWORD_WEIGHT, MAX_HITS = 0.05, 3


@dataclass(frozen=True)
class Match:
    """One cluster's (or text's) best target, ``None`` when unmapped; the cosine to that
    target's nearest phrase, the keyword hits and the score they add up to."""

    item: int
    target: str | None
    similarity: float
    keyword_hits: int
    score: float


@dataclass(frozen=True)
class Assignment:
    """One :class:`Match` per cluster (per text when texts were given), the threshold used,
    and coded warnings."""

    matches: tuple[Match, ...]
    min_similarity: float
    warnings: tuple[Note, ...] = ()

    def by_target(self) -> dict[str, tuple[int, ...]]:
        """The items mapped to each target (targets with none left out)."""
        out: dict[str, list[int]] = {}
        for m in self.matches:
            if m.target is not None:
                out.setdefault(m.target, []).append(m.item)
        return {t: tuple(items) for t, items in out.items()}


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]{2,}", text.lower()))


def assign(items: Clusters | Sequence[str], phrases_by_name: Mapping[str, Sequence[str]], *,
           min_similarity: float = MIN_SIMILARITY) -> Assignment:
    """Map each cluster of ``items`` (a :class:`Clusters`) to the target of
    ``phrases_by_name`` it resembles most, or each text when ``items`` is a list of texts
    (they are embedded and centred together, each text being its own group).

    >>> a = assign(["my card payment was declined", "I forgot my passcode"],
    ...            {"card_payment": ["card payment declined"], "passcode": ["forgot passcode"]})
    >>> [m.target for m in a.matches]
    ['card_payment', 'passcode']
    """
    notes: tuple[Note, ...] = ()
    if not isinstance(items, Clusters):
        texts = list(items)
        items = cluster(texts, k=max(len(texts), 1), n_terms=1_000)
        by_text = items.labels
    else:
        by_text = None
    names = [n for n, phrases in phrases_by_name.items() if any(p.strip() for p in phrases)]
    if len(names) < len(phrases_by_name):
        notes += (Note("target-without-phrases", "target(s) without phrases were left out"),)
    if not items.clusters or not names:
        none = tuple(Match(g.id, None, 0.0, 0, 0.0) for g in items.clusters)
        return Assignment(_per_text(none, by_text), min_similarity, notes)
    phrases = [[p for p in phrases_by_name[n] if p.strip()] for n in names]
    flat = [p for ps in phrases for p in ps]
    owner = np.repeat(np.arange(len(names)), [len(ps) for ps in phrases])
    vectors = items.place(flat)
    centroids = np.stack([g.centroid for g in items.clusters])
    cosine = centroids @ vectors.T  # clusters × phrases
    best = np.full((len(centroids), len(names)), -1.0)
    np.maximum.at(best.T, owner, cosine.T)
    keywords = [set().union(*(_words(p) for p in ps)) for ps in phrases]
    found: list[Match] = []
    for g, row in zip(items.clusters, best, strict=True):
        hits = np.array([min(len(set(g.terms) & kw), MAX_HITS) for kw in keywords])
        score = row + KEYWORD_WEIGHT * hits
        t = int(np.argmax(score))
        target = names[t] if score[t] >= min_similarity else None
        found.append(Match(g.id, target, round(float(row[t]), 6), int(hits[t]), round(float(score[t]), 6)))
    return Assignment(_per_text(tuple(found), by_text), min_similarity, notes + items.warnings)


def _per_text(matches: tuple[Match, ...], by_text: np.ndarray | None) -> tuple[Match, ...]:
    """Cluster matches as given, or one per text (renumbered) when texts were given."""
    if by_text is None:
        return matches
    return tuple(Match(i, None, 0.0, 0, 0.0) if g < 0 else Match(i, *_fields(matches[g])[1:])
                 for i, g in enumerate(by_text.tolist()))


def _fields(m: Match) -> tuple[int, str | None, float, int, float]:
    return m.item, m.target, m.similarity, m.keyword_hits, m.score
