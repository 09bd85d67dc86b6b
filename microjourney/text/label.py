"""Names for groups of texts: their most distinctive words by class-based TF-IDF, and the
texts nearest their centroid as examples.

Class-based TF-IDF (Grootendorst, BERTopic 2022) treats each group as one document: a
word's weight in a group is its frequency there times ``log(1 + A / f)``, with ``A`` the
mean number of words per group and ``f`` the word's frequency over all groups, so words
frequent in one group and rare elsewhere come first. English stop words are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .embed import Matrix
from .partition import Labels

#: Words: two or more letters (no digits, no underscores).
WORD = r"(?u)\b[^\W\d_]{2,}\b"


def terms(texts: Sequence[str], labels: Labels, k: int, n_terms: int = 4) -> list[tuple[str, ...]]:
    """The ``n_terms`` most distinctive words of each group 0 … k−1 (fewer when a group
    has fewer words; none for a group of stop words only).

    >>> terms(["card declined", "my card was declined", "reset passcode", "forgot passcode"],
    ...       np.array([0, 0, 1, 1]), 2, n_terms=2)
    [('card', 'declined'), ('passcode', 'forgot')]
    """
    from sklearn.feature_extraction.text import CountVectorizer  # type: ignore[import-untyped]

    vectorizer = CountVectorizer(stop_words="english", token_pattern=WORD, lowercase=True)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # no words left at all
        return [() for _ in range(k)]
    vocabulary = vectorizer.get_feature_names_out()
    member = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
    by_group = sp.csr_matrix(member @ counts, dtype=np.float64)
    totals = np.asarray(by_group.sum(axis=1)).ravel()
    frequency = np.asarray(by_group.sum(axis=0)).ravel()
    idf = np.log1p(totals.mean() / np.maximum(frequency, 1))
    out: list[tuple[str, ...]] = []
    for g in range(k):
        lo, hi = by_group.indptr[g], by_group.indptr[g + 1]
        words, tf = by_group.indices[lo:hi], by_group.data[lo:hi]
        weight = tf / max(totals[g], 1) * idf[words]
        top = np.lexsort((vocabulary[words], -tf, -weight))[:n_terms]  # ties: more frequent, then a-z
        out.append(tuple(str(vocabulary[words[i]]) for i in top))
    return out


def examples(texts: Sequence[str], x: Matrix, labels: Labels, centroids: Matrix,
             n: int = 3) -> list[tuple[str, ...]]:
    """Up to ``n`` distinct texts of each group, nearest its centroid first."""
    similarity = np.einsum("ij,ij->i", x, centroids[labels])
    order = np.lexsort((np.arange(len(labels)), -similarity, labels))
    out: list[list[str]] = [[] for _ in range(len(centroids))]
    for i in order:
        group = out[labels[i]]
        text = texts[i].strip()
        if len(group) < n and text not in group:
            group.append(text)
    return [tuple(g) for g in out]
