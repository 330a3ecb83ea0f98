"""Document processing as job steps: parse, chunk, embed, index."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from application.jobs import JobContext, JobStep, StepFailed
from domain.entities import Chunk, RagConfig, Workspace
from domain.ports.processing import ChunkIndex, Embedder, TextExtractor, UnreadableFile
from domain.ports.storage import FileStorage

PARSING = "Parsing"
CHUNKING = "Chunking text"
EMBEDDING = "Generating embeddings"
INDEXING = "Indexing to vector store"
DOCUMENT_STEPS: tuple[str, ...] = (PARSING, CHUNKING, EMBEDDING, INDEXING)

SUPPORTED_EXTENSIONS = frozenset({".txt", ".md", ".html", ".htm", ".pdf"})


def document_steps(workspace: Workspace) -> Sequence[str]:
    """The step plan of a document uploaded into ``workspace``."""
    return DOCUMENT_STEPS


def split_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Deterministic chunks of at most ``size`` characters, ``overlap`` shared between neighbours.

    A chunk ends at the last whitespace inside its window when there is one, and the next
    starts at the first word that begins within ``overlap`` characters before that end, so
    that words are not cut.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, got size={size} overlap={overlap}")
    text = " ".join(text.split())
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + overlap + 1, end)
            if cut > start:
                end = cut
        chunk = text[start:end].strip()
        if chunk:
            chunks.append(chunk)
        if end >= len(text):
            break
        next_start = end - overlap
        if 0 < next_start < end and text[next_start - 1] != " ":
            space = text.find(" ", next_start, end)
            next_start = end if space == -1 else space + 1
        start = max(next_start, start + 1)
    return chunks


class IngestionSteps:
    """The four steps of the seed's ingestion worker, built on the processing ports."""

    def __init__(
        self,
        storage: FileStorage,
        extractor: TextExtractor,
        embedder: Embedder,
        index: ChunkIndex,
        rag_config_for: Callable[[int], RagConfig],
    ) -> None:
        self._storage = storage
        self._extractor = extractor
        self._embedder = embedder
        self._index = index
        self._rag_config_for = rag_config_for

    def steps(self) -> list[JobStep]:
        return [
            JobStep(PARSING, self.parse),
            JobStep(CHUNKING, self.chunk),
            JobStep(EMBEDDING, self.embed),
            JobStep(INDEXING, self.index),
        ]

    def parse(self, context: JobContext) -> None:
        document = context.document
        try:
            data = self._storage.read(document.storage_key)
        except FileNotFoundError:
            raise StepFailed("the uploaded file is missing from storage") from None
        try:
            extracted = self._extractor.extract(data, document.filename)
        except UnreadableFile as exc:
            raise StepFailed(str(exc)) from None
        context.values["text"] = extracted.text
        context.metadata["pages"] = extracted.pages
        context.metadata["characters"] = len(extracted.text)

    def chunk(self, context: JobContext) -> None:
        config = self._rag_config_for(context.document.workspace_id)
        chunks = split_text(
            context.values["text"], size=config.chunk_size, overlap=config.chunk_overlap
        )
        if not chunks:
            raise StepFailed("the document contains no text")
        context.values["chunks"] = chunks
        context.chunk_count = len(chunks)

    def embed(self, context: JobContext) -> None:
        context.values["vectors"] = self._embedder.embed(context.values["chunks"])
        context.metadata["embedding_model"] = self._embedder.name
        context.metadata["embedding_dimensions"] = self._embedder.dimensions

    def index(self, context: JobContext) -> None:
        document_id = context.document.id
        chunks = [
            Chunk(document_id, position, text, vector)
            for position, (text, vector) in enumerate(
                zip(context.values["chunks"], context.values["vectors"], strict=True)
            )
        ]
        self._index.replace(document_id, chunks)
