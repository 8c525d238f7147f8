"""Response validation: the reference server's decisions (`x-reference-only`) bind it alone, and
content types are compared as media types (case-insensitive, parameters ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import ConformanceFailure
from conformance.spec_check import ResponseSpec, with_decisions

JOB: dict[str, Any] = {
    "type": "object",
    "required": ["id", "status"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string"},
        "content": {"type": "string"},
    },
    # Our choices, where the documents are silent: content always sent, nothing else.
    "x-reference-only": {"required": ["content"], "additionalProperties": False},
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "tiny", "version": "1"},
    "paths": {
        "/jobs/{id}": {
            "get": {
                "operationId": "getJob",
                "responses": {
                    "200": {
                        "description": "the job",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}
                        },
                    },
                    "404": {"$ref": "#/components/responses/NotFound"},
                },
            }
        },
        "/jobs": {
            "get": {
                "operationId": "listJobs",
                "responses": {
                    "200": {
                        "description": "jobs",
                        "content": {
                            "Application/JSON": {
                                "schema": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Job"},
                                }
                            }
                        },
                    }
                },
            }
        },
    },
    "components": {
        "schemas": {"Job": JOB},
        "responses": {
            "NotFound": {
                "description": "no such job",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["code"],
                            "properties": {"code": {"type": "string"}},
                            "x-reference-only": {"properties": {"code": {"const": "NOT_FOUND"}}},
                        }
                    }
                },
            }
        },
    },
}

JSON = {"content-type": "application/json"}
PLAIN = {"id": "j1", "status": "done"}
EXTRA = {"id": "j1", "status": "done", "content": "x", "queued_at": "2026-01-01T00:00:00Z"}


def spec(decisions: bool) -> ResponseSpec:
    return ResponseSpec.from_document("tiny", SPEC, decisions=decisions)


@pytest.mark.parametrize("body", [PLAIN, EXTRA])
def test_a_foreign_target_is_held_to_the_documents_only(body: dict[str, Any]) -> None:
    spec(False).check("getJob", 200, JSON, body)
    spec(False).check("listJobs", 200, JSON, [body])
    spec(False).check("getJob", 404, JSON, {"code": "job_not_found"})


@pytest.mark.parametrize(
    ("operation", "status", "body", "where"),
    [
        ("getJob", 200, PLAIN, "'content' is a required property"),
        ("getJob", 200, EXTRA, "queued_at"),
        ("listJobs", 200, [PLAIN], "'content' is a required property"),
        ("getJob", 404, {"code": "job_not_found"}, "NOT_FOUND"),
    ],
)
def test_the_reference_server_is_held_to_its_decisions(
    operation: str, status: int, body: Any, where: str
) -> None:
    with pytest.raises(ConformanceFailure) as failure:
        spec(True).check(operation, status, JSON, body)
    assert where in failure.value.detail


def test_decisions_add_to_the_documents_never_replace_them() -> None:
    for decisions in (True, False):
        with pytest.raises(ConformanceFailure, match="does not match"):
            spec(decisions).check("getJob", 200, JSON, {"id": "j1", "content": "x"})
    spec(True).check("getJob", 200, JSON, {"id": "j1", "status": "s", "content": "x"})


def test_the_transformation_leaves_the_source_document_alone() -> None:
    before = repr(SPEC)
    with_decisions(SPEC, True)
    with_decisions(SPEC, False)
    assert repr(SPEC) == before
    enforced = with_decisions(SPEC, True)["components"]["schemas"]["Job"]
    assert "x-reference-only" not in enforced
    assert enforced["allOf"] == [{"required": ["content"]}]
    assert enforced["unevaluatedProperties"] is False
    assert "allOf" not in with_decisions(SPEC, False)["components"]["schemas"]["Job"]


def test_for_api_builds_one_checker_per_mode() -> None:
    assert ResponseSpec.for_api("auvy") is ResponseSpec.for_api("auvy", decisions=True)
    assert ResponseSpec.for_api("auvy", decisions=False) is ResponseSpec.for_api("auvy", False)
    assert ResponseSpec.for_api("auvy", False) is not ResponseSpec.for_api("auvy", True)
    assert not ResponseSpec.for_api("auvy", False).decisions


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
        " application/json ; charset=utf-8",
    ],
)
def test_content_types_compare_as_media_types(content_type: str) -> None:
    spec(False).check("getJob", 200, {"content-type": content_type}, PLAIN)
    spec(False).check("listJobs", 200, {"content-type": content_type}, [PLAIN])


@pytest.mark.parametrize("content_type", ["text/plain", "application/jsonx", ""])
def test_an_undocumented_content_type_fails(content_type: str) -> None:
    with pytest.raises(ConformanceFailure, match="is not documented"):
        spec(False).check("getJob", 200, {"content-type": content_type}, PLAIN)


def test_the_bundled_specs_load_in_both_modes() -> None:
    for api in ("auvy", "ava", "strait"):
        for decisions in (True, False):
            assert ResponseSpec.for_api(api, decisions).operations
