from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.errors import MethodNotAllowed, RequestInvalid, RouteNotFound
from mock_server.model.stream_id import InvalidStreamId, StreamId
from mock_server.spec import SPEC_DIR, Operation, Spec, ValidRequest, load_specs

WORKSPACE = "3f1c0a52-6a4e-4c8e-9d43-6b1f0e7a9a01"
PATHWAY = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"

MINI = textwrap.dedent(
    """
    openapi: 3.1.0
    info: {title: mini, version: '1'}
    paths:
      /v1/runs/{id}:
        parameters:
          - {name: id, in: path, required: true, schema: {type: string, maxLength: 8}}
        get:
          operationId: getRun
          responses: {'200': {description: ok}}
        delete:
          operationId: deleteRun
          responses: {'200': {description: ok}}
      /v1/runs/dlq:
        get:
          operationId: listDeadLetters
          parameters:
            - name: limit
              in: query
              schema: {type: integer, minimum: 1, maximum: 50, default: 10}
            - {name: ratio, in: query, schema: {type: number, maximum: 1}}
            - {name: verbose, in: query, schema: {type: boolean, default: false}}
            - {name: tag, in: query, required: true, schema: {type: string, enum: [a, b]}}
            - {name: X-Tenant, in: header, required: true, schema: {type: string, minLength: 2}}
            - {name: session, in: cookie, schema: {type: string}}
            - name: filter
              in: query
              content:
                application/json:
                  schema: {type: object, properties: {n: {type: integer}}}
          responses: {'200': {description: ok}}
      /v1/runs/{id}/events:
        get:
          operationId: streamRun
          parameters:
            - {name: id, in: path, required: true, schema: {type: string}}
          responses:
            '200':
              description: events
              content:
                text/event-stream:
                  schema: {type: string}
      /v1/items:
        post:
          operationId: createItem
          security: [{key: []}]
          requestBody:
            required: true
            content:
              application/json:
                schema: {$ref: '#/components/schemas/Item'}
          responses: {'200': {description: ok}}
        put:
          operationId: replaceItem
          requestBody:
            content:
              application/merge-patch+json:
                schema: {type: object}
          responses: {'200': {description: ok}}
    components:
      securitySchemes:
        key: {type: http, scheme: bearer}
      schemas:
        Item:
          type: object
          required: [name]
          additionalProperties: false
          properties:
            name: {type: string}
            spec:
              type: object
              properties:
                size: {type: integer}
    """
)


@pytest.fixture(scope="module")
def auvy() -> Spec:
    return Spec.load(SPEC_DIR / "auvy.yaml")


@pytest.fixture
def mini(tmp_path: Path) -> Spec:
    path = tmp_path / "mini.yaml"
    path.write_text(MINI, encoding="utf-8")
    return Spec.load(path)


def validate(
    op: Operation,
    *,
    path: Mapping[str, str] | None = None,
    query: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    content_type: str | None = "application/json",
    body: bytes | Any = b"",
    max_body_bytes: int = 1024 * 1024,
) -> ValidRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return op.validate(
        path or {},
        query,
        headers or {},
        content_type,
        raw,
        max_body_bytes=max_body_bytes,
    )


def invalid(op: Operation, **kwargs: Any) -> RequestInvalid:
    with pytest.raises(RequestInvalid) as info:
        validate(op, **kwargs)
    return info.value


# --- loading and routing ---------------------------------------------------------------------


JOBS_OPERATIONS = {
    "cancelJob",
    "chatTrace",
    "createJob",
    "executePathway",
    "getJobStatus",
    "listJobs",
    "resumeJob",
    "streamJob",
    "submitJobInput",
    "transcribe",
}


def test_the_auvy_document_compiles_every_operation(auvy: Spec) -> None:
    assert auvy.name == "auvy"
    assert set(auvy.operations) >= JOBS_OPERATIONS
    for name in JOBS_OPERATIONS:
        op = auvy.operations[name]
        assert op.secured, name
        assert op.streams is (name == "streamJob"), name
    assert auvy.operations["createJob"].body is not None
    assert auvy.operations["cancelJob"].body is None
    assert load_specs(["auvy"])["auvy"].operations.keys() == auvy.operations.keys()


