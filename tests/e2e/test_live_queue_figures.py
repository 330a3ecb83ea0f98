"""Queue depth and the oldest waiting request's age, against real processes: PostgreSQL, a
broker, a server with no workers (so work waits), then a worker that drains it.

The server's ``/metrics`` is parsed with prometheus-client's parser; the console's figures are
watched in headless Chromium, where they change without a reload (they come over the operator
socket; the page never polls for them).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from adapters.auth.jwt_tokens import JwtIssuer
from tests.e2e.test_metrics import Samples, scrape
from tests.e2e.test_operator_console import FAST, start_server
from tests.support.corpus import prose
from tests.support.processes import deployment, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

DEPTH = "insighthub_queue_depth"
OLDEST_AGE = "insighthub_queue_oldest_age_seconds"


def gauge(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, queue: str
) -> float | None:
    return samples.get((name, frozenset({("queue", queue)})))


@pytest.mark.nats
def test_the_servers_queue_gauges_move_with_the_waiting_work(tmp_path: Path) -> None:
    with deployment("nats", tmp_path, SECRET_KEY=secrets.token_urlsafe(32)) as place:
        _, base = start_server(place)
        url = f"{base}/metrics"
        before = scrape(url)
        assert gauge(before, DEPTH, "ingestion") == 0
        assert gauge(before, OLDEST_AGE, "ingestion") == 0
        assert any(name == "status_events_received_total" for name, _ in before)

        workspace = place.ready_workspace(user_id=41)
        documents = [place.upload(workspace, f"n{n}.txt", prose(2000).encode()) for n in range(2)]

        def two_waiting() -> Samples | None:
            samples = scrape(url)
            return samples if gauge(samples, DEPTH, "ingestion") == 2 else None

        waiting = wait_until(two_waiting, timeout=20, what="two waiting requests on /metrics")
        first_age = gauge(waiting, OLDEST_AGE, "ingestion")
        assert first_age is not None
        time.sleep(1.5)
        later_age = gauge(scrape(url), OLDEST_AGE, "ingestion")
        assert later_age is not None
        assert later_age >= first_age + 1.0

        place.processes.worker("all", environ=FAST)
        place.settled([d.id for d in documents], timeout=90)
        drained = scrape(url)
        for queue in ("ingestion", "embeddings", "graph"):
            assert gauge(drained, DEPTH, queue) == 0, queue
            assert gauge(drained, OLDEST_AGE, queue) == 0, queue


@pytest.mark.redis
@pytest.mark.browser
def test_the_console_shows_the_queue_depth_change_without_a_reload(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM}")
    with deployment("redis", tmp_path, SECRET_KEY=secrets.token_urlsafe(32)) as place:
        _, base = start_server(place)
        token = JwtIssuer(place.environ["SECRET_KEY"]).issue(77, 3600, role="operator")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page()
                polled: list[str] = []
                page.on("request", lambda r: polled.append(r.url))
                page.goto(f"{base}/admin")
                page.fill("#token-input", token)
                page.click("#sign-in-form button[type=submit]")
                depth = page.locator('#stages tr[data-key="ingestion"] td.depth')
                oldest = page.locator('#stages tr[data-key="ingestion"] td.oldest')
                expect(depth).to_have_text("0", timeout=15_000)
                expect(page.locator("#live")).to_contain_text("live")
                navigations = page.evaluate("performance.getEntriesByType('navigation').length")

                workspace = place.ready_workspace(user_id=42)
                documents = [
                    place.upload(workspace, f"n{n}.txt", prose(2000).encode()) for n in range(3)
                ]
                expect(depth).to_have_text("3", timeout=15_000)
                expect(oldest).to_contain_text(" s")

                place.processes.worker("all", environ=FAST)
                expect(depth).to_have_text("0", timeout=60_000)
                place.settled([d.id for d in documents], timeout=90)
                # The same page all along, and the figures never came from an HTTP poll.
                assert page.evaluate("performance.getEntriesByType('navigation').length") == (
                    navigations
                )
                assert not [
                    u for u in polled if "/api/admin/stages" in u or "/api/admin/queues" in u
                ]
            finally:
                browser.close()
