"""Strait variants (mock_server.variants.strait): each switch makes the other answer the documents
or FACTS.md allow, and the reference (every switch at its default) keeps its own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conformance.spec_check import ResponseSpec
from mock_server.app import create_app
from mock_server.clock import ManualClock
from mock_server.errors import RequestError
from mock_server.profile import FIXTURES, ProfileError, ServerProfile
from mock_server.variants import PRESETS, VariantError, variant_from_table
from mock_server.variants.strait import LIVE, OTHER_CHOICES, StraitVariant
from mock_server.world import World

from .asgi import asgi_request
from .test_strait_app import ACME, GLOBEX, PROFILE, Client


class VariantClient(Client):
    """Checks every answer against the spec: the reference with its decisions, a variant only
    against what the documents promise (the x-reference-only constraints dropped)."""

    def __init__(self, app: Starlette, decisions: bool) -> None:
        super().__init__(app)
        self.decisions = decisions

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        key = kwargs.pop("key", ACME)
        headers = dict(kwargs.pop("headers", None) or {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        response = asgi_request(self.app, method, "/strait" + path, headers=headers, **kwargs)
        try:
            operation, _ = self.world.specs["strait"].match(method, path.split("?")[0])
        except RequestError:
            return response
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return response
        body = response.json() if response.content else None
        spec = ResponseSpec.for_api("strait", decisions=self.decisions)
        spec.check(operation.operation_id, response.status_code, response.headers, body)
        return response

    def frames(self, run_id: str, chunks: bool = False) -> list[dict[str, Any]]:
        world: World = self.world
        model = world.strait
        read = model.read_chunks(run_id, None) if chunks else model.read_stream(run_id, None)
        return [dict(entry.data) for entry in read.entries]


def make(**switches: Any) -> VariantClient:
    profile = ServerProfile.from_dict({**PROFILE, "variant": {"strait": switches}})
    app: Starlette = create_app(profile, clock=ManualClock(), apis=["strait"])
    app.state.world.reset()
    return VariantClient(app, decisions=not switches)


@pytest.fixture(scope="module")
def reference_app() -> VariantClient:
    return make()


@pytest.fixture(scope="module")
def choices_app() -> VariantClient:
    return make(**OTHER_CHOICES)


@pytest.fixture
def reference(reference_app: VariantClient) -> VariantClient:
    reference_app.world.reset()
    return reference_app


@pytest.fixture
def choices(choices_app: VariantClient) -> VariantClient:
    choices_app.world.reset()
    return choices_app


def path_of(client: VariantClient, run_id: str) -> list[str]:
    changes = [f for f in client.frames(run_id) if f["type"] == "status_change"]
    return [changes[0]["from"], *(c["to"] for c in changes)]


def test_every_switch_has_its_other_answer_in_the_choices_preset() -> None:
    defaults = StraitVariant()
    assert set(OTHER_CHOICES) == set(vars(defaults))
    for name, value in OTHER_CHOICES.items():
        assert value != getattr(defaults, name), name
    assert PRESETS["choices"]["strait"] == OTHER_CHOICES


def test_the_live_preset_is_what_facts_records_and_a_profile_names_it() -> None:
    assert PRESETS["strait-live"] == {"strait": LIVE}
    # Each of the live shapes is one of the allowed answers the choices preset already proves.
    assert LIVE.items() <= OTHER_CHOICES.items()
    live = StraitVariant(cancel_answers_run=True, paused_status=True, list_page=True)
    named = ServerProfile.from_dict({"variant": {"presets": ["strait-live"]}})
    assert named.variant.strait == live
    # The profile's own switches refine the presets it names, whatever the key order.
    refined = {"strait": {"list_page": False}, "presets": ["strait-live"]}
    assert variant_from_table(refined).strait == StraitVariant(
        cancel_answers_run=True, paused_status=True
    )
    shipped = ServerProfile.load(FIXTURES / "server" / "strait-live.toml")
    assert shipped.variant.strait == live and shipped.variant.describe() == [
        "strait.cancel_answers_run = True",
        "strait.paused_status = True",
        "strait.list_page = True",
    ]


@pytest.mark.parametrize(
    ("presets", "message"),
    [
        ("strait-live", "presets must be a list of preset names"),
        ([1], "presets must be a list of preset names"),
        (["strait-dead"], "unknown variant 'strait-dead'"),
    ],
)
def test_a_bad_presets_list_is_a_profile_error(presets: object, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        ServerProfile.from_dict({"variant": {"presets": presets}})


@pytest.mark.parametrize("table", [{"gone_code": ""}, {"gone_code": "no such"}, {"list_page": 1}])
def test_a_switch_outside_the_allowed_answers_is_refused(table: dict[str, Any]) -> None:
    with pytest.raises(VariantError):
        variant_from_table({"strait": table})


def test_cancel_answers_204_or_the_run(reference: VariantClient, choices: VariantClient) -> None:
    ref = reference.call("DELETE", f"/v1/runs/{reference.trigger()['id']}")
    assert ref.status_code == 204 and not ref.content
    run = choices.trigger()
    var = choices.call("DELETE", f"/v1/runs/{run['id']}")
    assert var.status_code == 200
    assert var.json()["id"] == run["id"] and var.json()["status"] == "canceled"


def test_pause_reports_waiting_or_paused(reference: VariantClient, choices: VariantClient) -> None:
    for client, word in ((reference, "waiting"), (choices, "paused")):
        run = client.trigger("job_acme_long")
        client.settle(run["id"], "executing")
        paused = client.call("POST", f"/v1/runs/{run['id']}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == word
        assert client.run(run["id"])["status"] == word
        assert client.call("POST", f"/v1/runs/{run['id']}/resume").json()["status"] == "queued"
        path = path_of(client, run["id"])
        assert path[-3:] == ["executing", word, "queued"], path


def test_lists_are_an_array_or_a_page(reference: VariantClient, choices: VariantClient) -> None:
    for client in (reference, choices):
        for _ in range(3):
            client.trigger(scheduled_at="2099-01-01T00:00:00Z")
    params = {"project_id": "proj_acme", "limit": 2}
    ref = reference.call("GET", "/v1/runs", params=params).json()
    assert isinstance(ref, list) and len(ref) == 2
    page = choices.call("GET", "/v1/runs", params=params).json()
    assert len(page["data"]) == 2 and page["has_more"] is True
    assert page["next_cursor"] == page["data"][-1]["created_at"]
    rest = choices.call("GET", "/v1/runs", params={**params, "cursor": page["next_cursor"]})
    assert len(rest.json()["data"]) == 1 and rest.json()["has_more"] is False
    dlq = choices.call("GET", "/v1/runs/dlq", params={"project_id": "proj_acme"}).json()
    assert dlq == {"data": [], "next_cursor": None, "has_more": False}


def test_the_410_code(reference: VariantClient, choices: VariantClient) -> None:
    for client, code in ((reference, "gone"), (choices, "run_finished")):
        run = client.trigger()
        client.settle(run["id"], "completed")
        for suffix in ("/stream", "/stream/chunks"):
            response = client.call("GET", f"/v1/runs/{run['id']}{suffix}")
            assert response.status_code == 410, response.text
            assert response.json()["error"]["code"] == code


def test_skip_dequeued_goes_straight_to_executing(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client, dequeued in ((reference, True), (choices, False)):
        run = client.trigger()
        client.settle(run["id"], "completed")
        path = path_of(client, run["id"])
        assert ("dequeued" in path) is dequeued, path
        failed = client.trigger("job_acme_system_fail")
        client.settle(failed["id"], "system_failed")
        assert path_of(client, failed["id"])[-2:] == ["dequeued", "system_failed"]


def test_unknown_frames(reference: VariantClient, choices: VariantClient) -> None:
    for client, unknown in ((reference, False), (choices, True)):
        run = client.trigger()
        client.settle(run["id"], "completed")
        types = {f["type"] for f in client.frames(run["id"])}
        assert bool(types - {"status_change", "event"}) is unknown, types
        chunk_types = {f["type"] for f in client.frames(run["id"], chunks=True)}
        assert bool(chunk_types - {"stream_chunk"}) is unknown, chunk_types


def test_extra_fields_and_omitted_nulls(reference: VariantClient, choices: VariantClient) -> None:
    ref = reference.run(reference.trigger(scheduled_at="2099-01-01T00:00:00Z")["id"])
    assert ref["started_at"] is None and "x_region" not in ref
    var = choices.run(choices.trigger(scheduled_at="2099-01-01T00:00:00Z")["id"])
    assert "started_at" not in var and "error" not in var
    assert var["x_region"] and var["updated_at"] == var["created_at"]
    assert set(ref) - set(var) == {k for k, v in ref.items() if v is None}
    reset = choices.call("DELETE", f"/v1/runs/{var['id']}/idempotency-key").json()
    assert reset["status"] == "reset" and reset["run_id"] == var["id"] and "reset_at" in reset


def test_foreign_project_id(reference: VariantClient, choices: VariantClient) -> None:
    params = {"project_id": "proj_acme"}
    assert reference.call("GET", "/v1/runs", params=params, key=GLOBEX).status_code == 404
    page = choices.call("GET", "/v1/runs", params=params, key=GLOBEX)
    assert page.status_code == 200 and page.json()["data"] == []


def test_bulk_dlq_replay_mixed_and_partial_bulk_replay(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client, status in ((reference, 409), (choices, 400)):
        dead = client.trigger("job_acme_always_fail")
        client.settle(dead["id"], "dead_letter")
        done = client.trigger()
        client.settle(done["id"], "completed")
        body = {"run_ids": [dead["id"], done["id"]]}
        assert client.call("POST", "/v1/runs/bulk-dlq-replay", json=body).status_code == status
        assert client.run(dead["id"])["status"] == "dead_letter"
    for client, partial in ((reference, False), (choices, True)):
        failed = client.trigger("job_acme_fatal")
        client.settle(failed["id"], "failed")
        done = client.trigger()
        client.settle(done["id"], "completed")
        body = {"run_ids": [failed["id"], done["id"]]}
        response = client.call("POST", "/v1/runs/bulk-replay", json=body)
        if partial:
            assert response.status_code == 200 and len(response.json()) == 1
            assert response.json()[0]["payload"] == failed["payload"]
        else:
            assert response.status_code == 400


def test_body_validation_400_or_422(reference: VariantClient, choices: VariantClient) -> None:
    path = "/v1/jobs/job_acme_complete/trigger"
    for client, status in ((reference, 400), (choices, 422)):
        assert client.call("POST", path, json={"priority": 11}).status_code == status
        run = client.trigger(scheduled_at="2099-01-01T00:00:00Z")
        debug = client.call("POST", f"/v1/runs/{run['id']}/debug", json={"debug_mode": "yes"})
        assert debug.status_code == status, debug.text
    malformed = choices.call(
        "POST", path, content=b"{", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400, "malformed JSON is a bad request in every variant"


def test_a_late_stream_starts_with_the_history_or_now(
    reference: VariantClient, choices: VariantClient
) -> None:
    for client, replays in ((reference, True), (choices, False)):
        run = client.trigger("job_acme_long")
        client.settle(run["id"], "executing")
        history = client.world.strait.read_stream(run["id"], None)
        start = client.world.strait_app._start_of(history)
        if replays:
            assert start is None, "the reference does not replay the run's history"
        else:
            assert start == history.entries[-1].id, "the variant replays history"
