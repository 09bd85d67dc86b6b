"""Partition unit vectors into k groups, k chosen by the data when not given.

Ward's agglomerative clustering on at most :data:`TREE_SAMPLE` texts (drawn with the seed)
gives every partition from 1 to m groups at once; the cut with the largest mean silhouette
(cosine distance) among k = 2 … k_max is kept, and every text joins the nearest centroid of
that cut. ``k_max`` is ⌈√n⌉ (a common upper bound for the number of clusters of n points)
unless the caller caps it lower. The silhouette is exact on the sample and cheap: for unit
vectors the mean cosine distance from a point to a group is ``1 − x·S/|group|`` with ``S``
the group's sum, so each cut costs one (m × d) by (d × k) product, with no pairwise matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.cluster.hierarchy import cut_tree, linkage

from .embed import Matrix, normalise

#: Texts that build the Ward tree (its memory is m²/2 doubles: 144 MB at 6,000).
TREE_SAMPLE = 6000
#: Rows scored per block when every text is assigned to its nearest centroid.
BLOCK = 32_768

Labels = NDArray[np.int64]


@dataclass(frozen=True)
class Partition:
    """Labels 0 … k−1 (numbered by falling size), the unit centroids (k × d), how k was
    chosen (``"given"``, ``"silhouette"`` or ``"single"``) and the chosen cut's silhouette."""

    labels: Labels
    centroids: Matrix
    k: int
    chosen_by: str
    silhouette: float | None


def k_max(n: int) -> int:
    """The largest k tried for ``n`` texts: ⌈√n⌉."""
    return math.ceil(math.sqrt(n))


def silhouette(x: Matrix, labels: Labels, k: int) -> float:
    """Mean silhouette of unit rows ``x`` under ``labels`` (0 … k−1), cosine distance;
    a point alone in its group scores 0, as in Rousseeuw's definition."""
    n = len(x)
    member = sp.csr_matrix((np.ones(n, np.float32), (labels, np.arange(n))), shape=(k, n))
    sums = np.asarray(member @ x, dtype=np.float32)
    sizes = np.bincount(labels, minlength=k).astype(np.float32)
    dots = x @ sums.T
    rows = np.arange(n)
    own_size = sizes[labels]
    a = 1.0 - (dots[rows, labels] - np.einsum("ij,ij->i", x, x)) / np.maximum(own_size - 1, 1)
    others = 1.0 - dots / np.maximum(sizes, 1)[None, :]
    others[rows, labels] = np.inf
    b = others.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[own_size <= 1] = 0.0
    return float(s.mean())


def partition(x: Matrix, *, k: int | None, seed: int, cap: int | None = None) -> Partition:
    """Partition the unit rows of ``x`` (no zero rows) into ``k`` groups, or into the
    number the silhouette prefers among 2 … min(⌈√n⌉, ``cap``) when ``k`` is None."""
    n = len(x)
    if n == 0:
        return Partition(np.zeros(0, np.int64), np.zeros((0, x.shape[1]), np.float32), 0, "single", None)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, TREE_SAMPLE, replace=False)) if n > TREE_SAMPLE else np.arange(n)
    xs = x[sample]
    distinct = len(np.unique(xs, axis=0))
    if k is not None:
        chosen, how = max(1, min(k, distinct)), "given"
    else:
        hi = min(k_max(n), distinct, cap if cap is not None else n)
        chosen, how = (1, "single") if hi < 2 else (0, "silhouette")
    if distinct < 2 or chosen == 1:
        return _finish(x, np.zeros(len(xs), np.int64), xs, 1, how, None)
    tree = linkage(xs.astype(np.float64), method="ward")
    if how == "given":
        cut = cut_tree(tree, n_clusters=[chosen])[:, 0].astype(np.int64)
        return _finish(x, cut, xs, chosen, how, silhouette(xs, cut, chosen))
    ks = np.arange(2, hi + 1)
    cuts = cut_tree(tree, n_clusters=ks).astype(np.int64)
    scores = [silhouette(xs, cuts[:, i], int(kk)) for i, kk in enumerate(ks)]
    best = int(np.argmax(scores))  # the first maximum: the smallest k on a tie
    return _finish(x, cuts[:, best], xs, int(ks[best]), how, scores[best])


def nearest(x: Matrix, centroids: Matrix) -> Labels:
    """The index of each row's nearest (largest dot product) centroid, in blocks."""
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), BLOCK):
        out[start : start + BLOCK] = np.argmax(x[start : start + BLOCK] @ centroids.T, axis=1)
    return out


def _finish(x: Matrix, cut: Labels, xs: Matrix, k: int, how: str, score: float | None) -> Partition:
    """Every row to its nearest sample centroid; groups renumbered by falling size."""
    member = sp.csr_matrix((np.ones(len(xs), np.float32), (cut, np.arange(len(xs)))), shape=(k, len(xs)))
    centroids = normalise(np.asarray(member @ xs, dtype=np.float32))
    labels = nearest(x, centroids) if k > 1 else np.zeros(len(x), np.int64)
    sizes = np.bincount(labels, minlength=k)
    order = [int(c) for c in np.lexsort((np.arange(k), -sizes)) if sizes[c] > 0]
    renumber = np.full(k, -1, np.int64)
    renumber[order] = np.arange(len(order))
    labels = renumber[labels]
    rows = (labels, np.arange(len(x)))
    member = sp.csr_matrix((np.ones(len(x), np.float32), rows), shape=(len(order), len(x)))
    centroids = normalise(np.asarray(member @ x, dtype=np.float32))
    return Partition(labels, centroids, len(order), how, score)
