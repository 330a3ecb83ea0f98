"""Cancel against worker processes, on PostgreSQL and every real transport.

A document is cancelled in the middle of a long step; the worker must stop within 2 s of the
cancel (the stored status is already final, and the worker writes nothing after it), a
redelivery of the cancelled work must change nothing, and a retry must still reach ``ready``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from application.pipeline import EMBEDDING, EMBEDDINGS, INGESTION, work_request_for
from domain.history import HistoryEntity
from domain.progress import StepState
from domain.result import Ok
from domain.status import DocumentProcessingStatus as D
from tests.support.corpus import big_text
from tests.support.processes import Deployment, deployment, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

STOP_BOUND_SECONDS = 2.0


def stopped(place: Deployment, document_id: int) -> bool:
    """Whether no worker holds the document's lease any more (it stopped and released it)."""
    leases = place.container.leases()
    if not leases.acquire(document_id, "probe", 5):
        return False
    leases.release(document_id, "probe")
    return True


@pytest.mark.parametrize(
    "transport",
    [
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
        pytest.param("nats", marks=pytest.mark.nats),
        pytest.param("redis", marks=pytest.mark.redis),
    ],
)
def test_a_cancel_during_a_long_step_stops_the_worker_and_sticks(
    transport: str, tmp_path: Path
) -> None:
    with deployment(transport, tmp_path) as place:
        workspace = place.ready_workspace(9101)
        worker = place.processes.worker("all")
        document = place.upload(workspace, "long.txt", big_text(2.5))
        running = place.wait_for(
            document.id,
            lambda d: any(
                s.label == EMBEDDING and s.state is StepState.ACTIVE for s in d.progress.steps
            ),
            timeout=90,
            what="embeddings under way",
        )

        asked = time.monotonic()
        cancelled = place.container.documents().cancel(
            user_id=workspace.user_id, document_id=document.id
        )
        assert isinstance(cancelled, Ok), cancelled
        wait_until(
            lambda: stopped(place, document.id),
            timeout=10,
            interval=0.02,
            what="the worker to stop",
        )
        took = time.monotonic() - asked
        assert took < STOP_BOUND_SECONDS, f"{took:.2f} s\n{worker.log()}"
        assert "step stopped" in worker.log()

        stored = place.document(document.id)
        assert stored == cancelled.value  # nothing written after the cancel
        assert (stored.processing_status, stored.processing_error) == (
            D.FAILED,
            "cancelled by user",
        )
        assert stored.metadata["cancelled"] is True
        assert stored.version > running.version

        # The cancelled work delivered again, of both stages, changes nothing.
        publisher = place.container.publisher()
        file_path = place.container.storage().locate(running.storage_key)
        for stage in (INGESTION, EMBEDDINGS):
            publisher.publish(work_request_for(stage, running, file_path=file_path))
        time.sleep(3)
        assert place.document(document.id) == stored

        retried = place.container.documents().retry(
            user_id=workspace.user_id, document_id=document.id
        )
        assert isinstance(retried, Ok), retried
        assert "cancelled" not in retried.value.metadata
        (done,) = place.settled([document.id], timeout=120)
        assert done.processing_status is D.READY, done.processing_error
        assert "cancelled" not in done.metadata
        history = place.container.repository().history(
            HistoryEntity.DOCUMENT, document.id, limit=200
        )
        cancel_entry = next(e for e in history if e.error == "cancelled by user")
        assert (cancel_entry.from_status, cancel_entry.actor, cancel_entry.step) == (
            "processing",
            "user",
            EMBEDDING,
        )
        assert history[-1].to_status == "ready"
        assert [e.version for e in history] == list(range(1, done.version + 1))
