"""Chunking, text extraction and the offline embedder."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.processing.embedding import FeatureHashingEmbedder
from adapters.processing.extraction import FileTextExtractor
from adapters.processing.sandboxed_extraction import SandboxedTextExtractor
from application.pipeline import split_text
from domain.ports.processing import TextExtractor, UnreadableFile

# The sandboxed extractor runs the same extraction in a child process: same results.
_SANDBOXED = SandboxedTextExtractor()


@pytest.fixture(params=["in-process", "sandboxed"])
def extractor(request: pytest.FixtureRequest) -> TextExtractor:
    return FileTextExtractor() if request.param == "in-process" else _SANDBOXED


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


def test_text_markdown_and_html_are_extracted(extractor: TextExtractor) -> None:
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
def test_unreadable_files_give_a_user_readable_reason(
    extractor: TextExtractor, data: bytes, name: str, reason: str
) -> None:
    with pytest.raises(UnreadableFile, match=reason):
        extractor.extract(data, name)


def test_the_embedder_is_deterministic_normalised_and_named() -> None:
    embedder = FeatureHashingEmbedder(dimensions=64)
    first, second, other = embedder.embed(["status tracking", "status tracking", "graph"])
    assert first == second
    assert first != other
    assert len(first) == 64
    assert math.isclose(math.sqrt(sum(v * v for v in first)), 1.0)
    assert embedder.name == "feature-hashing-64"
    assert embedder.embed([""]) == [tuple([0.0] * 64)]


def test_caps_on_pages_and_characters_fail_naming_the_cap() -> None:
    from domain.limits import StepLimitExceeded
    from tests.support.corpus import pdf_with_pages

    three_pages = pdf_with_pages([["one"], ["two"], ["three"]])
    assert FileTextExtractor(max_pages=3).extract(three_pages, "a.pdf").pages == 3
    with pytest.raises(StepLimitExceeded, match="page limit of 2 pages"):
        FileTextExtractor(max_pages=2).extract(three_pages, "a.pdf")
    joined = FileTextExtractor().extract(three_pages, "a.pdf").text
    assert FileTextExtractor(max_chars=len(joined)).extract(three_pages, "a.pdf").text == joined
    with pytest.raises(StepLimitExceeded, match=f"text limit of {len(joined) - 1} characters"):
        FileTextExtractor(max_chars=len(joined) - 1).extract(three_pages, "a.pdf")
    html = b"<p>" + b"x" * 50 + b"</p>"
    assert FileTextExtractor(max_chars=50).extract(html, "a.html").text == "x" * 50
    with pytest.raises(StepLimitExceeded, match="text limit of 49 characters"):
        FileTextExtractor(max_chars=49).extract(html, "a.html")
    with pytest.raises(ValueError, match="positive"):
        FileTextExtractor(max_pages=0)
