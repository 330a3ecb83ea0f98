"""Entity graphs from text: recurring proper nouns and key phrases, and their co-occurrence."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence

from domain.entities import GraphEdge, GraphNode

# A run of capitalised words ("Status Service", "RabbitMQ"), or an acronym.
_CANDIDATE = re.compile(
    r"\b(?:[A-Z][\w-]*[a-z0-9][\w-]*|[A-Z]{2,})(?:\s+(?:[A-Z][\w-]*|[A-Z]{2,}))*"
)
_STOPWORD_TEXT = """
    A An And As At But By For From He Her His How I If In Into It Its Of On Or She So That The
    Their Then There These They This To We What When Where Which While Who Why With You Your
    Our Each Every Is Are Was Were Be Not No Yes Also All Any
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def entities_in(text: str) -> list[str]:
    """The candidate entities of one text, in order of appearance."""
    found = []
    for match in _CANDIDATE.finditer(text):
        words = match.group(0).split()
        while words and words[0] in _STOPWORDS:
            words = words[1:]
        if words and not (len(words) == 1 and len(words[0]) < 3):
            found.append(" ".join(words))
    return found


def build_graph(
    chunks: Sequence[str], *, min_mentions: int = 2, max_nodes: int = 200
) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Nodes for entities mentioned at least ``min_mentions`` times, edges for shared chunks.

    Deterministic: ties are broken alphabetically, so the same text gives the same graph.
    """
    per_chunk = [set(entities_in(chunk)) for chunk in chunks]
    mentions = Counter(entity for chunk in chunks for entity in entities_in(chunk))
    kept = sorted(
        (entity for entity, count in mentions.items() if count >= min_mentions),
        key=lambda entity: (-mentions[entity], entity),
    )[:max_nodes]
    keep = set(kept)
    weights: Counter[tuple[str, str]] = Counter()
    for entities in per_chunk:
        for source, target in itertools.combinations(sorted(entities & keep), 2):
            weights[(source, target)] += 1
    nodes = [GraphNode(entity, mentions[entity]) for entity in kept]
    edges = [GraphEdge(s, t, w) for (s, t), w in sorted(weights.items())]
    return nodes, edges
