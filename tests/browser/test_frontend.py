"""A frontend on another origin, in Chromium: CORS with Authorization (preflighted), streams read
with fetch + ReadableStream and resumed after a dropped connection, and a public share-token
stream read by a native EventSource."""

from __future__ import annotations

import json
from typing import Any

import httpx

from mock_server.model.stream_id import StreamId

KEY = "auvy_test_acme_rw"
PUBLISH = "2d9a3b5c-4e6f-4a7b-8c1d-3e4f5a6b7c12"  # waits for an approval, then completes
SHARE = "shr_acme_support_valid_7Hq2mK9xQ"


def full_stream(mock: str, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The whole retained stream, replayed from the start once the job has ended."""
    response = httpx.get(f"{mock}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    found = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            found.append({"id": lines.get("id"), "data": json.loads(lines["data"])})
    return found


def test_a_page_on_another_origin_follows_a_job_across_a_dropped_connection(
    page: Any, mock: str, origin: str
) -> None:
    page.goto(f"{origin}/index.html")
    result = page.evaluate(
        "([base, key, pathway]) => window.startAndFollow(base, key, pathway, 3)",
        [mock, KEY, PUBLISH],
    )
    seen = result["events"]
    # The drop happened mid-job, and a second connection resumed after the last id seen.
    assert result["droppedAt"] == 3 and result["connections"] >= 2
    assert result["resumedFrom"] == seen[2]["id"]
    assert seen[-1]["data"]["type"] == "complete"
    expected = full_stream(
        mock, f"/auvy/v1/jobs/{result['jobId']}/stream", {"Authorization": f"Bearer {KEY}"}
    )
    # Nothing lost, nothing twice, in order.
    assert seen == expected
    ids = [StreamId.parse(e["id"]) for e in seen]
    assert ids == sorted(set(ids))
    # The page showed every event, in the order it arrived.
    shown = page.eval_on_selector_all("#events li", "items => items.map(i => i.dataset.id)")
    assert shown == [e["id"] for e in seen]
    statuses = [e["data"]["status"] for e in seen if e["data"]["type"] == "state_update"]
    assert "waiting" in statuses and statuses[-1] == "completed"
    assert page.text_content("#status") == "completed"


def test_the_public_stream_is_readable_by_a_native_event_source(
    page: Any, mock: str, origin: str
) -> None:
    page.goto(f"{origin}/index.html")
    result = page.evaluate(
        "([base, token]) => window.publicEventSource(base, token, 'acme', 'support')",
        [mock, SHARE],
    )
    expected = full_stream(mock, f"/auvy/v1/public/jobs/{result['jobId']}/stream?t={SHARE}", {})
    assert result["events"] == expected
    assert [e["data"]["type"] for e in expected][-1] == "complete"
    assert len(expected) >= 3
