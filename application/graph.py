"""Entity graphs from text: recurring proper nouns and key phrases, and their co-occurrence."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator, Sequence

from application.deadlines import checkpoint
from domain.entities import GraphEdge, GraphNode

# A candidate entity is a run of capitalised words ("Status Service", "RabbitMQ") or an
# acronym. Its first word starts at a word boundary with a capital and is either the whole
# run of word characters and hyphens from there, when a lower-case letter or digit follows
# the capital inside that run, or else the capitals alone (two or more); each next word is a
# whole run that starts with a capital, after whitespace. A single regular expression says
# the same but backtracks: on "A-A-A-…" it rescans the run from every capital, which is
# quadratic, so the scan below visits each character a bounded number of times instead.
_RUN = re.compile(r"[\w-]+")
_WORD_START = re.compile(r"(?<!\w)[A-Z]")
_LOWER_OR_DIGIT = re.compile(r"[a-z0-9]")
_CAPITALS = re.compile(r"[A-Z]+")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\S+")
_STOPWORD_TEXT = """
    A An And As At But By For From He Her His How I If In Into It Its Of On Or She So That The
    Their Then There These They This To We What When Where Which While Who Why With You Your
    Our Each Every Is Are Was Were Be Not No Yes Also All Any
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _candidates(text: str) -> Iterator[str]:
    runs = _RUN.finditer(text)
    run = next(runs, None)
    while run is not None:
        start, end = run.span()
        first = _first_word(text, start, end)
        if first is None:
            run = next(runs, None)
            continue
        yield from first[1]
        if first[0] < 0:
            run = next(runs, None)
            continue
        # The first word reaches the end of its run; whole capitalised runs right after
        # whitespace continue it.
        last_end = end
        run = next(runs, None)
        while (
            run is not None
            and "A" <= text[run.start()] <= "Z"
            and _SPACE.fullmatch(text, last_end, run.start())
        ):
            last_end = run.end()
            run = next(runs, None)
        yield text[first[0] : last_end]


def _first_word(text: str, start: int, end: int) -> tuple[int, list[str]] | None:
    """Where a candidate reaching the run's end starts (-1 if none), after the acronyms
    that end inside the run; ``None`` if the run holds no candidate at all."""
    # The last lower-case letter or digit of the run, searched from its end once.
    tail = _LOWER_OR_DIGIT.search(text[start:end][::-1])
    last_lower = end - 1 - tail.start() if tail else -1
    resume = start
    inside: list[str] = []
    for word_start in _WORD_START.finditer(text, start, end):
        first = word_start.start()
        if first < resume:
            continue
        if last_lower > first:
            return first, inside
        capitals = _CAPITALS.match(text, first, end)
        assert capitals is not None  # a word start is a capital
        if capitals.end() - first < 2:
            continue
        if capitals.end() == end:
            return first, inside
        inside.append(text[first : capitals.end()])
        resume = capitals.end()
    return (-1, inside) if inside else None


def entities_in(text: str) -> list[str]:
    """The candidate entities of one text, in order of appearance."""
    found = []
    for candidate in _candidates(text):
        # Leading stopwords are dropped ("The Status Service" is "Status Service"); walked
        # word by word and joined by one substitution, so a huge candidate is no huge list.
        first = next(
            (word.start() for word in _WORD.finditer(candidate) if word[0] not in _STOPWORDS),
            None,
        )
        if first is None:
            continue
        entity = _SPACE.sub(" ", candidate[first:])
        if " " in entity or len(entity) >= 3:
            found.append(entity)
    return found


def build_graph(
    chunks: Sequence[str], *, min_mentions: int = 2, max_nodes: int = 200
) -> tuple[list[GraphNode], list[GraphEdge]]:
    """Nodes for entities mentioned at least ``min_mentions`` times, edges for shared chunks.

    Deterministic: ties are broken alphabetically, so the same text gives the same graph.
    """
    mentions: Counter[str] = Counter()
    per_chunk: list[set[str]] = []
    for chunk in chunks:
        # A graph of a large document is the longest loop of its step: it stops at its deadline.
        checkpoint()
        found = entities_in(chunk)
        mentions.update(found)
        per_chunk.append(set(found))
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
