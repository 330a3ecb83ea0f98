"""Handlers of the work requests: what a worker does with each routing key."""

from __future__ import annotations

import logging
from collections.abc import Callable

from application.jobs import JobRunner, JobStep
from application.status_service import StatusService
from domain.events import DocumentUploaded, Event, WorkspaceCreated
from domain.result import Err
from domain.status import WorkspaceStatus

log = logging.getLogger(__name__)


class ProcessDocument:
    """Runs an uploaded document through the given steps."""

    def __init__(self, runner: JobRunner, steps: Callable[[], list[JobStep]]) -> None:
        self._runner = runner
        self._steps = steps

    def __call__(self, event: Event) -> None:
        if not isinstance(event, DocumentUploaded):
            raise TypeError(f"expected document.uploaded, got {event.routing_key}")
        outcome = self._runner.run(event.document_id, self._steps())
        if isinstance(outcome, Err):
            # Missing, or superseded by another worker: there is nothing left to do here.
            log.warning(outcome.error, extra={"document_id": event.document_id})
            return
        document = outcome.value.document
        log.info(
            "document %s",
            "already settled" if outcome.value.skipped else document.processing_status.value,
            extra={"document_id": document.id, "version": document.version},
        )


class ProvisionWorkspace:
    """Makes a workspace ready to take documents."""

    def __init__(
        self,
        status_service: StatusService,
        prepare: Callable[[int], None] = lambda workspace_id: None,
    ) -> None:
        self._status = status_service
        self._prepare = prepare

    def __call__(self, event: Event) -> None:
        if not isinstance(event, WorkspaceCreated):
            raise TypeError(f"expected workspace.created, got {event.routing_key}")
        workspace = self._status.repository.get_workspace(event.workspace_id)
        if workspace is None or workspace.status is not WorkspaceStatus.PROVISIONING:
            return  # gone, or already settled by an earlier delivery
        try:
            self._prepare(workspace.id)
        except Exception as exc:  # whatever failed, the user must see it as an error status
            log.exception("provisioning failed", extra={"workspace_id": workspace.id})
            self._status.update_workspace_status(
                workspace.id,
                WorkspaceStatus.ERROR,
                message=f"provisioning failed: {exc}",
                expected_version=workspace.version,
            )
            return
        self._status.update_workspace_status(
            workspace.id, WorkspaceStatus.READY, expected_version=workspace.version
        )
