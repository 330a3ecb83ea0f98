"""Recovery of documents whose worker vanished: nothing stays ``processing`` forever."""

from __future__ import annotations

import logging

from application.operations import SWEEPER
from application.pipeline import INGESTION, stage_for_step, work_request_for
from application.status_service import StatusService
from domain.errors import PublishFailed
from domain.events import Event
from domain.ports import DocumentLeases, FileStorage, MessagePublisher, OperatorAction, OperatorLog
from domain.result import Err
from domain.status import DocumentProcessingStatus

log = logging.getLogger(__name__)


class LeaseSweeper:
    """Takes up documents whose lease expired: requeues them, or fails them as "worker lost".

    Taking one up is a status change (``processing`` again, with a ``recoveries`` count), so
    the version moves on and a late write from the vanished worker is refused as stale.
    """

    def __init__(
        self,
        status_service: StatusService,
        leases: DocumentLeases,
        storage: FileStorage,
        work_publisher: MessagePublisher,
        *,
        owner: str,
        lease_seconds: float,
        max_recoveries: int = 2,
        recoveries_log: OperatorLog | None = None,
    ) -> None:
        self._status = status_service
        self._leases = leases
        self._storage = storage
        self._work = work_publisher
        self._owner = f"sweeper:{owner}"
        self._lease_seconds = lease_seconds
        self._max_recoveries = max_recoveries
        self._recoveries_log = recoveries_log

    def sweep(self) -> int:
        """Handle every expired lease once; how many documents were taken up."""
        taken = 0
        for document_id in self._leases.expired():
            if not self._leases.acquire(document_id, self._owner, self._lease_seconds):
                continue  # another sweeper got there first
            try:
                request = self._take_up(document_id)
            finally:
                # Released before the request goes out, so the worker that gets it may hold it.
                self._leases.release(document_id, self._owner)
            if request is None:
                continue
            taken += 1
            try:
                self._work.publish(request)
            except PublishFailed:
                # Held again until it expires, so that a later sweep tries once more.
                self._leases.acquire(document_id, self._owner, self._lease_seconds)
                log.warning(
                    "could not requeue a recovered document", extra={"document_id": document_id}
                )
        return taken

    def _take_up(self, document_id: int) -> Event | None:
        document = self._status.repository.get_document(document_id)
        if document is None:
            return None
        if document.processing_status is DocumentProcessingStatus.PENDING:
            # Its worker died before recording anything: only the request needs to go again.
            log.warning(
                "requeueing a pending document whose worker was lost",
                extra={"document_id": document_id},
            )
            self._recorded(document_id, "requeued while pending")
            return work_request_for(
                INGESTION, document, file_path=self._storage.locate(document.storage_key)
            )
        if document.processing_status is not DocumentProcessingStatus.PROCESSING:
            return None
        context = {"document_id": document_id, "version": document.version}
        recoveries = int(document.metadata.get("recoveries", 0))
        if recoveries >= self._max_recoveries:
            failed = self._status.update_document_status(
                document_id,
                DocumentProcessingStatus.FAILED,
                error=(
                    f"worker lost: processing stopped {recoveries + 1} times without its "
                    "worker finishing; retry the document"
                ),
                progress=document.progress.interrupt(),
                expected_version=document.version,
            )
            if isinstance(failed, Err):
                log.info(failed.error.message, extra=context)
            else:
                log.warning("failed a document whose worker was lost", extra=context)
                self._recorded(document_id, "failed: worker lost")
            return None
        moved = self._status.update_document_status(
            document_id,
            DocumentProcessingStatus.PROCESSING,
            progress=document.progress.interrupt(),
            metadata={**document.metadata, "recoveries": recoveries + 1},
            expected_version=document.version,
        )
        if isinstance(moved, Err):
            log.info(moved.error.message, extra=context)
            return None
        resumed = moved.value
        label = resumed.progress.first_incomplete()
        if label is None:
            return None
        log.warning("requeueing a document whose worker was lost at %r", label, extra=context)
        self._recorded(document_id, f"requeued at {label}")
        return work_request_for(
            stage_for_step(label), resumed, file_path=self._storage.locate(resumed.storage_key)
        )

    def _recorded(self, document_id: int, outcome: str) -> None:
        if self._recoveries_log is not None:
            self._recoveries_log.record(
                OperatorAction(
                    actor=SWEEPER,
                    action="recover",
                    target=f"document {document_id}",
                    outcome=outcome,
                )
            )