@pytest.mark.parametrize(
    ("method", "path", "operation_id", "values"),
    [
        ("GET", "/v1/jobs", "listJobs", {}),
        ("POST", "/v1/jobs", "createJob", {}),
        ("GET", "/v1/jobs/job_1/status", "getJobStatus", {"jobId": "job_1"}),
        ("GET", "/v1/jobs/job_1/stream", "streamJob", {"jobId": "job_1"}),
        ("POST", "/v1/jobs/j/cancel", "cancelJob", {"jobId": "j"}),
        ("POST", "/v1/jobs/j/resume", "resumeJob", {"jobId": "j"}),
        ("POST", "/v1/jobs/j/input", "submitJobInput", {"jobId": "j"}),
        ("POST", f"/v1/pathways/{PATHWAY}/execute", "executePathway", {"id": PATHWAY}),
        ("POST", "/v1/transcribe", "transcribe", {}),
        ("POST", "/v1/chat/trc_1", "chatTrace", {"traceId": "trc_1"}),
        ("HEAD", "/v1/jobs/j/status", "getJobStatus", {"jobId": "j"}),
    ],
)
def test_auvy_routes(
    auvy: Spec, method: str, path: str, operation_id: str, values: dict[str, str]
) -> None:
    op, got = auvy.match(method, path)
    assert op.operation_id == operation_id
    assert got == values


@pytest.mark.parametrize(
    "path", ["/v1/nope", "/v1/jobs/", "/jobs", "/v1/jobs/a/b/status", "/v1/jobs//status", ""]
)
def test_unknown_paths_are_route_not_found(auvy: Spec, path: str) -> None:
    with pytest.raises(RouteNotFound):
        auvy.match("GET", path)


def test_a_known_path_with_another_method_is_method_not_allowed(auvy: Spec) -> None:
    with pytest.raises(MethodNotAllowed) as info:
        auvy.match("DELETE", "/v1/jobs")
    assert info.value.allowed == ("GET", "POST")
    with pytest.raises(MethodNotAllowed) as info:
        auvy.match("GET", "/v1/jobs/j/cancel")
    assert info.value.allowed == ("POST",)


def test_a_literal_segment_beats_a_parameter_whatever_the_order(mini: Spec) -> None:
    # /v1/runs/{id} is declared first in the document.
    op, values = mini.match("GET", "/v1/runs/dlq")
    assert op.operation_id == "listDeadLetters"
    assert values == {}
    op, values = mini.match("GET", "/v1/runs/r1")
    assert op.operation_id == "getRun"
    assert values == {"id": "r1"}
    op, values = mini.match("GET", "/v1/runs/r1/events")
    assert (op.operation_id, values) == ("streamRun", {"id": "r1"})
    assert op.streams


def test_path_level_parameters_apply_to_every_method(mini: Spec) -> None:
    op, values = mini.match("DELETE", "/v1/runs/r1")
    assert op.operation_id == "deleteRun"
    assert validate(op, path=values).path == {"id": "r1"}
    err = invalid(op, path={"id": "far-too-long"})
    assert (err.location, err.field) == ("path", "id")


def test_security_is_per_operation(mini: Spec) -> None:
    assert mini.operations["createItem"].secured
    assert not mini.operations["getRun"].secured


def test_an_operation_without_operation_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\n"
        "paths:\n  /x:\n    get:\n      responses: {'200': {description: ok}}\n"
    )
    with pytest.raises(ValueError, match="operationId"):
        Spec.load(path)


def test_a_non_json_request_body_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    post:\n"
        "      operationId: upload\n      requestBody:\n        content:\n"
        "          text/plain: {schema: {type: string}}\n"
        "      responses: {'200': {description: ok}}\n"
    )
    with pytest.raises(ValueError, match="only JSON request bodies"):
        Spec.load(path)


