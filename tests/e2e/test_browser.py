"""The live status page in headless Chromium: documents progress on screen without a reload."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect, sync_playwright

from adapters.auth.jwt_tokens import JwtIssuer
from tests.e2e.conftest import (
    BROKEN_PDF,
    GOOD_TEXT,
    ServerProcess,
    postgres_server,
    stored_workspace,
)
from tests.support.processes import private_postgres
from tests.support.proxy import TcpProxy

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SETTLE_MS = 30_000

# Records, per file name, every (status, completed steps, version) its card has shown.
RECORD_CARDS = """
() => {
  window.cardHistory = {};
  const record = () => {
    for (const card of document.querySelectorAll("#document-list .document")) {
      const name = card.querySelector(".document-name")?.textContent;
      if (!name) continue;
      const completed = card.querySelectorAll('.step[data-state="completed"]').length;
      const entry = [card.dataset.status, completed, Number(card.dataset.version)];
      const seen = (window.cardHistory[name] ??= []);
      const last = seen[seen.length - 1];
      if (!last || last[2] !== entry[2]) seen.push(entry);
    }
  };
  new MutationObserver(record).observe(document.getElementById("document-list"), {
    subtree: true, childList: true, attributes: true,
  });
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # CI installs it (.ci/run), so there its absence is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not installed at {CHROMIUM}")
        pytest.skip(f"needs Chromium at {CHROMIUM} (Debian package 'chromium')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def _upload(page: Page, name: str, mime: str, content: bytes) -> None:
    payload: FilePayload = {"name": name, "mimeType": mime, "buffer": content}
    page.set_input_files("#file-input", files=[payload])


def test_documents_progress_live_on_the_page(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int], page: Page
) -> None:
    server = make_server(args=["--step-delay", "0.4"])
    page.goto(f"{server.base_url}/#token={server.token(new_user())}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    assert "token" not in page.url, "the token must not stay in the address bar"
    page.evaluate("() => { window.loadedOnce = true; }")

    page.fill("#workspace-name", "Research papers")
    page.click("#workspace-form button[type=submit]")
    expect(page.locator("#workspace-title")).to_have_text("Research papers")
    expect(page.locator("#workspace-badge .badge")).to_have_attribute("data-status", "ready")

    page.evaluate(RECORD_CARDS)
    _upload(page, "field-notes.md", "text/markdown", GOOD_TEXT)
    card = page.locator(".document", has_text="field-notes.md")
    expect(card).to_have_attribute("data-status", "processing")
    expect(card.locator(".badge .spinner")).to_be_visible()
    expect(card.locator('.step[data-state="active"]')).to_have_count(1)
    expect(card).to_have_attribute("data-status", "ready", timeout=SETTLE_MS)
    expect(card.locator(".badge .spinner")).to_have_count(0)
    steps = card.locator(".step")
    expect(steps).not_to_have_count(0)
    expect(card.locator('.step[data-state="completed"]')).to_have_count(steps.count())

    history = page.evaluate("() => window.cardHistory['field-notes.md']")
    statuses = [status for status, _, _ in history]
    assert statuses[0] == "pending"
    assert "processing" in statuses
    assert statuses[-1] == "ready"
    ticks = [completed for _, completed, _ in history]
    assert ticks == sorted(ticks), "completed steps only ever grow"
    assert len(set(ticks)) >= 3, f"steps should be seen ticking, saw {history}"
    versions = [version for _, _, version in history]
    assert versions == sorted(set(versions))

    _upload(page, "scanned-contract.pdf", "application/pdf", BROKEN_PDF)
    broken = page.locator(".document", has_text="scanned-contract.pdf")
    expect(broken).to_have_attribute("data-status", "failed", timeout=SETTLE_MS)
    expect(broken.locator(".document-error")).not_to_be_empty()
    expect(broken.locator("button.retry")).to_be_visible()

    _upload(page, "program.exe", "application/octet-stream", b"MZ")
    expect(page.locator(".notice")).to_contain_text("unsupported file type")

    assert page.evaluate("() => window.loadedOnce") is True, "the page must not have reloaded"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)

    version_before = int(broken.get_attribute("data-version") or 0)
    broken.locator("button.retry").click()
    expect(broken).not_to_have_attribute("data-version", str(version_before))
    expect(broken).to_have_attribute("data-status", "failed", timeout=SETTLE_MS)
    assert int(broken.get_attribute("data-version") or 0) > version_before

    server.stop()
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")


def test_a_processing_document_shows_its_time_left_and_finished_steps_their_durations(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int], page: Page
) -> None:
    server = make_server(args=["--step-delay", "0.4"])
    page.goto(f"{server.base_url}/#token={server.token(new_user())}")
    page.fill("#workspace-name", "Timed")
    page.click("#workspace-form button[type=submit]")
    expect(page.locator("#workspace-badge .badge")).to_have_attribute("data-status", "ready")

    _upload(page, "first.md", "text/markdown", GOOD_TEXT)
    first = page.locator(".document", has_text="first.md")
    expect(first).to_have_attribute("data-status", "ready", timeout=SETTLE_MS)
    steps = first.locator(".step")
    expect(first.locator(".step-duration")).to_have_count(steps.count())
    expect(first.locator(".step-duration").first).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
    expect(first.locator(".document-meta")).not_to_contain_text("left")

    # The first one finished, so the next has a history to be estimated from.
    _upload(page, "second.md", "text/markdown", GOOD_TEXT)
    second = page.locator(".document", has_text="second.md")
    expect(second.locator(".document-meta")).to_contain_text(
        re.compile(r"about \d+ (s|min) left"), timeout=SETTLE_MS
    )
    expect(second).to_have_attribute("data-status", "ready", timeout=SETTLE_MS)
    expect(second.locator(".document-meta")).not_to_contain_text("left")


