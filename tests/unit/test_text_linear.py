"""Graph building and chunking take time linear in their text, whatever the text."""

from __future__ import annotations

import re
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from application import pipeline
from application.graph import build_graph, entities_in
from application.pipeline import normalise_whitespace, split_text

# The pattern graph building used before: the reference for what counts as a candidate.
REFERENCE = re.compile(
    r"\b(?:[A-Z][\w-]*[a-z0-9][\w-]*|[A-Z]{2,})(?:\s+(?:[A-Z][\w-]*|[A-Z]{2,}))*"
)
STOPWORDS = {
    "A",
    "An",
    "And",
    "As",
    "At",
    "But",
    "By",
    "For",
    "From",
    "He",
    "Her",
    "His",
    "How",
    "I",
    "If",
    "In",
    "Into",
    "It",
    "Its",
    "Of",
    "On",
    "Or",
    "She",
    "So",
    "That",
    "The",
    "Their",
    "Then",
    "There",
    "These",
    "They",
    "This",
    "To",
    "We",
    "What",
    "When",
    "Where",
    "Which",
    "While",
    "Who",
    "Why",
    "With",
    "You",
    "Your",
    "Our",
    "Each",
    "Every",
    "Is",
    "Are",
    "Was",
    "Were",
    "Be",
    "Not",
    "No",
    "Yes",
    "Also",
    "All",
    "Any",
}
TRICKY = st.text(alphabet="AB Zab1-_\n\t.é,É", max_size=60)


def reference_entities(text: str) -> list[str]:
    found = []
    for match in REFERENCE.finditer(text):
        words = match.group(0).split()
        while words and words[0] in STOPWORDS:
            words = words[1:]
        if words and not (len(words) == 1 and len(words[0]) < 3):
            found.append(" ".join(words))
    return found


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TRICKY)
@example("x-Foo Bar AB_CD A-A-Abc The The Status Service-X")
@example("ABC Def-ghi\tJKL-M NO-Pq")
@example("AB-CD AB")
def test_the_candidates_are_those_of_the_reference_pattern(text: str) -> None:
    assert entities_in(text) == reference_entities(text)


def _seconds(work: object, text: str) -> float:
    started = time.perf_counter()
    assert callable(work)
    work(text)
    return time.perf_counter() - started


def test_hyphenated_capitals_are_linear() -> None:
    # 100 KB of "A-A-A-…" took the old pattern minutes (0.5 s at 12.8 KB, 2 s at 25.6 KB).
    text = "A-" * 50_000
    assert _seconds(entities_in, text) < 2.0
    assert _seconds(lambda t: build_graph([t]), text) < 2.0


def test_a_long_run_of_stopwords_is_linear() -> None:
    text = "The " * 100_000 + "Zebra"
    assert _seconds(entities_in, text) < 2.0
    assert entities_in("The The The Zebra Crossing") == ["Zebra Crossing"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="ab c\n", max_size=300), st.integers(1, 40), st.data())
def test_chunks_are_bounded_and_lose_no_text(text: str, size: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, size - 1))
    chunks = split_text(text, size=size, overlap=overlap)
    assert all(0 < len(chunk) <= size for chunk in chunks)
    kept = "".join("".join(chunks).split())
    assert len(kept) >= len("".join(text.split()))
    if text.strip():
        assert chunks[0].split()[0] == text.split(maxsplit=1)[0][:size]


def test_chunking_adversarial_text_is_linear() -> None:
    # One long word, then words that leave a space just past the overlap in every window.
    text = "x" * 200_000 + (" a" + "b" * 300) * 600
    assert _seconds(lambda t: split_text(t, size=1000, overlap=200), text) < 2.0


SPACES = st.text(alphabet=" \t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000", min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(st.integers(-6, 6), st.lists(st.one_of(SPACES, st.text("ab", max_size=4)), max_size=12))
def test_whitespace_is_normalised_as_by_split_and_join_across_blocks(
    shift: int, pieces: list[str]
) -> None:
    # Whatever meets a block boundary: a run of whitespace across it, a space on either side.
    block = pipeline._NORMALISE_BLOCK
    text = "x" * (block + shift) + "".join(pieces) + "y" * block + "".join(reversed(pieces))
    assert normalise_whitespace(text) == " ".join(text.split())


@example(" " * (3 * 16 * 1024))
@example("\n" + " " * (16 * 1024) + "a")
@given(TRICKY)
def test_whitespace_normalisation_of_short_texts(text: str) -> None:
    assert normalise_whitespace(text) == " ".join(text.split())
