"""The playground in a real browser: Debian's chromium, headless, driven by Playwright against
a real ``pdp serve --playground``, through a permit, a deny with the determining policy
highlighted in the policy text, and an invalid request. Screenshots are kept in
``.artifacts/playground/`` for people to look at.

Skipped, loudly, where chromium (``apt-get install chromium``) or Playwright is missing; the
browser is never downloaded."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import POLICIES, ROOT, Server, launch_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / ".artifacts" / "playground"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
TIMEOUT_MS = 15_000

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed: "
                               "the playground's browser test is SKIPPED")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium): the playground's "
                "browser test is SKIPPED", allow_module_level=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = launch_server(POLICIES / "default", "--playground", "--log-level", "warning")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def page(server: Server) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 900})
            tab.set_default_timeout(TIMEOUT_MS)
            tab.requested = []  # every URL the page asks for
            tab.on("request", lambda request: tab.requested.append(request.url))
            tab.goto(server.base + "/playground")
            tab.get_by_text("example request(s) from its tests").wait_for()
            yield tab
        finally:
            browser.close()


def shoot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 10_000
    return path


def top(page: Any, selector: str) -> None:
    page.locator(selector).evaluate("el => el.scrollIntoView({block: 'start'})")


def decide(page: Any, request: dict[str, Any] | None) -> None:
    if request is not None:
        page.get_by_label("AuthZEN evaluation request (JSON)").fill(json.dumps(request, indent=2))
    page.get_by_role("button", name="Decide").click()


def test_a_permit_is_shown_with_its_determining_policy(page: Any) -> None:
    decide(page, {"subject": {"type": "user", "id": "bob"}, "action": {"name": "view"},
                  "resource": {"type": "document", "id": "roadmap"}})
    decision = page.locator("#decision.permit")
    decision.wait_for()
    assert decision.inner_text() == "Decision: permit (permit)"
    assert "group-members-view-shared-documents" in page.locator("#determining").inner_text()
    assert '"id":"roadmap"' in page.locator("#entities").inner_text()
    assert "/access/v1/evaluation" in page.locator("#curl").inner_text()
    top(page, "#result")
    shoot(page, "1-permit")


def test_a_deny_highlights_the_forbid_policy_in_the_policy_text(page: Any) -> None:
    decide(page, {"subject": {"type": "user", "id": "dave"}, "action": {"name": "delete"},
                  "resource": {"type": "document", "id": "contract"}})
    page.locator("#decision.deny").wait_for()
    assert page.locator("#decision").inner_text() == "Decision: deny (forbid)"
    assert "legal-hold-freezes-documents" in page.locator("#determining").inner_text()
    hits = page.locator('[data-file="documents.cedar"] .ln.hit.forbid')
    numbers = [int(n) for n in hits.evaluate_all("els => els.map(e => e.dataset.line)")]
    lines = (POLICIES / "default" / "documents.cedar").read_text().splitlines()
    assert numbers[0] == lines.index('@id("legal-hold-freezes-documents")') + 1
    assert lines[numbers[-1] - 1].rstrip().endswith(";")
    assert numbers == list(range(numbers[0], numbers[-1] + 1))
    assert page.locator(".ln.hit").count() == len(numbers)  # nothing else is highlighted
    hits.first.scroll_into_view_if_needed()
    shoot(page, "2-deny-highlighted")


def test_an_invalid_request_says_what_is_wrong(page: Any) -> None:
    decide(page, {"subject": {"type": "user", "id": "dave"}, "action": {"name": "delete"}})
    page.locator("#decision.invalid").wait_for()
    assert page.locator("#decision").inner_text() == "Invalid request"
    assert "'resource' is required" in page.locator("#errors").inner_text()
    assert page.locator(".ln.hit").count() == 0  # the previous deny's highlight is gone
    top(page, "#result")
    shoot(page, "3-invalid-request")


def test_an_example_from_the_tests_fills_the_request(page: Any) -> None:
    options = page.locator("#example option")
    assert options.count() >= 7
    page.get_by_label("Example from the set's own tests").select_option(index=1)
    request = json.loads(page.get_by_label("AuthZEN evaluation request (JSON)").input_value())
    assert {"subject", "action", "resource"} <= set(request)


def test_the_page_asked_only_the_pdp_itself(page: Any, server: Server) -> None:
    assert page.requested
    assert all(url.startswith(server.base + "/") for url in page.requested), page.requested
