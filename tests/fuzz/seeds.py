"""Starting inputs for the fuzz targets: valid values, so that mutation explores from there."""

from __future__ import annotations

from domain.events import DocumentStatusUpdated, DocumentUploaded, WorkspaceCreated, encode
from domain.progress import Progress
from domain.status import DocumentProcessingStatus

_STATUS = DocumentStatusUpdated(
    document_id=7,
    user_id=42,
    workspace_id=3,
    filename="notes.pdf",
    status=DocumentProcessingStatus.PROCESSING,
    error=None,
    chunk_count=2,
    metadata={"pages": 3, "tags": ["a", {"b": None}]},
    progress=Progress.plan(["Parsing", "Chunking"]),
    version=4,
)

SEEDS: dict[str, tuple[bytes, ...]] = {
    "event_body": (
        encode(_STATUS),
        encode(
            DocumentUploaded(document_id=7, user_id=42, workspace_id=3, file_path="f", version=1)
        ),
        encode(WorkspaceCreated(workspace_id=3, user_id=42, name="Reports", version=1)),
    ),
    "json_body": (b'{"name": "Reports"}', b'{"name": "\\u00e9", "x": [1, 2.5, true, null]}'),
    "path_id": (b"7", b"9223372036854775807"),
    "bearer": (b"Bearer v1.eyJzdWIiOjF9.c2ln",),
    "graph_text": (b"The Status Service talks to RabbitMQ and NATS. Status Service-Worker A-B-C",),
    "chunk_text": (b"\x10\x04one two three four five six seven eight nine ten",),
}