# --- parameters ------------------------------------------------------------------------------

GOOD = [("tag", "a")]
TENANT = {"x-tenant": "acme"}


def dlq(mini: Spec) -> Operation:
    return mini.operations["listDeadLetters"]


def test_defaults_fill_missing_parameters(mini: Spec) -> None:
    got = validate(dlq(mini), query=GOOD, headers=TENANT)
    assert got.query == {"limit": 10, "verbose": False, "tag": "a"}
    assert got.headers == {"X-Tenant": "acme"}
    assert got.body is None


def test_auvy_list_defaults(auvy: Spec) -> None:
    got = validate(auvy.operations["listJobs"])
    assert got.query == {"limit": 20, "offset": 0}


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("limit", "5", 5),
        ("limit", "050", 50),
        ("ratio", "0.5", 0.5),
        ("ratio", "-2", -2.0),
        ("ratio", "1e-3", 0.001),
        ("ratio", "1E0", 1.0),
        ("verbose", "true", True),
        ("verbose", "false", False),
    ],
)
def test_parameters_are_coerced_to_their_declared_type(
    mini: Spec, name: str, raw: str, value: object
) -> None:
    got = validate(dlq(mini), query=[*GOOD, (name, raw)], headers=TENANT)
    assert got.query[name] == value
    assert type(got.query[name]) is type(value)


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("limit", "abc", "limit must be an integer"),
        ("limit", "1.5", "limit must be an integer"),
        ("limit", "+5", "limit must be an integer"),
        ("limit", "", "limit must be an integer"),
        ("limit", " 5", "limit must be an integer"),
        ("limit", "1" * 20, "limit must be an integer"),
        ("limit", str(2**63), "limit must be an integer"),
        ("limit", str(-(2**63) - 1), "limit must be an integer"),
        ("limit", str(2**63 - 1), f"limit: {2**63 - 1} is greater than the maximum of 50"),
        ("limit", "0", "limit: 0 is less than the minimum of 1"),
        ("limit", "51", "limit: 51 is greater than the maximum of 50"),
        ("ratio", "abc", "ratio must be a number"),
        ("ratio", "nan", "ratio must be a number"),
        ("ratio", "inf", "ratio must be a number"),
        ("ratio", "1_000", "ratio must be a number"),
        ("ratio", " 0.5", "ratio must be a number"),
        ("ratio", "0x10", "ratio must be a number"),
        ("ratio", "1e400", "ratio must be finite"),
        ("ratio", "2", "ratio: 2.0 is greater than the maximum of 1"),
        ("verbose", "True", "verbose must be true or false"),
        ("verbose", "1", "verbose must be true or false"),
        ("verbose", "", "verbose must be true or false"),
        ("tag", "c", "tag: 'c' is not one of ['a', 'b']"),
    ],
)
def test_bad_query_values_name_the_parameter(mini: Spec, name: str, raw: str, message: str) -> None:
    query = [(k, v) for k, v in GOOD if k != name] + [(name, raw)]
    err = invalid(dlq(mini), query=query, headers=TENANT)
    assert (err.location, err.field) == ("query", name)
    assert err.message == message


def test_int64_bounds_are_integers(mini: Spec) -> None:
    """OpenAPI's int64: its whole range is an integer, so a schema maximum decides."""
    for raw in (str(2**63 - 1), str(-(2**63))):
        err = invalid(dlq(mini), query=[*GOOD, ("limit", raw)], headers=TENANT)
        assert "must be an integer" not in err.message


def test_a_json_content_parameter_is_decoded_and_validated(mini: Spec) -> None:
    got = validate(dlq(mini), query=[*GOOD, ("filter", '{"n": 2, "tags": ["x"]}')], headers=TENANT)
    assert got.query["filter"] == {"n": 2, "tags": ["x"]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{nope", "filter is not JSON"),
        ("", "filter is not JSON"),
        ("NaN", "filter is not JSON"),
        ("[1]", "filter: [1] is not of type 'object'"),
        ('{"n": "two"}', "filter: 'two' is not of type 'integer'"),
        ("[" * 100_000, "filter is nested too deeply"),
    ],
)
def test_a_json_content_parameter_that_is_not_its_schema_is_refused(
    mini: Spec, raw: str, message: str
) -> None:
    err = invalid(dlq(mini), query=[*GOOD, ("filter", raw)], headers=TENANT)
    assert (err.location, err.field, err.message) == ("query", "filter", message)


