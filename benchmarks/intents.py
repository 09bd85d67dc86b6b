"""Intents at scale: cluster N customer texts (k chosen automatically) and time it.

    .venv/bin/python benchmarks/intents.py --texts 100000
    .venv/bin/python benchmarks/intents.py --compare      # the method table of docs/intents.md

The N texts are Banking77's 10,003 training queries (../shared/realdata) repeated, each copy
after the first perturbed (seeded): one word dropped, two neighbouring words swapped, or
one letter doubled, so that most texts are new strings with a known intent. Prints texts/s,
wall time, peak memory (ru_maxrss), NMI, ARI and the chosen k, and the same-run ratio to
the floor: embedding the texts and one k-means with k given.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from microjourney.text import cluster, embed

BANKING = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "text" / "banking77_train.csv"


def perturb(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    kind = rng.integers(3)
    if len(words) > 3 and kind == 0:
        del words[rng.integers(len(words))]
    elif len(words) > 2 and kind == 1:
        i = int(rng.integers(len(words) - 1))
        words[i], words[i + 1] = words[i + 1], words[i]
    else:
        i = int(rng.integers(len(words)))
        w = words[i]
        j = int(rng.integers(len(w)))
        words[i] = w[: j + 1] + w[j:]
    return " ".join(words)


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    df = pd.read_csv(BANKING)
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    base, cats = df["text"].tolist(), df["category"].tolist()
    for i in range(n):
        j = i % len(base)
        texts.append(base[j] if i < len(base) else perturb(base[j], rng))
        labels.append(cats[j])
    return texts, labels


def scores(y: list[str], labels: np.ndarray) -> str:
    return f"NMI {normalized_mutual_info_score(y, labels):.3f}  ARI {adjusted_rand_score(y, labels):.3f}"


def compare() -> None:
    """Each method on Banking77 (k = 77 where told, else chosen), as in docs/intents.md."""
    df = pd.read_csv(BANKING)
    texts, y = df["text"].tolist(), df["category"].tolist()

    def run(name: str, make: object) -> None:
        start = time.perf_counter()
        labels, k = make()  # type: ignore[operator]
        print(f"{name:52s} k={k:3d}  {scores(y, labels)}  {time.perf_counter() - start:5.1f} s", flush=True)

    tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform(texts)
    run("TF-IDF, k-means k=77", lambda: (KMeans(77, n_init=1, random_state=0).fit_predict(tfidf), 77))
    svd = TruncatedSVD(100, random_state=0).fit_transform(tfidf)
    svd /= np.maximum(np.linalg.norm(svd, axis=1, keepdims=True), 1e-12)
    run("TF-IDF + SVD(100), k-means k=77",
        lambda: (KMeans(77, n_init=1, random_state=0).fit_predict(svd), 77))
    x = embed(texts).matrix
    run("wordllama 256, L2, k-means k=77", lambda: (KMeans(77, n_init=1, random_state=0).fit_predict(x), 77))
    run("wordllama 256, L2, k-means k=77, 5 inits",
        lambda: (KMeans(77, n_init=5, random_state=0).fit_predict(x), 77))
    run("tfidf fallback (SVD), centred, Ward, k chosen", lambda: _auto(texts, method="tfidf"))
    run("wordllama, centred, Ward, k=77 given", lambda: _auto(texts, k=77))
    for seed in (0, 1, 2):
        run(f"wordllama, centred, Ward, k chosen (seed {seed})", lambda seed=seed: _auto(texts, seed=seed))


def _auto(texts: list[str], **kw: object) -> tuple[np.ndarray, int]:
    c = cluster(texts, **kw)  # type: ignore[arg-type]
    return c.labels, c.k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", action="store_true", help="the method table on Banking77 instead")
    args = parser.parse_args()
    if not BANKING.exists():
        sys.exit(f"Banking77 not found at {BANKING}")
    if args.compare:
        compare()
        return
    texts, y = corpus(args.texts, args.seed)
    embed(texts[:100])  # the model loaded once, as a served workspace has it
    # The floor: embedding the texts, which any clustering of them needs, and one k-means
    # with k given (scikit-learn, one start) over those vectors.
    start = time.perf_counter()
    x = embed(texts).matrix
    embedded = time.perf_counter() - start
    KMeans(77, n_init=1, random_state=0).fit(x)
    floor = time.perf_counter() - start
    start = time.perf_counter()
    c = cluster(texts, seed=args.seed)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"texts {len(texts):,}  wall {wall:.1f} s  {len(texts) / wall:,.0f} texts/s  "
          f"peak RSS {peak:,.0f} MB")
    print(f"floor (embed {embedded:.1f} s + k-means k=77 given): {floor:.1f} s  "
          f"ratio {wall / floor:.2f}x (k chosen automatically, same run)")
    print(f"k={c.k} (chosen by {c.chosen_by}, silhouette {c.silhouette:.4f})  {scores(y, c.labels)}  "
          f"notes {[n.code for n in c.warnings]}")


if __name__ == "__main__":
    main()
