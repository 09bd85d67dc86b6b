"""Text analysis with no I/O: embeddings (offline), intents and themes (clusters of texts
named by their distinctive words), mapping clusters to moments, and sentiment.

See docs/intents.md for the methods and what they measured on real data.
"""

from .assign import Assignment, Match, assign
from .cluster import Cluster, Clusters, cluster, themes
from .embed import Embedding, Note, embed
from .sentiment import Sentiment, sentiment

__all__ = ["Assignment", "Cluster", "Clusters", "Embedding", "Match", "Note", "Sentiment", "assign",
           "cluster", "embed", "sentiment", "themes"]
