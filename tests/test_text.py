"""Text analysis (microjourney.text): embeddings offline, intents and themes,
mapping clusters to moments, sentiment. One Banking77 clustering, shared by a fixture."""

from __future__ import annotations

import collections
import importlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from microjourney import text
from microjourney.text import assign, cluster, embed, sentiment, themes

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
BANKING = REALDATA / "text" / "banking77_train.csv"
TELECOM = REALDATA / "surveys" / "telecom_nps_verbatims.csv.gz"

CARDS = ["my card payment was declined", "the shop declined my card", "card declined at the till",
         "why was my card payment refused", "my card keeps getting declined", "declined card payment again"]
PASSCODE = ["I forgot my passcode", "how do I reset my passcode", "reset the app passcode",
            "I can't remember my passcode", "passcode forgotten, help", "need a new passcode"]


def test_exported_names() -> None:
    assert sorted(text.__all__) == ["Assignment", "Cluster", "Clusters", "Embedding", "Match", "Note",
                                    "Sentiment", "assign", "cluster", "embed", "sentiment", "themes"]


def test_embed_offline_unit_rows() -> None:
    e = embed(CARDS + PASSCODE + ["", "   "])
    assert e.method == "wordllama-l2_supercat-256" and e.warnings == ()
    norms = np.linalg.norm(e.matrix, axis=1)
    assert np.allclose(norms[:-2], 1, atol=1e-5) and np.all(norms[-2:] == 0)
    within = e.matrix[:6] @ e.matrix[1:6].T
    across = e.matrix[:6] @ e.matrix[6:12].T
    assert within.mean() > across.mean()


def test_fallback_to_tfidf_with_a_coded_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise FileNotFoundError("weights not found")

    monkeypatch.setattr(importlib.import_module("microjourney.text.embed"), "_model", broken)
    e = embed(CARDS + PASSCODE)
    assert e.method == "tfidf-svd" and [n.code for n in e.warnings] == ["embedding-fallback"]
    c = cluster(CARDS + PASSCODE)
    assert c.method == "tfidf-svd" and "embedding-fallback" in [n.code for n in c.warnings]
    with pytest.raises(FileNotFoundError):
        embed(["x"], method="wordllama")


def test_two_obvious_groups_are_separated_and_named() -> None:
    c = cluster(CARDS + PASSCODE, seed=3)
    assert c.k == 2 and c.chosen_by == "silhouette"
    assert len(set(c.labels[:6].tolist())) == 1 and len(set(c.labels[6:].tolist())) == 1
    assert c.labels[0] != c.labels[6]
    by_size = {g.id: g for g in c.clusters}
    assert "declined" in by_size[int(c.labels[0])].terms and "passcode" in by_size[int(c.labels[6])].terms
    assert all(len(g.examples) == 3 and g.centroid.shape == (256,) for g in c.clusters)
    again = cluster(CARDS + PASSCODE, seed=3)
    assert again == c and np.array_equal(again.labels, c.labels)


def test_empty_single_blank_and_identical_inputs() -> None:
    empty = cluster([])
    assert empty.k == 0 and empty.clusters == () and [n.code for n in empty.warnings] == ["no-texts"]
    one = cluster(["where is my card?"])
    assert one.k == 1 and one.labels.tolist() == [0] and one.clusters[0].examples == ("where is my card?",)
    blanks = cluster(["", " ", "card declined"])
    assert blanks.labels.tolist() == [-1, -1, 0] and "blank-texts" in [n.code for n in blanks.warnings]
    same = cluster(["card declined"] * 5)
    assert same.k == 1 and same.labels.tolist() == [0] * 5
    asked = cluster(CARDS[:3], k=10)
    assert asked.k == 3 and "k-reduced" in [n.code for n in asked.warnings]
    with pytest.raises(ValueError):
        cluster(CARDS, k=0)
    assert sentiment([]).labels == () and themes([]).k == 0


def test_huge_and_weird_texts_cost_bounded_time() -> None:
    weird = ["\u202e\u0000\ufeff😀" * 30_000, "é" * 200_000, "card " * 40_000, "\ud800 lone surrogate",
             "  \n\t"]
    start = time.perf_counter()
    e = embed(weird)
    c = cluster(weird + CARDS)
    s = sentiment(weird)
    assert time.perf_counter() - start < 5
    assert e.matrix.shape == (5, 256) and "text-truncated" in [n.code for n in e.warnings]
    assert len(c.labels) == 11 and len(s) == 5 and np.all(np.abs(s.scores) <= 1)