def test_a_parameter_with_non_json_content_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths:\n  /x:\n    get:\n"
        "      operationId: find\n      parameters:\n"
        "        - {name: q, in: query, content: {text/plain: {schema: {type: string}}}}\n"
        "      responses: {'200': {description: ok}}\n"
    )
    with pytest.raises(ValueError, match="needs one application/json content"):
        Spec.load(path)


def test_required_parameters(mini: Spec) -> None:
    err = invalid(dlq(mini), headers=TENANT)
    assert (err.location, err.field) == ("query", "tag")
    assert err.message == "query parameter tag is required"
    err = invalid(dlq(mini), query=GOOD)
    assert (err.location, err.field) == ("header", "X-Tenant")
    err = invalid(dlq(mini), query=GOOD, headers={"x-tenant": "a"})
    assert (err.location, err.field) == ("header", "X-Tenant")


def test_a_repeated_query_parameter_is_refused(mini: Spec, auvy: Spec) -> None:
    err = invalid(dlq(mini), query=[*GOOD, ("limit", "1"), ("limit", "1")], headers=TENANT)
    assert (err.location, err.field) == ("query", "limit")
    assert "more than once" in err.message
    err = invalid(auvy.operations["listJobs"], query=[("status", "failed"), ("status", "failed")])
    assert err.field == "status"


def test_undeclared_query_parameters_and_cookies_are_ignored(mini: Spec) -> None:
    got = validate(
        dlq(mini), query=[*GOOD, ("other", "1"), ("other", "2"), ("session", "x")], headers=TENANT
    )
    assert "other" not in got.query
    assert "session" not in got.query


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ([("limit", "0")], "limit"),
        ([("limit", "101")], "limit"),
        ([("offset", "-1")], "offset"),
        ([("status", "cancelled")], "status"),
        ([("pathway_id", "not-a-uuid")], "pathway_id"),
        ([("receptor_id", "")], "receptor_id"),
    ],
)
def test_auvy_list_parameters(auvy: Spec, query: list[tuple[str, str]], field: str) -> None:
    err = invalid(auvy.operations["listJobs"], query=query)
    assert (err.location, err.field) == ("query", field)


def test_auvy_stream_after_parameter(auvy: Spec) -> None:
    op = auvy.operations["streamJob"]
    assert validate(op, path={"jobId": "j"}, query=[("after", "12-0")]).query == {"after": "12-0"}
    for bad in ("12", "a-b", "12-0-1", "-1-0"):
        err = invalid(op, path={"jobId": "j"}, query=[("after", bad)])
        assert err.field == "after"


@pytest.mark.parametrize(
    ("after", "ok"),
    [
        (f"{2**64 - 1}-{2**64 - 1}", True),
        (f"{2**64}-0", False),
        (f"0-{2**64}", False),
        ("0007-00", True),
        ("0" * 100 + "1-0", True),
        ("0" * 126 + "-0", False),  # 128 characters
    ],
)
def test_auvy_stream_after_is_a_redis_stream_id(auvy: Spec, after: str, ok: bool) -> None:
    op = auvy.operations["streamJob"]
    if ok:
        assert validate(op, path={"jobId": "j"}, query=[("after", after)]).query["after"] == after
    else:
        assert invalid(op, path={"jobId": "j"}, query=[("after", after)]).field == "after"


