"""Text extraction from .txt, .md, .html and .pdf files."""

from __future__ import annotations

import io
import posixpath
from html.parser import HTMLParser

from domain.limits import Limit, StepLimitExceeded
from domain.ports.processing import ExtractedText, TextExtractor, UnreadableFile


class _HTMLText(HTMLParser):
    SKIPPED = frozenset({"script", "style", "head", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


EXTRACTION = "text extraction"


class FileTextExtractor(TextExtractor):
    """Plain text and Markdown as UTF-8, HTML without markup, PDF page by page (pypdf).

    With caps, a PDF of more pages or a text of more characters fails with
    ``StepLimitExceeded`` as soon as that is known, before the rest is read.
    """

    def __init__(self, *, max_pages: int | None = None, max_chars: int | None = None) -> None:
        if (max_pages is not None and max_pages < 1) or (max_chars is not None and max_chars < 1):
            raise ValueError("caps on pages and characters must be positive")
        self.max_pages = max_pages
        self.max_chars = max_chars

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        extracted = self._extract(data, filename)
        self._check_characters(len(extracted.text))
        return extracted

    def _extract(self, data: bytes, filename: str) -> ExtractedText:
        extension = posixpath.splitext(filename)[1].lower()
        if not data.strip():
            raise UnreadableFile("the file is empty")
        if extension in {".txt", ".md"}:
            return ExtractedText(self._decode(data), pages=1)
        if extension in {".html", ".htm"}:
            parser = _HTMLText()
            parser.feed(self._decode(data))
            parser.close()
            return self._non_empty(" ".join(parser.parts), pages=1)
        if extension == ".pdf":
            return self._pdf(data)
        raise UnreadableFile(f"unsupported file type '{extension or filename}'")

    def _decode(self, data: bytes) -> str:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UnreadableFile("the file is not UTF-8 text") from None
        if "\x00" in text:
            raise UnreadableFile("the file is binary, not text")
        return self._non_empty(text, pages=1).text

    def _pdf(self, data: bytes) -> ExtractedText:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        try:
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise UnreadableFile("the PDF is encrypted")
            if self.max_pages is not None and len(reader.pages) > self.max_pages:
                raise StepLimitExceeded(EXTRACTION, Limit.pages(self.max_pages))
            pages: list[str] = []
            characters = 0
            for page in reader.pages:
                text = page.extract_text() or ""
                characters += len(text) + bool(pages)  # as joined, one newline between pages
                self._check_characters(characters)
                pages.append(text)
        except (UnreadableFile, StepLimitExceeded):
            raise
        except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
            raise UnreadableFile(f"the PDF is corrupt or unreadable ({exc})") from None
        return self._non_empty("\n".join(pages), pages=len(pages))

    @staticmethod
    def _non_empty(text: str, *, pages: int) -> ExtractedText:
        if not text.strip():
            raise UnreadableFile("no text could be extracted from the file")
        return ExtractedText(text, pages=pages)

    def _check_characters(self, characters: int) -> None:
        if self.max_chars is not None and characters > self.max_chars:
            raise StepLimitExceeded(EXTRACTION, Limit.characters(self.max_chars))
