"""Intents (many short customer texts) and themes (a few verbatims) as groups of texts:
embed, centre, partition (:mod:`.partition`), then name each group by its distinctive
words and show the texts nearest its centroid.

Vectors are centred on the mean text before clustering: static word embeddings share a
large common direction, and removing it spreads the texts over the sphere (Banking77:
NMI 0.730 → 0.739 at the same k, docs/intents.md). Keep :attr:`Clusters.center` to
compare new texts with the centroids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .embed import Matrix, Method, Note, embed, normalise
from .label import examples, terms
from .partition import Labels, k_max, partition

#: The largest number of themes tried for verbatims when the caller sets none.
THEMES_MAX_K = 8


@dataclass(frozen=True)
class Cluster:
    """One group: its number, size, distinctive words, up to 3 example texts (nearest the
    centroid first) and its unit centroid in the centred embedding space."""

    id: int
    size: int
    terms: tuple[str, ...]
    examples: tuple[str, ...]
    centroid: Matrix = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """The distinctive words joined, e.g. ``"declined, card, payment"``."""
        return ", ".join(self.terms) if self.terms else f"cluster {self.id}"


@dataclass(frozen=True)
class Clusters:
    """The group of each text (``-1`` for a blank text), the number of groups, the groups
    by falling size, how k was chosen (``"given"``, ``"silhouette"``, ``"single"``) with the
    silhouette of the cut, the embedding method, coded warnings, and what is needed to
    place new texts: ``encode`` embeds them, ``center`` is subtracted before comparing."""

    labels: Labels = field(compare=False)
    k: int
    clusters: tuple[Cluster, ...]
    chosen_by: str
    silhouette: float | None
    method: str
    center: Matrix = field(repr=False, compare=False)
    encode: Callable[[Sequence[str]], Matrix] = field(repr=False, compare=False)
    warnings: tuple[Note, ...] = ()

    def place(self, texts: Sequence[str]) -> Matrix:
        """New texts as unit vectors in the space of the centroids."""
        return normalise(self.encode(texts) - self.center)


def cluster(texts: Sequence[str], *, k: int | None = None, seed: int = 0, max_k: int | None = None,
            method: Method = "auto", n_terms: int = 4, n_examples: int = 3) -> Clusters:
    """Group customer texts into intents. With ``k`` None the number of groups is the one
    with the best silhouette among 2 … min(⌈√n⌉, ``max_k``); the same ``seed`` gives the
    same result.

    >>> c = cluster(["card declined", "my card payment was declined", "card payment declined again",
    ...              "forgot my passcode", "reset my passcode please", "I forgot the passcode"])
    >>> c.k, sorted(sorted(set(c.labels[i:i + 3].tolist())) for i in (0, 3))
    (2, [[0], [1]])
    """
    return _group(texts, k=k, seed=seed, cap=max_k, method=method, n_terms=n_terms, n_examples=n_examples)


def themes(texts: Sequence[str], *, k: int | None = None, seed: int = 0, max_k: int = THEMES_MAX_K,
           method: Method = "auto", n_terms: int = 4, n_examples: int = 3) -> Clusters:
    """Themes of free-text answers (tens to a few thousand): :func:`cluster` with k chosen
    among 2 … min(⌈√n⌉, ``max_k``), so that a reader gets a handful of themes."""
    return _group(texts, k=k, seed=seed, cap=max_k, method=method, n_terms=n_terms, n_examples=n_examples)


def _group(texts: Sequence[str], *, k: int | None, seed: int, cap: int | None, method: Method,
           n_terms: int, n_examples: int) -> Clusters:
    texts = list(texts)
    embedding = embed(texts, method=method)
    notes = embedding.warnings
    x = embedding.matrix
    valid = np.flatnonzero(np.linalg.norm(x, axis=1) > 0) if len(x) else np.zeros(0, np.int64)
    if len(valid) < len(texts):
        blank = len(texts) - len(valid)
        notes += (Note("blank-texts", f"{blank} text(s) without words were left out (label -1)"),)
    dim = x.shape[1]
    if len(valid) == 0:
        notes += (Note("no-texts", "no text to cluster"),)
        return Clusters(np.full(len(texts), -1, np.int64), 0, (), "single", None, embedding.method,
                        np.zeros(dim, np.float32), embedding.encode, notes)
    center = x[valid].mean(axis=0).astype(np.float32)
    xc = normalise(x[valid] - center)
    if not np.any(np.linalg.norm(xc, axis=1) > 0):  # all texts embed alike: one group
        xc = x[valid]
        center = np.zeros(dim, np.float32)
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    part = partition(xc, k=k, seed=seed, cap=cap)
    if k is not None and part.k < k:
        notes += (Note("k-reduced", f"{part.k} group(s) instead of {k}: too few distinct texts"),)
    if k is None and part.chosen_by == "silhouette" and part.k == min(k_max(len(valid)), cap or len(valid)):
        notes += (Note("k-at-bound", f"the silhouette was best at the largest k tried ({part.k})"),)
    kept = [texts[i] for i in valid]
    words = terms(kept, part.labels, part.k, n_terms)
    shown = examples(kept, xc, part.labels, part.centroids, n_examples)
    sizes = np.bincount(part.labels, minlength=part.k)
    groups = tuple(Cluster(g, int(sizes[g]), words[g], shown[g], part.centroids[g]) for g in range(part.k))
    labels = np.full(len(texts), -1, np.int64)
    labels[valid] = part.labels
    return Clusters(labels, part.k, groups, part.chosen_by, part.silhouette, embedding.method, center,
                    embedding.encode, notes)
