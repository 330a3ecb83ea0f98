"""The operator's console against real processes: PostgreSQL, each broker, worker processes,
a server, and the page in headless Chromium.

The poison is a database that refuses every lease of a document until an operator fixes it
(a trigger, dropped as the fix): every delivery of its work request fails until the
transport dead-letters it; after the fix, a requeue takes the document to ``ready``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.auth.jwt_tokens import JwtIssuer
from domain.status import DocumentProcessingStatus as D
from tests.support.corpus import big_text, prose
from tests.support.processes import Deployment, InsightHubProcess, deployment, free_port, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HEARTBEAT_SECONDS = 1.0
FAST = {"WORKER_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
REFUSE_LEASES = """
CREATE FUNCTION refuse_leases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'leases refused: storage under maintenance'; END $$;
CREATE TRIGGER refuse_leases BEFORE INSERT OR UPDATE ON document_leases
FOR EACH ROW EXECUTE FUNCTION refuse_leases();
"""
ALLOW_LEASES = "DROP TRIGGER refuse_leases ON document_leases; DROP FUNCTION refuse_leases();"


@contextlib.contextmanager
def console_place(transport: str, log_dir: Path, **settings: str) -> Iterator[Deployment]:
    with deployment(
        transport,
        log_dir,
        SECRET_KEY=secrets.token_urlsafe(32),
        MAX_DELIVERIES="2",
        **settings,
    ) as place:
        yield place


def start_server(place: Deployment) -> tuple[InsightHubProcess, str]:
    port = free_port()
    # The server judges liveness by the same interval as the workers report at.
    server = place.processes.start("serve", "--port", str(port), environ=FAST)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
        assert server.running, server.log()
        return False

    wait_until(ready, timeout=30, what="server ready")
    return server, base


def operator_api(place: Deployment, base: str, role: str | None = "operator") -> httpx.Client:
    token = JwtIssuer(place.environ["SECRET_KEY"]).issue(77, 3600, role=role)
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=15)


def database(place: Deployment, sql: str) -> None:
    with place.container.database().engine.begin() as connection:
        connection.exec_driver_sql(sql)


def dead_letter_of(api: httpx.Client, document_id: int) -> dict[str, Any] | None:
    answer = api.get("/api/admin/dead-letters")
    assert answer.status_code == 200, answer.text
    for letter in answer.json()["queues"]["ingestion"]:
        if letter["entity"].get("document_id") == document_id:
            found: dict[str, Any] = letter
            return found
    return None


def poisoned_document(
    place: Deployment, api: httpx.Client, user_id: int
) -> tuple[int, dict[str, Any]]:
    """A document whose work request was dead-lettered, and that dead letter, cause fixed."""
    workspace = place.ready_workspace(user_id)
    database(place, REFUSE_LEASES)
    place.processes.worker("ingestion", environ=FAST)
    document = place.upload(workspace, "notes.txt", prose(300).encode())
    letter = wait_until(
        lambda: dead_letter_of(api, document.id), timeout=90, interval=0.3, what="a dead letter"
    )
    assert "leases refused" in letter["reason"], letter
    assert letter["routing_key"] == "document.uploaded"
    assert letter["entity"] == {
        "document_id": document.id,
        "user_id": workspace.user_id,
        "workspace_id": workspace.id,
    }
    assert place.document(document.id).processing_status is D.PENDING
    database(place, ALLOW_LEASES)
    return document.id, letter


@pytest.mark.parametrize(
    "transport",
    [
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
        pytest.param("nats", marks=pytest.mark.nats),
        pytest.param("redis", marks=pytest.mark.redis),
    ],
)
def test_a_poison_request_is_dead_lettered_shown_and_once_fixed_requeued_to_ready(
    transport: str, tmp_path: Path
) -> None:
    with console_place(transport, tmp_path) as place:
        _, base = start_server(place)
        with operator_api(place, base) as api:
            document_id, letter = poisoned_document(place, api, 9101)
            if letter["attempts"] is not None:
                assert letter["attempts"] >= 2
            requeued = api.post(
                "/api/admin/dead-letters/requeue",
                json={"queue": "ingestion", "letter_id": letter["letter_id"]},
            )
            assert requeued.status_code == 200, requeued.text
            place.processes.worker("embeddings", environ=FAST)
            place.processes.worker("graph", environ=FAST)
            (done,) = place.settled([document_id], timeout=90)
            assert done.processing_status is D.READY, done.processing_error
            assert dead_letter_of(api, document_id) is None
            actions = api.get("/api/admin/actions").json()["actions"]
            assert actions[0]["actor"] == "user 77"
            assert (actions[0]["action"], actions[0]["outcome"]) == ("requeue", "done")
            with operator_api(place, base, role=None) as stranger:
                assert stranger.get("/api/admin/dead-letters").status_code == 403


@pytest.mark.rabbitmq
def test_a_killed_worker_leaves_the_live_list_and_its_document_is_stuck_until_recovered(
    tmp_path: Path,
) -> None:
    lease = {"WORKER_LEASE_SECONDS": "4", **FAST}
    with console_place("rabbitmq", tmp_path) as place:
        _, base = start_server(place)
        with operator_api(place, base) as api:
            workspace = place.ready_workspace(9201)
            victim = place.processes.worker("ingestion", environ=lease)

            def live_pids() -> set[int]:
                return {w["pid"] for w in api.get("/api/admin/workers").json()["workers"]}

            wait_until(lambda: victim.pid in live_pids(), timeout=10, what="victim heartbeat")
            document = place.upload(workspace, "long.txt", big_text(2.5))
            place.wait_for(
                document.id,
                lambda d: d.processing_status is D.PROCESSING,
                timeout=60,
                what="processing under way",
            )
            (beat,) = [
                w for w in api.get("/api/admin/workers").json()["workers"] if w["pid"] == victim.pid
            ]
            assert beat["stage"] == "ingestion"
            assert beat["host"] == os.uname().nodename
            victim.kill()
            killed = time.monotonic()
            wait_until(lambda: victim.pid not in live_pids(), timeout=10, interval=0.1, what="gone")
            # Two intervals, plus one poll and the clock's granularity.
            assert time.monotonic() - killed <= 2 * HEARTBEAT_SECONDS + 1.0

            def stuck_ids() -> set[int]:
                report = api.get("/api/admin/stuck").json()
                return {d["document_id"] for d in report["documents"]}

            assert document.id in stuck_ids()
            place.processes.workers("ingestion", "embeddings", "graph", environ=lease)
            (done,) = place.settled([document.id], timeout=120)
            assert done.processing_status is D.READY, done.processing_error
            assert document.id not in stuck_ids()
            recoveries = api.get("/api/admin/stuck").json()["recoveries"]
            assert any(r["target"] == f"document {document.id}" for r in recoveries), recoveries


@pytest.mark.rabbitmq
@pytest.mark.browser
def test_an_operator_requeues_a_dead_letter_from_the_page(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    with console_place("rabbitmq", tmp_path) as place:
        _, base = start_server(place)
        with operator_api(place, base) as api, sync_playwright() as playwright:
            document_id, letter = poisoned_document(place, api, 9301)
            place.processes.worker("embeddings", environ=FAST)
            place.processes.worker("graph", environ=FAST)
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page()
                page.goto(f"{base}/admin")
                token = api.headers["Authorization"].removeprefix("Bearer ")
                page.fill("#token-input", token)
                page.click("#sign-in-form button[type=submit]")
                row = page.locator(f'#dead-letters tr[data-key="{letter["letter_id"]}"]')
                expect(row).to_contain_text("leases refused")
                expect(row).to_contain_text(f"document {document_id}")
                row.get_by_role("button", name="Requeue").click()
                expect(row).to_have_count(0)
                expect(page.locator("#actions")).to_contain_text("user 77: requeue")
                (done,) = place.settled([document_id], timeout=90)
                assert done.processing_status is D.READY, done.processing_error
                stranger = JwtIssuer(place.environ["SECRET_KEY"]).issue(78, 3600)
                page.click("#sign-out")
                page.fill("#token-input", stranger)
                page.click("#sign-in-form button[type=submit]")
                expect(page.locator("#sign-in-error")).to_contain_text("no operator role")
            finally:
                browser.close()
