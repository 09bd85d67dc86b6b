"""Texts to vectors, offline: the static word embeddings that ship inside the ``wordllama``
wheel (256 dimensions, its only shipped size), TF-IDF + SVD when they cannot be loaded.

A text's vector is the mean of its tokens' vectors, L2-normalised, so a dot product is a
cosine. Pooling is a sparse (texts × vocabulary) count matrix times the embedding table:
no padded batches, so one 100 kB text costs what its tokens cost and no more.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

#: Characters of a text that are read; the rest is cut so that time and memory stay bounded.
MAX_CHARS = 10_000
#: The wordllama configuration and the dimension whose weights ship inside the wheel.
MODEL, DIM = "l2_supercat", 256
#: Components of the TF-IDF fallback's SVD (at most; fewer for a small vocabulary).
SVD_DIM = 100

Matrix = NDArray[np.float32]
Method = Literal["auto", "wordllama", "tfidf"]


@dataclass(frozen=True)
class Note:
    """A coded warning returned next to a result (not raised): ``code`` is stable for
    scripts, ``message`` is for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Embedding:
    """One L2-normalised row per text (a zero row for a blank text), the method that made
    it (``"wordllama-l2_supercat-256"`` or ``"tfidf-svd"``), coded warnings, and ``encode``,
    which embeds further texts (phrases, new verbatims) in the same space."""

    matrix: Matrix
    method: str
    encode: Callable[[Sequence[str]], Matrix] = field(repr=False, compare=False)
    warnings: tuple[Note, ...] = ()

    def __len__(self) -> int:
        return int(self.matrix.shape[0])


def clip(texts: Sequence[str], limit: int = MAX_CHARS) -> tuple[list[str], tuple[Note, ...]]:
    """The texts cut to ``limit`` characters (lone surrogates, which no encoder takes,
    replaced), and a note when any was cut."""
    out = [t[:limit].encode("utf-8", "replace").decode("utf-8") for t in texts]
    cut = sum(len(t) > limit for t in texts)
    if not cut:
        return out, ()
    return out, (Note("text-truncated", f"{cut} text(s) longer than {limit:,} characters were cut"),)


def normalise(x: Matrix) -> Matrix:
    """Rows scaled to unit length; zero rows stay zero."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    out: Matrix = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32, copy=False)
    return out


def embed(texts: Sequence[str], *, method: Method = "auto") -> Embedding:
    """Embed ``texts`` offline. ``method="auto"`` uses wordllama and falls back to TF-IDF
    (with the note ``embedding-fallback``) when the model cannot be loaded.

    >>> e = embed(["my card was declined", "card payment declined", "reset my passcode"])
    >>> e.matrix.shape, e.method
    ((3, 256), 'wordllama-l2_supercat-256')
    >>> bool(e.matrix[0] @ e.matrix[1] > e.matrix[0] @ e.matrix[2])
    True
    """
    clipped, notes = clip(texts)
    if method in ("auto", "wordllama"):
        try:
            model = _model()
        except Exception as exc:  # any failure to load (missing file, broken wheel) means: fall back
            if method == "wordllama":
                raise
            notes += (Note("embedding-fallback", f"wordllama could not be loaded ({exc}); TF-IDF used"),)
        else:
            encode: Callable[[Sequence[str]], Matrix] = functools.partial(_pool, model)
            return Embedding(encode(clipped), f"wordllama-{MODEL}-{DIM}", encode, notes)
    encode = _fit_tfidf(clipped)
    return Embedding(encode(clipped), "tfidf-svd", encode, notes)


def _empty(n: int, dim: int = DIM) -> Matrix:
    return np.zeros((n, dim), np.float32)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face libraries told to stay offline, for the duration of the load only."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@functools.lru_cache(maxsize=1)
def _model() -> tuple[Any, Matrix]:
    """wordllama's tokenizer and embedding table, from the installed package alone.

    Its loader looks for the shipped tokenizer in ``wordllama/tokenizer/`` but the wheel has
    it in ``wordllama/tokenizers/``; its cache lookup (``<cache>/tokenizers/``) finds it when
    the cache is the package folder. Importing wordllama calls ``logging.basicConfig`` (it
    would print INFO logs of the whole application): a handler held on the root logger
    during the import makes that call a no-op.
    """
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        import wordllama  # type: ignore[import-untyped]
        from wordllama import WordLlama
    finally:
        root.removeHandler(guard)
    package = Path(wordllama.__file__).parent
    with _offline(), warnings.catch_warnings():
        # its fallback to a download warns before failing; offline, the failure is the message
        warnings.filterwarnings("ignore", message="Local tokenizer config not found", category=UserWarning)
        model = WordLlama.load(config=MODEL, dim=DIM, cache_dir=package, disable_download=True)
    tokenizer = model.tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    table = np.ascontiguousarray(model.embedding, dtype=np.float32)
    return tokenizer, table


def _pool(model: tuple[Any, Matrix], texts: Sequence[str]) -> Matrix:
    """Mean of token vectors (as counts × table), normalised."""
    tokenizer, table = model
    if not texts:
        return _empty(0, table.shape[1])
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int64, count=int(indptr[-1]))
    np.clip(ids, 0, table.shape[0] - 1, out=ids)
    counts = sp.csr_matrix((np.ones(len(ids), np.float32), ids, indptr), shape=(len(texts), table.shape[0]))
    pooled = np.asarray(counts @ table, dtype=np.float32)
    pooled[[i for i, t in enumerate(texts) if not t.strip()]] = 0  # blank: no words, no vector
    return normalise(pooled)


def _fit_tfidf(texts: Sequence[str]) -> Callable[[Sequence[str]], Matrix]:
    """A TF-IDF (+ SVD when the vocabulary is large) encoder fitted on ``texts``."""
    from sklearn.decomposition import TruncatedSVD  # type: ignore[import-untyped]
    from sklearn.feature_extraction.text import TfidfVectorizer  # type: ignore[import-untyped]

    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1)
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:  # no words at all (empty input, blanks, punctuation only)
        return lambda t: _empty(len(t), 1)
    n_terms = tfidf.shape[1]
    rank = min(SVD_DIM, n_terms - 1, tfidf.shape[0] - 1)
    if rank < 2:
        return lambda t: normalise(np.asarray(vectorizer.transform(t).toarray(), dtype=np.float32))
    svd = TruncatedSVD(rank, random_state=0).fit(tfidf)
    return lambda t: normalise(np.asarray(svd.transform(vectorizer.transform(t)), dtype=np.float32))