def test_sentiment_labels_and_range() -> None:
    s = sentiment(["I love this, great service!", "Terrible. Nobody called me back and I am angry.",
                   "The engineer came on Tuesday."])
    assert s.labels == ("positive", "negative", "neutral")
    assert s.scores[0] > 0.5 > -0.5 > s.scores[1]


def test_assign_texts_and_unmapped() -> None:
    targets = {"card_payment": ["card payment declined"],
               "password_reset": ["forgot passcode", "reset my PIN"], "empty": ["  "]}
    texts = ["the shop declined my card payment", "I forgot my passcode", "what's the weather like"]
    a = assign(texts, targets)
    assert [m.target for m in a.matches] == ["card_payment", "password_reset", None]
    assert "target-without-phrases" in [n.code for n in a.warnings]


@pytest.fixture(scope="module")
def banking() -> tuple[pd.DataFrame, text.Clusters]:
    if not BANKING.exists():
        pytest.skip(f"real data not found at {BANKING} (../shared/realdata is not checked out)")
    df = pd.read_csv(BANKING)
    return df, cluster(df["text"].tolist(), seed=0)


def test_banking77_intents_found_without_being_told_k(banking: tuple[pd.DataFrame, text.Clusters]) -> None:
    df, c = banking
    nmi = normalized_mutual_info_score(df["category"], c.labels)
    ari = adjusted_rand_score(df["category"], c.labels)
    # docs/intents.md: seed 0 gives k = 69, NMI 0.726, ARI 0.414 (k-means at the true k = 77: 0.71)
    assert c.chosen_by == "silhouette" and 40 <= c.k <= 101
    assert nmi >= 0.72 and ari >= 0.35
    assert sum(g.size for g in c.clusters) == len(df) and all(len(g.terms) == 4 for g in c.clusters)


def test_banking77_clusters_map_to_moments(banking: tuple[pd.DataFrame, text.Clusters]) -> None:
    df, c = banking
    moments = {
        "card_payment": ["my card payment was declined", "why was my card declined",
                         "the shop declined my card payment"],
        "password_reset": ["I forgot my passcode", "how do I reset my PIN", "change my PIN number",
                           "my PIN is blocked"],
    }
    a = assign(c, moments)
    dominant = {g.id: collections.Counter(df["category"][c.labels == g.id]).most_common(1)[0][0]
                for g in c.clusters}
    target = {m.item: m.target for m in a.matches}
    declined = [g for g, cat in dominant.items() if cat == "declined_card_payment"]
    pin = [g for g, cat in dominant.items() if cat in ("passcode_forgotten", "change_pin", "pin_blocked")]
    assert declined and pin
    assert all(target[g] == "card_payment" for g in declined)
    assert all(target[g] == "password_reset" for g in pin)
    # most intents belong to neither moment
    assert sum(t is None for t in target.values()) >= 0.7 * c.k


def test_telecom_sentiment_orders_detractors_below_promoters() -> None:
    if not TELECOM.exists():
        pytest.skip(f"real data not found at {TELECOM} (../shared/realdata is not checked out)")
    df = pd.read_csv(TELECOM).dropna(subset=["NPS_SCORE"])
    s = sentiment(df["text"].fillna("").astype(str).tolist())
    score = pd.Series(s.scores, index=df.index)
    detractors, promoters = score[df["NPS_SCORE"] <= 6].mean(), score[df["NPS_SCORE"] >= 9].mean()
    # docs/intents.md: detractors -0.209, promoters +0.417, Spearman rho 0.606
    assert detractors < -0.1 and promoters > 0.3
    assert spearmanr(score, df["NPS_SCORE"]).statistic > 0.5


def test_telecom_detractor_themes() -> None:
    if not TELECOM.exists():
        pytest.skip(f"real data not found at {TELECOM} (../shared/realdata is not checked out)")
    df = pd.read_csv(TELECOM)
    verbatims = df.loc[df["NPS_SCORE"] <= 6, "text"].dropna().astype(str).tolist()
    t = themes(verbatims, seed=1)
    assert 2 <= t.k <= 8 and sum(g.size for g in t.clusters) == (t.labels >= 0).sum()
    assert all(g.terms and 1 <= len(g.examples) <= 3 for g in t.clusters)
    again = themes(verbatims, seed=1)
    assert again == t and np.array_equal(again.labels, t.labels)