@settings(max_examples=300, deadline=None)
@given(
    ms=st.integers(0, 2**65) | st.sampled_from([2**64 - 1, 2**64, 10**19, 10**19 - 1]),
    seq=st.integers(0, 2**65),
    zeros=st.integers(0, 3),
)
def test_the_after_pattern_is_the_stream_id_parser(ms: int, seq: int, zeros: int) -> None:
    """The spec's pattern for `after` spells out what StreamId.parse accepts, so a client
    generating from the spec (schemathesis) sends only ids the server takes."""
    schema = _after_schema()
    text = "0" * zeros + f"{ms}-{seq}"
    try:
        StreamId.parse(text)
        parses = True
    except InvalidStreamId:
        parses = False
    matches = re.search(schema["pattern"], text) is not None and len(text) <= schema["maxLength"]
    assert matches == parses


def _after_schema() -> Mapping[str, Any]:
    import yaml

    document = yaml.safe_load((SPEC_DIR / "auvy.yaml").read_text(encoding="utf-8"))
    schema: Mapping[str, Any] = document["components"]["parameters"]["After"]["schema"]
    return schema


def test_auvy_job_id_bounds(auvy: Spec) -> None:
    op = auvy.operations["getJobStatus"]
    assert validate(op, path={"jobId": "x" * 128}).path == {"jobId": "x" * 128}
    err = invalid(op, path={"jobId": "x" * 129})
    assert (err.location, err.field) == ("path", "jobId")


# --- bodies ----------------------------------------------------------------------------------


def test_a_valid_body_is_parsed(auvy: Spec) -> None:
    body = {"pathway_id": PATHWAY, "input": {"a": 1}, "stream": True}
    assert validate(auvy.operations["createJob"], body=body).body == body


def test_a_required_body_must_be_there(auvy: Spec) -> None:
    for empty in (b"", b"  \n"):
        err = invalid(auvy.operations["createJob"], body=empty)
        assert (err.location, err.field) == ("body", "")
        assert err.message == "a JSON request body is required"


def test_an_optional_body_may_be_absent(auvy: Spec) -> None:
    op = auvy.operations["executePathway"]
    assert validate(op, path={"id": PATHWAY}, body=b"", content_type=None).body is None
    assert validate(op, path={"id": PATHWAY}, body={"input": {"a": 1}}).body == {"input": {"a": 1}}


@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8"]
)
def test_json_content_types_are_accepted(auvy: Spec, content_type: str) -> None:
    op = auvy.operations["chatTrace"]
    assert validate(op, path={"traceId": "t"}, body={"message": "hi"}, content_type=content_type)


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [("text/plain", "text/plain"), (None, "missing"), ("", "missing"), ("application/xml", "")],
)
def test_other_content_types_are_refused(auvy: Spec, content_type: str | None, shown: str) -> None:
    err = invalid(
        auvy.operations["chatTrace"],
        path={"traceId": "t"},
        body={"message": "hi"},
        content_type=content_type,
    )
    assert err.location == "body"
    assert err.message.startswith("Content-Type must be application/json, not ")
    assert shown in err.message


def test_a_json_suffix_media_type_is_accepted_when_declared(mini: Spec) -> None:
    op = mini.operations["replaceItem"]
    assert validate(op, body={"a": 1}, content_type="application/merge-patch+json").body == {"a": 1}
    assert invalid(op, body={"a": 1}, content_type="application/json").location == "body"


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"{'message': 'hi'}",
        b'{"message": "hi"} trailing',
        b"\xff\xfe\x00garbage",
        b'{"message": "\xc3\x28"}',
        b'{"message": "hi", "n": NaN}',
        b'{"message": "hi", "n": Infinity}',
        b'{"message": "hi", "n": -Infinity}',
        b'{"message": "hi", "n": ' + b"9" * 5000 + b"}",
    ],
)
def test_malformed_json_is_a_request_error(auvy: Spec, raw: bytes) -> None:
    err = invalid(auvy.operations["chatTrace"], path={"traceId": "t"}, body=raw)
    assert (err.location, err.field) == ("body", "")
    assert err.message.startswith("request body is not valid JSON")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"message": "hi \\ud800"}',
        b'{"message": "hi", "neuron_task_options": {"\\udfff": 1}}',
        b'{"message": "hi", "neuron_task_options": {"k": ["\\udc00"]}}',
    ],
    ids=["value", "key", "nested"],
)
def test_a_lone_surrogate_escape_is_a_request_error(auvy: Spec, raw: bytes) -> None:
    err = invalid(auvy.operations["chatTrace"], path={"traceId": "t"}, body=raw)
    assert (err.location, err.field) == ("body", "")
    assert "surrogate" in err.message


