"""Handlers of the work requests: what a worker does with each routing key."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from application.jobs import TERMINAL, JobRunner, JobStep
from application.operations import SWEEPER
from application.pipeline import Stage
from application.status_service import StatusService
from application.tracing import current_traceparent
from domain.entities import RagConfig
from domain.events import Event, WorkspaceCreated
from domain.ports import DocumentLeases, FileStorage, MessagePublisher, RagConfigs
from domain.ports.operations import OperatorAction, OperatorLog
from domain.progress import Progress, StepState
from domain.result import Err
from domain.status import DocumentProcessingStatus, WorkspaceStatus

log = logging.getLogger(__name__)


@contextlib.contextmanager
def holding_lease(
    leases: DocumentLeases, document_id: int, owner: str, seconds: float
) -> Iterator[bool]:
    """Hold the document's lease, renewed in the background, for the duration of the block."""
    if not leases.acquire(document_id, owner, seconds):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                renewed = leases.acquire(document_id, owner, seconds)
            except Exception:  # a store that is briefly away: try again on the next tick
                log.warning("could not renew the lease", extra={"document_id": document_id})
                continue
            if not renewed:
                # Taken over, or past the step's deadline: either way this run's next write
                # names a stale version and is refused.
                log.warning("lease not renewed", extra={"document_id": document_id})
                return

    renewer = threading.Thread(target=renew, name=f"lease-{document_id}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        leases.release(document_id, owner)


# How often a worker looks at the document it is running for a cancel (or any settling by
# someone else): one primary-key read per running document per tick, 4 a second at 0.25 s,
# for a stop within about a tick of the cancel.
CANCEL_POLL_SECONDS = 0.25


@contextlib.contextmanager
def stopping_when_settled(
    runner: JobRunner, document_id: int, interval: float = CANCEL_POLL_SECONDS
) -> Iterator[None]:
    """Stop the document's running step once its stored status is settled by someone else.

    While the block runs, the document is read every ``interval`` seconds; once it is
    ``ready`` or ``failed`` (a cancel writes ``failed``), its step is stopped: a child process
    is killed and ``checkpoint()`` raises. The run's own later writes name a version that is
    no longer current, so they are refused.
    """
    done = threading.Event()

    def watch() -> None:
        while not done.wait(interval):
            try:
                document = runner.repository.get_document(document_id)
            except Exception:  # a store that is briefly away: look again on the next tick
                continue
            settled = document is None or document.processing_status in TERMINAL
            if settled and runner.deadlines.stop(document_id):
                log.info(
                    "step stopped: document settled elsewhere",
                    extra={"document_id": document_id},
                )

    watcher = threading.Thread(target=watch, name=f"cancel-watch-{document_id}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


class RunStage:
    """Runs one pipeline stage for a document, then hands it on to the next stage.

    Idempotent under redelivery: a settled document is left alone, a stage whose steps are
    already recorded only repeats its hand-off, and a document whose lease another live worker
    holds is that worker's. The hand-off goes out once the lease is released, and the delivery
    is acknowledged only after that.
    """

    def __init__(
        self,
        stage: Stage,
        runner: JobRunner,
        steps: Callable[[Stage], list[JobStep]],
        work_publisher: MessagePublisher,
        leases: DocumentLeases,
        *,
        owner: str,
        lease_seconds: float,
        cancel_poll_seconds: float = CANCEL_POLL_SECONDS,
        recoveries_log: OperatorLog | None = None,
    ) -> None:
        self.stage = stage
        self._recoveries_log = recoveries_log
        self._runner = runner
        self._steps = steps
        self._work = work_publisher
        self._leases = leases
        self._owner = owner
        self._lease_seconds = lease_seconds
        self._cancel_poll_seconds = cancel_poll_seconds

    def __call__(self, event: Event) -> None:
        if not isinstance(event, self.stage.consumes):
            raise TypeError(f"stage {self.stage.name} got {event.routing_key}")
        context = {"document_id": event.document_id, "event_id": event.event_id}
        document = self._runner.repository.get_document(event.document_id)
        if document is None or document.processing_status in TERMINAL:
            log.info("nothing to do: document missing or settled", extra=context)
            return
        if not self.stage.enabled_for(document.progress):
            log.info("stage %s is not in this document's plan", self.stage.name, extra=context)
            return
        with holding_lease(self._leases, document.id, self._owner, self._lease_seconds) as held:
            if not held:
                # That worker hands the document on when it is done; if it died, the
                # sweeper takes the document up once its lease runs out.
                log.info("another worker holds this document", extra=context)
                return
            self._note_takeover(document.id, document.progress)
            with stopping_when_settled(self._runner, document.id, self._cancel_poll_seconds):
                outcome = self._runner.run(document.id, self._steps(self.stage))
        if isinstance(outcome, Err):
            log.warning(outcome.error.message, extra=context)
            return
        after = outcome.value.document
        # Handed on only once the lease is released, or the next stage could find the
        # document still held and leave it. A death in between is covered by the broker: the
        # request is not yet acknowledged, and its redelivery repeats only this hand-off.
        if (
            after.processing_status is DocumentProcessingStatus.PROCESSING
            and self.stage.hands_on is not None
            and after.progress.all_completed(self.stage.labels)
        ):
            self._work.publish(
                self.stage.hands_on(
                    document_id=after.id,
                    user_id=after.user_id,
                    workspace_id=after.workspace_id,
                    version=after.version,
                    traceparent=current_traceparent(),
                )
            )
        log.info(
            "stage %s done: %s",
            self.stage.name,
            after.processing_status.value,
            extra={**context, "version": after.version},
        )

    def _note_takeover(self, document_id: int, progress: Progress) -> None:
        # A step left under way whose lease this worker could take: its worker died and the
        # redelivered request got here before the sweeper did. Operators see it among the
        # recoveries either way.
        interrupted = [s.label for s in progress.steps if s.state is StepState.ACTIVE]
        if not interrupted or self._recoveries_log is None:
            return
        log.warning(
            "taking over a document whose worker was lost at %r",
            interrupted[0],
            extra={"document_id": document_id},
        )
        try:
            self._recoveries_log.record(
                OperatorAction(
                    actor=SWEEPER,
                    action="recover",
                    target=f"document {document_id}",
                    outcome=f"taken over at {interrupted[0]} by {self._owner}",
                )
            )
        except Exception:  # the record is for operators; the work goes on without it
            log.warning("could not record a takeover", extra={"document_id": document_id})


class ProvisionWorkspace:
    """Gives a workspace its processing settings (from the owner's defaults) and storage."""

    def __init__(
        self,
        status_service: StatusService,
        rag_configs: RagConfigs,
        storage: FileStorage,
    ) -> None:
        self._status = status_service
        self._rag_configs = rag_configs
        self._storage = storage

    def __call__(self, event: Event) -> None:
        if not isinstance(event, WorkspaceCreated):
            raise TypeError(f"expected workspace.created, got {event.routing_key}")
        workspace = self._status.repository.get_workspace(event.workspace_id)
        if workspace is None or workspace.status is not WorkspaceStatus.PROVISIONING:
            return  # gone, or already settled by an earlier delivery
        config = self._rag_configs.defaults_for(workspace.user_id) or RagConfig()
        problems = config.problems()
        if problems:
            self._settle(
                workspace.id,
                workspace.version,
                WorkspaceStatus.ERROR,
                "invalid processing settings: " + "; ".join(problems),
            )
            return
        try:
            self._rag_configs.save_for_workspace(workspace.id, config)
            self._storage.prepare_area(str(workspace.id))
        except Exception as exc:  # whatever failed, the user must see it as an error status
            log.exception("provisioning failed", extra={"workspace_id": workspace.id})
            self._settle(
                workspace.id,
                workspace.version,
                WorkspaceStatus.ERROR,
                f"provisioning failed: {exc}",
            )
            return
        self._settle(workspace.id, workspace.version, WorkspaceStatus.READY, None)

    def _settle(
        self, workspace_id: int, version: int, status: WorkspaceStatus, message: str | None
    ) -> None:
        result = self._status.update_workspace_status(
            workspace_id, status, message=message, expected_version=version
        )
        if isinstance(result, Err):
            log.warning(result.error.message, extra={"workspace_id": workspace_id})
