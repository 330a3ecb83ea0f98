"""Chunking, text extraction and the offline embedder."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.processing.embedding import FeatureHashingEmbedder
from adapters.processing.extraction import FileTextExtractor
from application.pipeline import split_text
from domain.ports.processing import UnreadableFile


def test_chunks_respect_size_and_overlap_and_do_not_cut_words() -> None:
    text = " ".join(f"word{n}" for n in range(200))
    chunks = split_text(text, size=100, overlap=20)
    assert all(len(chunk) <= 100 for chunk in chunks)
    words = set(text.split())
    assert all(set(chunk.split()) <= words for chunk in chunks)
    for left, right in itertools.pairwise(chunks):
        assert left.split()[-1] in right.split()[:5]
    assert chunks == split_text(text, size=100, overlap=20)


@given(st.text(max_size=2000), st.integers(20, 300), st.integers(0, 19))
def test_chunking_covers_every_word_and_terminates(text: str, size: int, overlap: int) -> None:
    chunks = split_text(text, size=size, overlap=overlap)
    assert all(0 < len(chunk) <= size for chunk in chunks)
    covered = " ".join(chunks)
    for word in text.split():
        if len(word) <= size:
            assert word in covered


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_chunking_refuses_nonsense_settings(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        split_text("a b c", size=size, overlap=overlap)


def test_text_markdown_and_html_are_extracted() -> None:
    extractor = FileTextExtractor()
    assert extractor.extract("héllo".encode(), "a.txt").text == "héllo"
    assert extractor.extract(b"\xef\xbb\xbf# Title", "a.md").text == "# Title"
    html = (
        b"<html><head><style>x{}</style><script>alert(1)</script></head>"
        b"<body><p>Hi &amp; bye</p></body></html>"
    )
    extracted = extractor.extract(html, "page.HTML")
    assert "Hi & bye" in extracted.text
    assert "alert" not in extracted.text
    assert "x{}" not in extracted.text


@pytest.mark.parametrize(
    ("data", "name", "reason"),
    [
        (b"", "a.txt", "empty"),
        (b"   \n", "a.md", "empty"),
        (b"\xff\xfe\xfa", "a.txt", "not UTF-8"),
        (b"a\x00b", "a.txt", "binary"),
        (b"<html><script>only()</script></html>", "a.html", "no text"),
        (b"%PDF-1.4 garbage", "a.pdf", "corrupt"),
        (b"hello", "a.docx", "unsupported"),
    ],
)
def test_unreadable_files_give_a_user_readable_reason(data: bytes, name: str, reason: str) -> None:
    with pytest.raises(UnreadableFile, match=reason):
        FileTextExtractor().extract(data, name)


def test_the_embedder_is_deterministic_normalised_and_named() -> None:
    embedder = FeatureHashingEmbedder(dimensions=64)
    first, second, other = embedder.embed(["status tracking", "status tracking", "graph"])
    assert first == second
    assert first != other
    assert len(first) == 64
    assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0)
    assert embedder.name == "feature-hashing-64"
    assert embedder.embed([""]) == [tuple([0.0] * 64)]
