"""The docs pages in Chromium: Swagger UI, served by the reference server itself, renders each API's
operations and its server URL, and the page asks nothing of any host but the loopback server
(every other request is recorded and aborted, so a CDN dependency fails here, never silently).
Screenshots go to reports/."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

REPORTS = Path(__file__).resolve().parents[2] / "reports"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

# An operation of each API as its document names it: (path, summary).
OPERATIONS = {
    "auvy": ("/v1/jobs", "Start a pathway run"),
    "ava": ("/v1/ava/jobs", "Trigger a job"),
    "strait": ("/v1/runs", "List runs"),
}


def offsite_requests(page: Any) -> list[str]:
    """Abort and record every request the page, or a page it opens, makes to a host other than
    the loopback one."""
    offsite: list[str] = []

    def route(handle: Any) -> None:
        url = handle.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in LOOPBACK:
            handle.continue_()
        else:
            offsite.append(url)
            handle.abort()

    page.context.route("**/*", route)
    return offsite


def operation(page: Any, path: str, summary: str) -> Any:
    return page.locator(
        ".opblock-summary",
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]'),
    ).filter(has_text=summary)


@pytest.mark.parametrize("api", sorted(OPERATIONS))
def test_swagger_ui_renders_the_apis_operations_from_this_server(
    page: Any, mock: str, api: str
) -> None:
    offsite = offsite_requests(page)
    page.goto(f"{mock}/{api}/docs")
    path, summary = OPERATIONS[api]
    operation(page, path, summary).first.wait_for(state="visible")
    assert page.locator(".opblock").count() >= 4
    # The server Swagger UI would send "Try it out" requests to is this one, under the prefix.
    servers = page.locator(".servers select option").all_inner_texts()
    assert servers and servers[0].startswith(f"{mock}/{api}"), servers
    assert page.locator(".errors-wrapper").count() == 0
    operation(page, path, summary).first.scroll_into_view_if_needed()
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / f"docs-{api}.png"))
    assert offsite == []


def test_the_root_page_switches_between_the_apis(page: Any, mock: str) -> None:
    offsite = offsite_requests(page)
    page.goto(f"{mock}/docs")
    operation(page, *OPERATIONS["auvy"]).first.wait_for(state="visible")
    page.select_option(".topbar select", label="Strait Runs API")
    operation(page, *OPERATIONS["strait"]).first.wait_for(state="visible")
    assert page.locator(".servers select option").first.inner_text().startswith(f"{mock}/strait")
    assert offsite == []


def test_the_inspector_links_each_apis_description(page: Any, mock: str) -> None:
    offsite = offsite_requests(page)
    page.goto(f"{mock}/_mock/inspector/")
    for api in OPERATIONS:
        links = page.locator(f'.describe[data-api="{api}"] a')
        links.first.wait_for(state="visible")
        assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
            f"/{api}/docs",
            f"/{api}/openapi.json",
            f"/{api}/openapi.yaml",
        ]
    with page.context.expect_page() as opened:
        page.locator('.describe[data-api="ava"] a', has_text="docs").click()
    docs = opened.value
    operation(docs, *OPERATIONS["ava"]).first.wait_for(state="visible")
    assert offsite == []
