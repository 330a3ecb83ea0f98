"""Use cases for workspaces: create, read, retry, cancel, history."""

from __future__ import annotations

from collections.abc import Sequence

from application.documents import CANCEL_ATTEMPTS, CANCELLED
from application.status_service import StatusService
from application.tracing import current_traceparent
from domain.changes import WorkspaceStatusChange
from domain.entities import Workspace
from domain.errors import PublishFailed
from domain.events import WorkspaceCreated
from domain.history import API_ACTOR, USER_ACTOR, HistoryEntity, StatusHistoryEntry
from domain.ports import MessagePublisher, StatusRepository
from domain.problems import Problem, ProblemKind
from domain.result import Err, Ok, Result
from domain.status import WorkspaceStatus

MAX_NAME_LENGTH = 200


class Workspaces:
    """Creates workspaces and hands them to provisioning; a user only ever sees their own."""

    def __init__(
        self,
        repository: StatusRepository,
        status_service: StatusService,
        work_publisher: MessagePublisher,
    ) -> None:
        self._repository = repository
        self._status = status_service
        self._work = work_publisher

    def create(self, *, user_id: int, name: str) -> Result[Workspace, Problem]:
        name = name.strip()
        if not name or len(name) > MAX_NAME_LENGTH:
            return Err(
                Problem(ProblemKind.INVALID, f"name must be 1 to {MAX_NAME_LENGTH} characters")
            )
        workspace = self._repository.add_workspace(user_id=user_id, name=name)
        self._status.announce(workspace)
        return self._request_provisioning(workspace)

    def get(self, *, user_id: int, workspace_id: int) -> Result[Workspace, Problem]:
        workspace = self._repository.get_workspace(workspace_id)
        if workspace is None or workspace.user_id != user_id:
            return Err(Problem(ProblemKind.NOT_FOUND, f"workspace {workspace_id} not found"))
        return Ok(workspace)

    def list(self, *, user_id: int) -> list[Workspace]:
        return self._repository.list_workspaces(user_id=user_id)

    def retry(self, *, user_id: int, workspace_id: int) -> Result[Workspace, Problem]:
        found = self.get(user_id=user_id, workspace_id=workspace_id)
        if isinstance(found, Err):
            return found
        if found.value.status is not WorkspaceStatus.ERROR:
            return Err(Problem(ProblemKind.CONFLICT, "only a workspace in error can be retried"))
        moved = self._status.change_workspace_status(
            WorkspaceStatusChange(
                workspace_id=workspace_id,
                status=WorkspaceStatus.PROVISIONING,
                retry=True,
                expected_version=found.value.version,
                actor=USER_ACTOR,
            )
        )
        if isinstance(moved, Err):
            return moved
        return self._request_provisioning(moved.value)

    def cancel(
        self, *, user_id: int | None, workspace_id: int, actor: str = USER_ACTOR
    ) -> Result[Workspace, Problem]:
        """Put a provisioning workspace in error as cancelled; provisioning leaves it so.

        ``user_id`` ``None`` is the operator, who may cancel anyone's workspace.
        """
        for _ in range(CANCEL_ATTEMPTS):
            workspace = self._repository.get_workspace(workspace_id)
            if workspace is None or user_id not in (None, workspace.user_id):
                return Err(Problem(ProblemKind.NOT_FOUND, f"workspace {workspace_id} not found"))
            if workspace.status is not WorkspaceStatus.PROVISIONING:
                return Err(
                    Problem(
                        ProblemKind.CONFLICT,
                        f"workspace is {workspace.status.value}; only a provisioning "
                        "workspace can be cancelled",
                    )
                )
            moved = self._status.change_workspace_status(
                WorkspaceStatusChange(
                    workspace_id=workspace_id,
                    status=WorkspaceStatus.ERROR,
                    message=CANCELLED,
                    expected_version=workspace.version,
                    actor=actor,
                )
            )
            if isinstance(moved, Ok) or moved.error.kind is not ProblemKind.CONFLICT:
                return moved
        return Err(
            Problem(ProblemKind.CONFLICT, f"workspace {workspace_id} kept changing; try again")
        )

    def history(
        self, *, user_id: int, workspace_id: int, limit: int, after: int | None = None
    ) -> Result[Sequence[StatusHistoryEntry], Problem]:
        """The workspace's status history, oldest first, for its owner."""
        found = self.get(user_id=user_id, workspace_id=workspace_id)
        if isinstance(found, Err):
            return found
        return Ok(
            self._repository.history(
                HistoryEntity.WORKSPACE, workspace_id, limit=limit, after=after
            )
        )

    def _request_provisioning(self, workspace: Workspace) -> Result[Workspace, Problem]:
        try:
            self._work.publish(
                WorkspaceCreated(
                    workspace_id=workspace.id,
                    user_id=workspace.user_id,
                    name=workspace.name,
                    version=workspace.version,
                    traceparent=current_traceparent(),
                )
            )
        except PublishFailed as exc:
            # Left in provisioning it would wait forever; in error the user can retry it.
            self._status.change_workspace_status(
                WorkspaceStatusChange(
                    workspace_id=workspace.id,
                    status=WorkspaceStatus.ERROR,
                    message="could not be queued for provisioning; retry later",
                    actor=API_ACTOR,
                )
            )
            return Err(Problem(ProblemKind.UNAVAILABLE, f"message broker unavailable: {exc}"))
        return Ok(workspace)
