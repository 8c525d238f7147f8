"""The inspector page in Chromium: a new job is listed within a second, its events arrive live,
and each button changes the job exactly as the API then reports. Screenshots go to reports/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

REPORTS = Path(__file__).resolve().parents[2] / "reports"

AUVY = {"Authorization": "Bearer auvy_test_acme_rw"}
STRAIT_KEY = "strait_7e7635b23a9157c5d9911aab0d35be05779b32737b4536af9581aa5abb7e66c1"
STRAIT = {"Authorization": f"Bearer {STRAIT_KEY}"}
AVA = {
    "x-internal-secret": "ava_test_internal_secret",
    "x-tenant-id": "ten_acme",
    "x-user-id": "usr_inspector",
    "x-platform-role": "platform-admin",
}
BACKFILL = "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15"  # runs for minutes


def start_auvy(mock: str) -> str:
    response = httpx.post(f"{mock}/auvy/v1/jobs", json={"pathway_id": BACKFILL}, headers=AUVY)
    assert response.status_code == 200, response.text
    return str(response.json()["job_id"])


def auvy_status(mock: str, job: str) -> dict[str, Any]:
    return dict(httpx.get(f"{mock}/auvy/v1/jobs/{job}/status", headers=AUVY).json())


def force(page: Any, api: str, ident: str, outcome: str, reason: str = "") -> None:
    """Select the row, type the reason, press the outcome's button; wait for the list to agree."""
    page.click(f'tr[data-api="{api}"][data-id="{ident}"]')
    page.wait_for_selector(f'#detail[data-id="{ident}"] button[data-outcome="{outcome}"]')
    page.fill("#reason", reason)
    page.click(f'#outcome-buttons button[data-outcome="{outcome}"]')
    page.wait_for_function(
        "([api, id]) => !document.querySelector(`tr[data-api='${api}'][data-id='${id}']`)"
        "?.dataset.status.match(/^(pending|queued|running)$/)",
        arg=[api, ident],
    )


def screenshot(page: Any, name: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    page.screenshot(path=str(REPORTS / f"{name}.png"), full_page=True)


def test_a_new_job_is_listed_within_a_second_and_its_events_arrive_live(
    page: Any, mock: str
) -> None:
    page.goto(f"{mock}/_mock/inspector/")
    page.wait_for_selector("#scenario option", state="attached")
    job = start_auvy(mock)
    started = time.monotonic()
    page.wait_for_selector(f'tr[data-api="auvy"][data-id="{job}"]', timeout=1_000)
    assert time.monotonic() - started < 1.0
    page.click(f'tr[data-api="auvy"][data-id="{job}"]')
    # Events keep arriving while the job runs.
    page.wait_for_function("document.querySelectorAll('#events li').length >= 6")
    first = page.eval_on_selector_all("#events li", "items => items.length")
    page.wait_for_function(f"document.querySelectorAll('#events li').length > {first}")
    screenshot(page, "inspector-live")


def test_each_button_changes_the_job_as_the_api_then_reports(page: Any, mock: str) -> None:
    page.goto(f"{mock}/_mock/inspector/")
    failing, asking = start_auvy(mock), start_auvy(mock)
    ava = httpx.post(f"{mock}/ava/v1/ava/jobs", json={"worker_id": "wkr_acme_long"}, headers=AVA)
    ava_job = ava.json()["data"]["id"]
    runs = [
        httpx.post(f"{mock}/strait/v1/jobs/job_acme_long/trigger", json={}, headers=STRAIT).json()[
            "id"
        ]
        for _ in range(2)
    ]
    page.wait_for_selector(f'tr[data-id="{runs[1]}"]', timeout=2_000)

    force(page, "auvy", failing, "fail", "disk full")
    reported = auvy_status(mock, failing)
    assert (reported["status"], reported["failedReason"]) == ("failed", "disk full")

    force(page, "auvy", asking, "approval", "Ship it?")
    waiting = auvy_status(mock, asking)["waitingFor"]
    assert (waiting["type"], waiting["prompt"]) == ("approval", "Ship it?")

    force(page, "ava", ava_job, "timeout")
    got = httpx.get(f"{mock}/ava/v1/ava/jobs/{ava_job}", headers=AVA).json()["data"]
    assert (got["status"], got["error"]) == ("failed", "handler timed out")

    force(page, "strait", runs[0], "dead_letter")
    force(page, "strait", runs[1], "complete")
    statuses = [
        httpx.get(f"{mock}/strait/v1/runs/{r}", headers=STRAIT).json()["status"] for r in runs
    ]
    assert statuses == ["dead_letter", "completed"]
    # The dead-lettered run's events, as the page received them, end with the move.
    page.click(f'tr[data-api="strait"][data-id="{runs[0]}"]')
    page.wait_for_function(
        "[...document.querySelectorAll('#events li')].some(li => li.textContent.includes("
        '\'"to":"dead_letter"\'))'
    )

    before = httpx.get(f"{mock}/_mock/clock").json()["now_ms"]
    page.fill("#advance-ms", "60000")
    page.click("#advance")
    page.wait_for_function("document.querySelector('#message').textContent.includes('advanced')")
    assert httpx.get(f"{mock}/_mock/clock").json()["now_ms"] - before >= 60_000


def test_a_scenario_loads_from_the_page(page: Any, mock: str) -> None:
    page.goto(f"{mock}/_mock/inspector/")
    page.wait_for_selector("#scenario option", state="attached")
    page.select_option("#scenario", "waiting-for-approval")
    page.click("#load-scenario")
    page.wait_for_function(
        'document.querySelectorAll(\'tr[data-api="auvy"][data-status="waiting"]\').length >= 5',
        timeout=5_000,
    )
    jobs = httpx.get(f"{mock}/_mock/auvy/jobs").json()["jobs"]
    assert sum(1 for j in jobs if j["status"] == "waiting") == 5
    first = page.get_attribute('tr[data-api="auvy"][data-status="waiting"]', "data-id")
    page.click(f'tr[data-api="auvy"][data-id="{first}"]')
    page.wait_for_selector("#events li")
    screenshot(page, "inspector")
