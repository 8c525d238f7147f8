"""Real-browser fixtures: Debian's Chromium driven by Playwright, the reference server on a free
port, and a second origin serving a small frontend (`pages/`).

Playwright is only the driver: no browser is ever downloaded. Where /usr/bin/chromium or the
playwright package is missing, every test here is skipped with that reason (`nox -s tests`
installs both where it can).
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.server import ReferenceServer
from tests.paced import ci_profile_at

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
PAGES = Path(__file__).resolve().parent / "pages"
REPORTS = REPO / "reports"


def why_no_browser() -> str | None:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return "Chromium is not installed (apt-get install chromium; nox -s tests does it as root)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[browser]')"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = why_no_browser()
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            if reason is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # CI's profile at a browser's pace (tests/paced.py): a job still takes well under a second.
    profile = ci_profile_at(tmp_path_factory.mktemp("profile"), step_ms=40, start_delay_ms=20)
    server = ReferenceServer(profile)
    try:
        yield server.start()
    finally:
        server.stop()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def origin() -> Iterator[str]:
    """Another origin (another port) serving the frontend pages."""
    handler = functools.partial(_Quiet, directory=str(PAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# Module scope, not session: while Playwright's sync driver is open, its event loop counts as
# running in this thread, so every later test of the worker that calls asyncio.run (the in-process
# ASGI tests) would fail. pytest tears a module fixture down before the next module's tests run.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = CHROMIUM if CHROMIUM.exists() else Path(str(shutil.which("chromium")))
    with sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()
