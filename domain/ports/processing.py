"""What document processing needs: text extraction, embeddings, a vector index."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from domain.entities import Chunk, GraphEdge, GraphNode


class UnreadableFile(Exception):
    """A file whose text cannot be extracted; the message is meant for the user."""


@dataclass(frozen=True, slots=True)
class ExtractedText:
    text: str
    pages: int


class TextExtractor(ABC):
    """Extracts plain text from an uploaded file."""

    @abstractmethod
    def extract(self, data: bytes, filename: str) -> ExtractedText:
        """The text; ``UnreadableFile`` if the file is unsupported, empty, encrypted or corrupt."""


class Embedder(ABC):
    """Turns texts into fixed-length vectors."""

    name: str
    dimensions: int

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> list[tuple[float, ...]]:
        """One vector per text, in order."""


class ChunkIndex(ABC):
    """Stores a document's chunks with their vectors."""

    @abstractmethod
    def replace(self, document_id: int, chunks: Sequence[Chunk]) -> None:
        """Atomically replace every chunk stored for the document."""

    @abstractmethod
    def count(self, document_id: int) -> int:
        """How many chunks the document has stored."""

    @abstractmethod
    def chunks(self, document_id: int) -> list[Chunk]:
        """The document's chunks in position order."""


class GraphStore(ABC):
    """Stores a document's entity graph."""

    @abstractmethod
    def replace(
        self, document_id: int, nodes: Sequence[GraphNode], edges: Sequence[GraphEdge]
    ) -> None:
        """Atomically replace the document's nodes and edges."""

    @abstractmethod
    def counts(self, document_id: int) -> tuple[int, int]:
        """How many nodes and edges the document has stored."""
