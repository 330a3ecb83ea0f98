"""Document processing as pipeline stages of job steps.

Each stage is deployable as its own worker and hands the document on through the work queue:

    document.uploaded → ingestion (Parsing, Chunking text)
    document.chunked  → embeddings (Generating embeddings, Indexing to vector store)
    document.embedded → graph (Building graph; only where the workspace enables it)

A document's plan (its step list) is fixed at upload from its workspace's settings; the
document becomes ``ready`` when the last step of its plan completes, whichever stage that is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from application.deadlines import checkpoint
from application.graph import build_graph
from application.jobs import JobContext, JobStep, StepFailed
from application.tracing import current_traceparent
from domain.entities import Chunk, Document, RagConfig, Workspace
from domain.events import DocumentChunked, DocumentEmbedded, DocumentUploaded, DocumentWork
from domain.ports import FileStorage, RagConfigs
from domain.ports.processing import (
    ChunkIndex,
    Embedder,
    GraphStore,
    TextExtractor,
    UnreadableFile,
)
from domain.progress import Progress

PARSING = "Parsing"
CHUNKING = "Chunking text"
EMBEDDING = "Generating embeddings"
INDEXING = "Indexing to vector store"
GRAPHING = "Building graph"

EMBEDDING_BATCH = 256

SUPPORTED_EXTENSIONS = frozenset({".txt", ".md", ".html", ".htm", ".pdf"})


@dataclass(frozen=True)
class Stage:
    """A part of the pipeline that one kind of worker runs."""

    name: str
    labels: tuple[str, ...]
    consumes: type[DocumentWork]
    hands_on: type[DocumentChunked] | type[DocumentEmbedded] | None

    def enabled_for(self, progress: Progress) -> bool:
        return any(label in progress.labels for label in self.labels)


INGESTION = Stage("ingestion", (PARSING, CHUNKING), DocumentUploaded, DocumentChunked)
EMBEDDINGS = Stage("embeddings", (EMBEDDING, INDEXING), DocumentChunked, DocumentEmbedded)
GRAPH = Stage("graph", (GRAPHING,), DocumentEmbedded, None)
STAGES: tuple[Stage, ...] = (INGESTION, EMBEDDINGS, GRAPH)
STAGES_BY_NAME = {stage.name: stage for stage in STAGES}
DOCUMENT_STEPS: tuple[str, ...] = INGESTION.labels + EMBEDDINGS.labels


def plan_for(config: RagConfig) -> tuple[str, ...]:
    """The step list of a document processed under ``config``."""
    return DOCUMENT_STEPS + (GRAPH.labels if config.graph_enabled else ())


def document_steps(workspace: Workspace) -> Sequence[str]:
    """The plan under the default settings (used where no settings store is wired)."""
    return plan_for(RagConfig())


def stage_for_step(label: str) -> Stage:
    return next(stage for stage in STAGES if label in stage.labels)


def work_request_for(stage: Stage, document: Document, *, file_path: str) -> DocumentWork:
    """The work request that starts ``stage`` for ``document``."""
    if stage.consumes is DocumentUploaded:
        return DocumentUploaded(
            document_id=document.id,
            user_id=document.user_id,
            workspace_id=document.workspace_id,
            file_path=file_path,
            version=document.version,
            traceparent=current_traceparent(),
        )
    request = DocumentChunked if stage.consumes is DocumentChunked else DocumentEmbedded
    return request(
        document_id=document.id,
        user_id=document.user_id,
        workspace_id=document.workspace_id,
        version=document.version,
        traceparent=current_traceparent(),
    )


class Planner:
    """Decides a new document's step list from its workspace's settings."""

    def __init__(self, rag_configs: RagConfigs) -> None:
        self._rag_configs = rag_configs

    def __call__(self, workspace: Workspace) -> tuple[str, ...]:
        return plan_for(self._rag_configs.for_workspace(workspace.id) or RagConfig())


_WHITESPACE = re.compile(r"\s+")
# Normalised a block at a time: one substitution over a megabyte leaves a list of a million
# pieces and a string as large behind it, and walking that memory out of cache made the cost
# grow faster than the text. A block's pieces are joined and freed while they are still hot.
_NORMALISE_BLOCK = 16 * 1024


def normalise_whitespace(text: str) -> str:
    """``text`` with every run of whitespace one space, and none at either end.

    The same string as ``" ".join(text.split())``, in time linear in ``text``.
    """
    blocks: list[str] = []
    ends_in_space = False
    for at in range(0, len(text), _NORMALISE_BLOCK):
        block = _WHITESPACE.sub(" ", text[at : at + _NORMALISE_BLOCK])
        if ends_in_space and block.startswith(" "):
            # The run of whitespace crosses the boundary: the previous block has its space.
            block = block[1:]
        if block:
            blocks.append(block)
            ends_in_space = block.endswith(" ")
    return "".join(blocks).strip()


def split_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Deterministic chunks of at most ``size`` characters, ``overlap`` shared between neighbours.

    A chunk ends at the last whitespace inside its window when there is one, and the next
    starts at the first word that begins within ``overlap`` characters before that end, so
    that words are not cut.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, got size={size} overlap={overlap}")
    text = normalise_whitespace(text)
    chunks: list[str] = []
    start = 0
    while start < len(text):
        if text[start] == " ":
            start += 1  # a window starts at a word, so that a word as long as it fits whole
        end = min(start + size, len(text))
        if end < len(text) and text[end] != " ":
            cut = text.rfind(" ", start + overlap + 1, end)
            if cut <= start:
                # The window's only spaces lie in the overlap: end at one rather than cut the
                # word after it, which fits the next window whole.
                cut = text.rfind(" ", start + 1, end)
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


class DocumentSteps:
    """Every step of the pipeline, built on the processing ports.

    Steps of different stages may run in different processes: whatever a later stage needs
    is read back from the stores (chunks from the index), never passed in memory.
    """

    def __init__(
        self,
        storage: FileStorage,
        extractor: TextExtractor,
        embedder: Embedder,
        index: ChunkIndex,
        graph: GraphStore,
        rag_config_for: Callable[[int], RagConfig],
    ) -> None:
        self._storage = storage
        self._extractor = extractor
        self._embedder = embedder
        self._index = index
        self._graph = graph
        self._rag_config_for = rag_config_for

    def for_stage(self, stage: Stage) -> list[JobStep]:
        table = {
            PARSING: self.parse,
            CHUNKING: self.chunk,
            EMBEDDING: self.embed,
            INDEXING: self.index,
            GRAPHING: self.build_graph,
        }
        return [JobStep(label, table[label]) for label in stage.labels]

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
        texts = split_text(
            context.values["text"], size=config.chunk_size, overlap=config.chunk_overlap
        )
        if not texts:
            raise StepFailed("the document contains no text")
        # Stored now, without vectors, so that the embeddings stage can run elsewhere.
        document_id = context.document.id
        self._index.replace(
            document_id, [Chunk(document_id, n, text, ()) for n, text in enumerate(texts)]
        )
        context.chunk_count = len(texts)
        context.metadata["chunk_size"] = config.chunk_size
        context.metadata["chunk_overlap"] = config.chunk_overlap

    def embed(self, context: JobContext) -> None:
        chunks = self._index.chunks(context.document.id)
        if not chunks:
            raise StepFailed("no chunks were stored for the document; retry it")
        context.values["chunks"] = chunks
        vectors: list[tuple[float, ...]] = []
        # In batches, with a checkpoint between them: a cancel stops a long document here.
        for start in range(0, len(chunks), EMBEDDING_BATCH):
            checkpoint()
            vectors.extend(
                self._embedder.embed([c.text for c in chunks[start : start + EMBEDDING_BATCH]])
            )
        context.values["vectors"] = vectors
        context.metadata["embedding_model"] = self._embedder.name
        context.metadata["embedding_dimensions"] = self._embedder.dimensions

    def index(self, context: JobContext) -> None:
        document_id = context.document.id
        chunks: list[Chunk] = context.values["chunks"]
        vectors = context.values["vectors"]
        self._index.replace(
            document_id,
            [
                Chunk(document_id, c.position, c.text, vector)
                for c, vector in zip(chunks, vectors, strict=True)
            ],
        )
        context.chunk_count = len(chunks)

    def build_graph(self, context: JobContext) -> None:
        document_id = context.document.id
        chunks = self._index.chunks(document_id)
        if not chunks:
            raise StepFailed("no chunks were stored for the document; retry it")
        nodes, edges = build_graph([c.text for c in chunks])
        self._graph.replace(document_id, nodes, edges)
        context.metadata["graph_nodes"] = len(nodes)
        context.metadata["graph_edges"] = len(edges)