def test_a_surrogate_pair_is_an_ordinary_character(auvy: Spec) -> None:
    got = validate(
        auvy.operations["chatTrace"], path={"traceId": "t"}, body=b'{"message": "\\ud83d\\ude00"}'
    )
    assert got.body == {"message": "\U0001f600"}


def test_a_body_over_the_limit_is_refused_before_parsing(auvy: Spec) -> None:
    raw = json.dumps({"message": "x" * 100}).encode()
    op = auvy.operations["chatTrace"]
    assert validate(op, path={"traceId": "t"}, body=raw, max_body_bytes=len(raw)).body
    err = invalid(op, path={"traceId": "t"}, body=raw, max_body_bytes=len(raw) - 1)
    assert err.message == f"request body is larger than {len(raw) - 1} bytes"
    err = invalid(op, path={"traceId": "t"}, body=b"{" * 50, max_body_bytes=10)
    assert "larger than" in err.message


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"pathway_id": "'
        + PATHWAY.encode()
        + b'", "input": {"a": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}}",
        b'{"pathway": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b"}",
    ],
)
def test_deep_nesting_is_a_request_error_never_a_crash(auvy: Spec, raw: bytes) -> None:
    err = invalid(auvy.operations["createJob"], body=raw, max_body_bytes=len(raw))
    assert err.location == "body"
    assert err.message == "request body is nested too deeply"


def test_nesting_the_parser_accepts_is_validated_normally(auvy: Spec) -> None:
    inner: Any = 1
    for _ in range(200):
        inner = {"a": inner}
    body = {"pathway_id": PATHWAY, "input": inner}
    assert validate(auvy.operations["createJob"], body=body).body == body


@pytest.mark.parametrize(
    ("op", "body", "field"),
    [
        ("createJob", {"pathway_id": "not-a-uuid"}, "pathway_id"),
        ("createJob", {"pathway": {}}, "pathway"),
        ("createJob", {"pathway_id": PATHWAY, "input": 3}, "input"),
        ("createJob", {"pathway_id": PATHWAY, "stream": "yes"}, "stream"),
        ("submitJobInput", {"input": {}}, "workspace_id"),
        ("submitJobInput", {"workspace_id": "nope", "input": {}}, "workspace_id"),
        ("transcribe", {"mime_type": "audio/webm"}, "audio_base64"),
        ("transcribe", {"audio_base64": "", "mime_type": "audio/webm"}, "audio_base64"),
        ("transcribe", {"audio_base64": "aGk=", "mime_type": "video/mp4"}, "mime_type"),
        ("chatTrace", {"message": ""}, "message"),
        (
            "chatTrace",
            {"message": "hi", "neuron_task_options": {"trace_type": "robot"}},
            "neuron_task_options.trace_type",
        ),
    ],
)
def test_schema_errors_name_the_field(
    auvy: Spec, op: str, body: dict[str, Any], field: str
) -> None:
    err = invalid(auvy.operations[op], path={"jobId": "j", "traceId": "t"}, body=body)
    assert (err.location, err.field) == ("body", field)
    assert err.message.startswith(f"{field}: ")


def intervention(**members: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "intervention_response",
        "interventionId": "int_1",
        "action": "approve",
    }
    base.update(members)
    return {"workspace_id": WORKSPACE, "input": {k: v for k, v in base.items() if v is not None}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**intervention(), "extra": 1}, "extra"),
        (intervention(action="fly"), "input.action"),
        (intervention(interventionId=None), "input.interventionId"),
        (intervention(type="other"), "input.type"),
        (intervention(colour="red"), "input.colour"),
        (intervention(action="submit_input"), "input.fields"),
        (intervention(action="submit_input", fields={"a": [1]}), "input.fields.a"),
        (intervention(action="answer_questions"), "input.answers"),
        (intervention(action="answer_questions", answers={"q1": 1}), "input.answers.q1"),
    ],
)
def test_intervention_schema_errors_name_the_nested_field(
    auvy: Spec, body: dict[str, Any], field: str
) -> None:
    err = invalid(auvy.operations["submitJobInput"], path={"jobId": "j"}, body=body)
    assert (err.location, err.field) == ("body", field)