def test_a_refused_token_shows_the_sign_in_form(server: ServerProcess, page: Page) -> None:
    forged = JwtIssuer("a-secret-no-server-has-here").issue(9)
    page.goto(f"{server.base_url}/#token={forged}")
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-in-error")).to_contain_text("invalid token signature")

    page.fill("#token-input", server.token(9))
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#user")).to_have_text("User 9")


# Records the fewest document cards shown after each change of the list: a reload would
# empty it (or shrink it back to the first page) on the way.
RECORD_LIST = """
() => {
  const list = document.getElementById("document-list");
  window.cardsShown = [list.children.length];
  new MutationObserver(() => window.cardsShown.push(list.children.length)).observe(list, {
    childList: true,
  });
}
"""


def test_a_workspace_of_20000_documents_is_paged_and_a_reconnect_resumes_without_a_reload(
    tmp_path: Path,
    make_server: Callable[..., ServerProcess],
    new_user: Callable[[], int],
    page: Page,
) -> None:
    with private_postgres() as database_url:
        server = postgres_server(make_server, database_url, tmp_path)
        user = new_user()
        _, ids = stored_workspace(server, database_url, user, 20_000)
        with server.client(user) as api, TcpProxy("127.0.0.1", server.port) as proxy:
            page.goto(f"http://127.0.0.1:{proxy.port}/#token={server.token(user)}")
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            cards = page.locator("#document-list .document")
            expect(cards).to_have_count(100)
            expect(cards.first).to_have_attribute("data-document-id", str(ids[0]))
            page.click("#document-more")
            expect(cards).to_have_count(200)
            expect(cards.nth(199)).to_have_attribute("data-document-id", str(ids[199]))
            expect(page.locator("#document-count")).to_have_text("200 shown")
            page.evaluate("() => { window.loadedOnce = true; }")
            page.evaluate(RECORD_LIST)

            proxy.cut()
            expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
            # Away: documents on both pages change.
            for document_id in (ids[5], ids[150]):
                assert api.post(f"/api/documents/{document_id}/retry").status_code == 202
            proxy.restore()
            expect(page.locator("#connection")).to_have_attribute(
                "data-state", "live", timeout=SETTLE_MS
            )
            expect(page.locator("#connection")).to_have_attribute("data-answer", "resumed")
            for document_id in (ids[5], ids[150]):
                expect(
                    page.locator(f'.document[data-document-id="{document_id}"]')
                ).to_have_attribute("data-status", "pending")
            expect(cards).to_have_count(200)
            assert min(page.evaluate("() => window.cardsShown")) == 200, "no card went away"
            assert page.evaluate("() => window.loadedOnce") is True


def test_without_websockets_the_page_falls_back_to_server_sent_events(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int], page: Page
) -> None:
    server = make_server(args=["--step-delay", "0.2"])
    page.add_init_script("window.WebSocket = undefined;")
    page.goto(f"{server.base_url}/#token={server.token(new_user())}")
    connection = page.locator("#connection")
    expect(connection).to_have_attribute("data-state", "live")
    expect(connection).to_have_attribute("data-transport", "sse")
    expect(connection).to_contain_text("SSE")

    page.fill("#workspace-name", "Fallback")
    page.click("#workspace-form button[type=submit]")
    expect(page.locator("#workspace-badge .badge")).to_have_attribute("data-status", "ready")
    page.evaluate(RECORD_CARDS)
    _upload(page, "notes.md", "text/markdown", GOOD_TEXT)
    card = page.locator(".document", has_text="notes.md")
    expect(card).to_have_attribute("data-status", "ready", timeout=SETTLE_MS)
    statuses = [status for status, _, _ in page.evaluate("() => window.cardHistory['notes.md']")]
    assert "processing" in statuses
    assert statuses[-1] == "ready"


def test_cancel_on_a_processing_document_ends_it_and_its_timeline_shows_why(
    make_server: Callable[..., ServerProcess], new_user: Callable[[], int], page: Page
) -> None:
    server = make_server(args=["--step-delay", "1.0"])
    page.goto(f"{server.base_url}/#token={server.token(new_user())}")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    page.fill("#workspace-name", "Cancelling")
    page.click("#workspace-form button[type=submit]")
    expect(page.locator("#workspace-badge .badge")).to_have_attribute("data-status", "ready")

    _upload(page, "slow-notes.md", "text/markdown", GOOD_TEXT)
    card = page.locator(".document", has_text="slow-notes.md")
    expect(card).to_have_attribute("data-status", "processing")
    card.locator("button.cancel").click()
    expect(card).to_have_attribute("data-status", "failed")
    expect(card.locator(".document-error")).to_have_text("cancelled by user")
    expect(card.locator("button.cancel")).to_have_count(0)
    expect(card.locator("button.retry")).to_be_visible()

    card.locator(".document-history summary").click()
    entries = card.locator(".history-entry")
    expect(entries.last).to_have_attribute("data-status", "failed")
    expect(entries.last.locator(".history-error")).to_have_text("cancelled by user")
    expect(entries.first).to_have_attribute("data-status", "pending")
    # The worker writes nothing after the cancel: the card stays as it is.
    version = card.get_attribute("data-version")
    page.wait_for_timeout(2500)
    expect(card).to_have_attribute("data-version", version or "")
    expect(card).to_have_attribute("data-status", "failed")
