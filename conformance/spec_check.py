"""Checks responses against the OpenAPI documents: the status is documented, required headers are
there, and the body (or each event-stream `data:`) matches the declared schema.

The same documents drive the reference server; here they are the yardstick for any target.

Decisions: a schema object may carry `x-reference-only: <JSON Schema>`, constraints that are the
reference server's own choice where the source documents are silent (a field it always sends, an
enum it picked, `additionalProperties: false`). `ResponseSpec.for_api(api, decisions=True)` adds
each such schema as one more `allOf` member, so the reference server is held to its choices;
`decisions=False` drops them, so a foreign target is judged only by what the documents promise.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .checks import ConformanceFailure

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
# libyaml when present: the pure-Python loader takes a third of a second per spec, paid in the
# controller and in every xdist worker.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def spec_document(api: str) -> Any:
    """The API's OpenAPI document, parsed once per process; callers must not modify it."""
    return yaml.load((SPEC_DIR / f"{api}.yaml").read_text(encoding="utf-8"), Loader=_LOADER)


REFERENCE_ONLY = "x-reference-only"
_CLOSING = ("additionalProperties", "unevaluatedProperties")


def with_decisions(document: Any, decisions: bool) -> Any:
    """A deep copy of `document` in which every `x-reference-only` schema is either one more
    `allOf` member of the schema carrying it (decisions) or gone (no decisions); a closing
    `additionalProperties` in it becomes the schema's own `unevaluatedProperties`. Transforming the
    document itself, rather than each validator, keeps every $ref pointing at the same places."""
    result = copy.deepcopy(document)
    seen: set[int] = set()  # YAML anchors share nodes; deepcopy keeps them shared

    def walk(node: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if isinstance(node, dict):
            extra = node.pop(REFERENCE_ONLY, None)
            for value in node.values():
                walk(value)
            if decisions and extra is not None:
                walk(extra)
                extra = dict(extra)
                # Inside an allOf member, `additionalProperties: false` would not see the
                # properties declared beside it and would reject every field; at the schema's own
                # level `unevaluatedProperties` sees them, including those of allOf and $ref.
                closed = [extra.pop(k) for k in _CLOSING if k in extra]
                if closed:
                    node["unevaluatedProperties"] = closed[-1]
                if extra:
                    node["allOf"] = [*node.get("allOf", []), extra]
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result


@functools.cache
def _spec(api: str, decisions: bool) -> ResponseSpec:
    return ResponseSpec(api, with_decisions(spec_document(api), decisions), decisions=decisions)


class ResponseSpec:
    def __init__(self, api: str, document: Mapping[str, Any], *, decisions: bool = True) -> None:
        self.api = api
        self.document = document
        self.decisions = decisions
        self._uri = f"urn:spec:{api}:{'decisions' if decisions else 'documents'}"
        self._registry: Registry[Any] = Registry().with_resource(
            self._uri, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.operations: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for template, item in document.get("paths", {}).items():
            for method, op in item.items():
                if isinstance(op, Mapping) and "operationId" in op:
                    self.operations[op["operationId"]] = (f"/paths/{_esc(template)}/{method}", op)

    @classmethod
    def for_api(cls, api: str, decisions: bool = True) -> ResponseSpec:
        """The API's checker, built once per process and mode: with `decisions`, the reference
        server's own choices (`x-reference-only`) are enforced too."""
        return _spec(api, bool(decisions))

    @classmethod
    def from_document(
        cls, api: str, document: Mapping[str, Any], *, decisions: bool = True
    ) -> ResponseSpec:
        """A checker for any OpenAPI document (tests use tiny inline ones)."""
        return cls(api, with_decisions(document, decisions), decisions=decisions)

    def _deref(self, node: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
        pointer = None
        while "$ref" in node:
            pointer = node["$ref"][1:]
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return pointer, node

    def _validator(self, pointer: str) -> Draft202012Validator:
        return _compiled(self, pointer)

    def response_for(self, operation_id: str, status: int) -> tuple[str, Mapping[str, Any]]:
        if operation_id not in self.operations:
            raise KeyError(f"{self.api} spec has no operation {operation_id}")
        pointer, op = self.operations[operation_id]
        responses = op.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", "default"):
            if key in responses:
                ref_pointer, resolved = self._deref(responses[key])
                return ref_pointer or f"{pointer}/responses/{key}", resolved
        raise ConformanceFailure(
            f"status {status} is not documented for {operation_id}",
            f"documented: {', '.join(sorted(responses))}",
        )

    def check(
        self,
        operation_id: str,
        status: int,
        headers: Mapping[str, str],
        body: Any,
        *,
        has_body: bool = True,
    ) -> None:
        """Raise ConformanceFailure unless the response is one the spec allows."""
        pointer, response = self.response_for(operation_id, status)
        for name, header in response.get("headers", {}).items():
            _, header = self._deref(header)
            value = headers.get(name.lower())
            if value is None:
                if header.get("required"):
                    raise ConformanceFailure(
                        f"{operation_id} {status}: required header {name} is missing"
                    )
                continue
            schema_pointer = f"{pointer}/headers/{_esc(name)}/schema"
            if "$ref" in response["headers"][name]:
                schema_pointer = response["headers"][name]["$ref"][1:] + "/schema"
            self._validate(
                schema_pointer, _coerce(value, header.get("schema", {})), f"header {name}"
            )
        content = response.get("content", {})
        if not content:
            return
        # Media types are case-insensitive and parameters (charset=utf-8) do not change them.
        received = (headers.get("content-type") or "").split(";")[0].strip().lower()
        documented = {name.lower(): name for name in content}
        media = documented.get(received)
        if media is None:
            raise ConformanceFailure(
                f"{operation_id} {status}: content type {received or 'missing'} is not documented",
                f"documented: {', '.join(content)}",
            )
        if received == "text/event-stream" or not has_body:
            return
        self._validate(
            f"{pointer}/content/{_esc(media)}/schema", body, f"{operation_id} {status} body"
        )

    def check_event(self, operation_id: str, data: Any) -> None:
        """Validate one event-stream `data:` payload against the operation's `x-sse-data` schema."""
        pointer, response = self.response_for(operation_id, 200)
        media = response.get("content", {}).get("text/event-stream")
        if media is None or "x-sse-data" not in media:
            raise KeyError(f"{operation_id} declares no x-sse-data schema")
        self._validate(
            f"{pointer}/content/text~1event-stream/x-sse-data", data, f"{operation_id} event"
        )

    def _validate(self, pointer: str, value: Any, what: str) -> None:
        error = best_match(self._validator(pointer).iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise ConformanceFailure(
                f"{what} does not match the spec", f"at {where}: {error.message}"
            )


@functools.cache
def _compiled(spec: ResponseSpec, pointer: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"{spec._uri}#{pointer}"},
        registry=spec._registry,
        format_checker=FormatChecker(),
    )


def _esc(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _coerce(raw: str, schema: Mapping[str, Any]) -> Any:
    if schema.get("type") == "integer" and raw.lstrip("-").isdigit():
        return int(raw)
    return raw
