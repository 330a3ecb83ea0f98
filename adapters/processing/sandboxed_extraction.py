"""Text extraction in a limited child process, so that no upload can pin or sink a worker."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.processing.extraction import EXTRACTION, FileTextExtractor
from adapters.processing.sandbox import ChildCrashed, ChildLimits, Sandbox
from application.deadlines import current_deadline
from domain.limits import Limit, StepLimitExceeded
from domain.ports.processing import ExtractedText, TextExtractor, UnreadableFile


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """CPU seconds, memory, wall-clock seconds, pages and characters of one extraction."""

    cpu_seconds: int = 30
    memory_mb: int = 1024
    wall_seconds: float = 120.0
    max_pages: int = 2000
    max_chars: int = 5_000_000

    @property
    def child(self) -> ChildLimits:
        return ChildLimits(self.cpu_seconds, self.memory_mb, self.wall_seconds)


def _extract(extractor: TextExtractor, data: bytes, filename: str) -> ExtractedText:
    return extractor.extract(data, filename)


class SandboxedTextExtractor(TextExtractor):
    """Runs an extractor (``FileTextExtractor`` by default) in a child under ``limits``.

    Bounded by the running step's deadline too, when there is one, and stopped with it.
    """

    def __init__(
        self,
        limits: ExtractionLimits | None = None,
        *,
        inner: TextExtractor | None = None,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.limits = limits or ExtractionLimits()
        self._inner = inner or FileTextExtractor(
            max_pages=self.limits.max_pages, max_chars=self.limits.max_chars
        )
        self._sandbox = sandbox or Sandbox()

    def extract(self, data: bytes, filename: str) -> ExtractedText:
        try:
            extracted = self._sandbox.run(
                EXTRACTION,
                _extract,
                self._inner,
                data,
                filename,
                limits=self.limits.child,
                deadline=current_deadline(),
            )
        except ChildCrashed:
            raise UnreadableFile("the file could not be read (its extraction crashed)") from None
        # Checked here as well, whatever extractor ran: the caps are the parent's promise.
        if extracted.pages > self.limits.max_pages:
            raise StepLimitExceeded(EXTRACTION, Limit.pages(self.limits.max_pages))
        if len(extracted.text) > self.limits.max_chars:
            raise StepLimitExceeded(EXTRACTION, Limit.characters(self.limits.max_chars))
        return extracted
