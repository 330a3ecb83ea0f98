"""How documents and workspaces look in the HTTP API and in snapshot frames."""

from __future__ import annotations

from typing import Any

from domain.entities import Document, Workspace
from domain.history import StatusHistoryEntry
from domain.timing import announced_eta


def document_json(document: Document) -> dict[str, Any]:
    return {
        "id": document.id,
        "user_id": document.user_id,
        "workspace_id": document.workspace_id,
        "filename": document.filename,
        "processing_status": document.processing_status.value,
        "processing_error": document.processing_error,
        "chunk_count": document.chunk_count,
        "metadata": dict(document.metadata),
        "progress": document.progress.to_json(),
        "eta_seconds": announced_eta(document),
        "version": document.version,
        "position": document.position,
        "created_at": document.created_at.isoformat(),
        "updated_at": document.updated_at.isoformat(),
    }


def workspace_json(workspace: Workspace) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "user_id": workspace.user_id,
        "name": workspace.name,
        "status": workspace.status.value,
        "status_message": workspace.status_message,
        "version": workspace.version,
        "position": workspace.position,
        "created_at": workspace.created_at.isoformat(),
        "updated_at": workspace.updated_at.isoformat(),
    }


def history_entry_json(entry: StatusHistoryEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "from_status": entry.from_status,
        "to_status": entry.to_status,
        "version": entry.version,
        "position": entry.position,
        "actor": entry.actor,
        "step": entry.step,
        "step_seconds": entry.step_seconds,
        "error": entry.error,
    }
