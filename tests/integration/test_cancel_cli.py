"""``insighthub cancel`` as the operator, on the deployment's own SQLite database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from adapters.bootstrap import bootstrap
from domain.history import HistoryEntity
from domain.status import DocumentProcessingStatus as D
from domain.status import WorkspaceStatus as W

ROOT = Path(__file__).resolve().parents[2]


def cancel(*args: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "entrypoints.cli", "cancel", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **environ},
        timeout=120,
        check=False,
    )


def test_the_operator_cancels_anyones_document_and_workspace(tmp_path: Path) -> None:
    environ = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ops.db'}",
        "TRANSPORT": "memory",
        "STORAGE_DIR": str(tmp_path / "files"),
    }
    services = bootstrap(environ)
    try:
        ready = services.workspaces.create(user_id=41, name="done").unwrap()
        services.status_service.update_workspace_status(ready.id, W.READY).unwrap()
        document = services.documents.upload(
            user_id=41, workspace_id=ready.id, filename="a.txt", content=[b"text"]
        ).unwrap()
        provisioning = services.workspaces.create(user_id=42, name="slow").unwrap()
    finally:
        services.close()

    done = cancel("document", str(document.id), environ=environ)
    assert done.returncode == 0, done.stderr
    assert f"document {document.id} cancelled" in done.stdout
    done = cancel("workspace", str(provisioning.id), environ=environ)
    assert done.returncode == 0, done.stderr

    again = cancel("document", str(document.id), environ=environ)
    assert again.returncode == 1
    assert "only a pending or processing document" in again.stderr
    missing = cancel("workspace", "999999", environ=environ)
    assert missing.returncode == 1
    assert "not found" in missing.stderr
    bad = cancel("document", "abc", environ=environ)
    assert bad.returncode == 2

    services = bootstrap(environ)
    try:
        stored = services.repository.get_document(document.id)
        assert stored is not None
        assert (stored.processing_status, stored.processing_error) == (
            D.FAILED,
            "cancelled by user",
        )
        workspace = services.repository.get_workspace(provisioning.id)
        assert workspace is not None
        assert workspace.status is W.ERROR
        last = services.repository.history(HistoryEntity.DOCUMENT, document.id, limit=10)[-1]
        assert (last.to_status, last.actor) == ("failed", "operator")
    finally:
        services.close()