def test_a_valid_intervention_body_passes(auvy: Spec) -> None:
    body = intervention(action="submit_input", fields={"a": "x", "b": 2, "c": True})
    assert validate(auvy.operations["submitJobInput"], path={"jobId": "j"}, body=body).body == body


def test_whole_body_errors_have_no_field(auvy: Spec) -> None:
    bodies: list[Any] = [[], "text", None, {}, {"pathway_id": PATHWAY, "pathway": {"a": 1}}]
    for body in bodies:
        err = invalid(auvy.operations["createJob"], body=body)
        assert (err.location, err.field) == ("body", "")


def test_mini_schema_paths(mini: Spec) -> None:
    op = mini.operations["createItem"]
    assert invalid(op, body={}).field == "name"
    assert invalid(op, body={"name": "a", "bogus": 1}).field == "bogus"
    assert invalid(op, body={"name": "a", "spec": {"size": "big"}}).field == "spec.size"


# --- matching and decoding shortcuts ---------------------------------------------------------


def _match_every_route(spec: Spec, method: str, path: str) -> tuple[str, dict[str, str]] | str:
    """`Spec.match` as it was: every route's pattern in order, the first match decides."""
    for route in spec.routes:
        m = route.pattern.fullmatch(path)
        if m is None:
            continue
        op = route.operations.get(method)
        if op is None and method == "HEAD":
            op = route.operations.get("GET")
        return (op.operation_id, m.groupdict()) if op is not None else "method not allowed"
    return "not found"


def _match(spec: Spec, method: str, path: str) -> tuple[str, dict[str, str]] | str:
    try:
        op, values = spec.match(method, path)
    except MethodNotAllowed:
        return "method not allowed"
    except RouteNotFound:
        return "not found"
    return op.operation_id, values


@pytest.mark.parametrize("name", ["auvy", "ava", "strait"])
def test_matching_by_slash_count_answers_as_trying_every_route(name: str) -> None:
    spec = load_specs([name])[name]
    paths = {"", "/", "//", "/v1", "/v1/", "/nope/x/y"}
    for route in spec.routes:
        for value in ("x", "a\nb", "dlq", "a.b", "%2F"):
            path = re.sub(r"\{[^}]+\}", value, route.template)
            paths |= {path, path + "/", path + "/x", path.rsplit("/", 1)[0], "/" + path}
    for path in sorted(paths):
        for method in ("GET", "HEAD", "POST", "DELETE", "PATCH"):
            assert _match(spec, method, path) == _match_every_route(spec, method, path), path


@pytest.mark.parametrize(
    "raw",
    [
        '{"message": "hé"}'.encode(),
        '{"message": "hé"}'.encode("utf-16"),
        '{"message": "hé"}'.encode("utf-32-le"),
        '\ufeff{"message": "hi"}'.encode(),
        b'{"message": "hi", "n": 1e400}',
        b'{"message": "hi", "a": -0.0, "b": [1, 2.5, null, true]}',
    ],
)
def test_bodies_decode_as_json_loads_decodes_them(auvy: Spec, raw: bytes) -> None:
    def refuse(name: str) -> Any:
        raise ValueError(name)

    op = auvy.operations["chatTrace"]
    try:
        expected = json.loads(raw, parse_constant=refuse)
    except ValueError:
        assert invalid(op, path={"traceId": "t"}, body=raw).message.startswith(
            "request body is not valid JSON"
        )
    else:
        assert validate(op, path={"traceId": "t"}, body=raw).body == expected
