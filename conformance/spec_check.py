"""Checks responses against the OpenAPI documents: the status is documented, required headers are
there, and the body (or each event-stream `data:`) matches the declared schema.

The same documents drive the reference server; here they are the yardstick for any target.
"""

from __future__ import annotations

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


class ResponseSpec:
    def __init__(self, api: str, document: Mapping[str, Any]) -> None:
        self.api = api
        self.document = document
        self._uri = f"urn:spec:{api}"
        self._registry: Registry[Any] = Registry().with_resource(
            self._uri, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        self.operations: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for template, item in document.get("paths", {}).items():
            for method, op in item.items():
                if isinstance(op, Mapping) and "operationId" in op:
                    self.operations[op["operationId"]] = (f"/paths/{_esc(template)}/{method}", op)

    @classmethod
    @functools.cache
    def for_api(cls, api: str) -> ResponseSpec:
        return cls(api, spec_document(api))

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
        media = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if media not in content:
            raise ConformanceFailure(
                f"{operation_id} {status}: content type {media or 'missing'} is not documented",
                f"documented: {', '.join(content)}",
            )
        if media == "text/event-stream" or not has_body:
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
