"""The bad-input battery: malformed requests for every operation, generated from its spec.

Each `BadRequest` is one malformation of one operation; `allowed` is what the operation may answer
to it: the error statuses the spec documents for the operation (plus 413 for an oversized body,
which HTTP itself defines). Two flags say whether it must be refused:

- `strict`: the documents make the request invalid, so every conformant target refuses it:
  missing or malformed credentials, an id that names nothing (every path parameter is a
  placeholder), a body the documents require that is missing or lacks its required fields, a bad
  Strait cursor (FACTS.md: "a bad cursor -> 400").
- `refused_by_reference`: the reference server refuses it too, where the documents leave it open
  (an unknown filter value, a non-numeric limit, a malformed `after`): a decision, checked only by
  the battery's reference test.

A request that is neither may be accepted; then only "no 5xx, no hang, the envelope if it is an
error, and no job created" holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = ["BadRequest", "battery"]

HUGE_BYTES = 2 * 1024 * 1024
DEEP = 5_000
# Built once: every operation with a body sends the same two, and encoding 2 MiB per operation
# per test made the battery spend more time building requests than sending them.
HUGE_BODY = json.dumps({"padding": "x" * HUGE_BYTES}).encode()
DEEP_BODY = b"[" * DEEP + b"]" * DEEP
# Sent percent-encoded, as a client would put them into a path.
WEIRD_IDS = ("not%20an%20id%21", "x" * 600, quote("\u202e\u0000id", safe=""), quote("💥", safe=""))
WEIRD_STRINGS = ("\u0000", "\u202e\u200b", "\x1b[31mred", "💥" * 50)


@dataclass(frozen=True)
class BadRequest:
    label: str
    operation_id: str
    method: str
    path: str  # relative to the API's base path, parameters filled in
    params: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None
    auth: str = "valid"  # valid | missing | malformed
    allowed: frozenset[int] = frozenset()
    strict: bool = True  # the documents make it invalid: every target must refuse it
    refused_by_reference: bool = True  # the reference refuses it (a decision where not strict)


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _placeholder(schema: Mapping[str, Any]) -> str:
    """A well-formed value for a path parameter: the battery aims past routing and id checks."""
    if schema.get("format") == "uuid":
        return "00000000-0000-4000-8000-000000000000"
    if "enum" in schema:
        return str(schema["enum"][0])
    return "battery0000000000"


def battery(api: str, document: Mapping[str, Any], auth: Mapping[str, str]) -> Iterator[BadRequest]:
    """Every malformation of every operation of `document`."""
    for template, item in document["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = [_resolve(document, p) for p in [*shared, *op.get("parameters", [])]]
            yield from _for_operation(api, document, template, method.upper(), op, params, auth)


def _for_operation(
    api: str,
    document: Mapping[str, Any],
    template: str,
    method: str,
    op: Mapping[str, Any],
    params: list[Mapping[str, Any]],
    auth: Mapping[str, str],
) -> Iterator[BadRequest]:
    op_id = str(op["operationId"])
    errors = frozenset(
        int(s) for s in op.get("responses", {}) if s.isdigit() and 400 <= int(s) < 500
    )
    path_params = {p["name"]: p for p in params if p["in"] == "path"}
    filled = template
    for name, p in path_params.items():
        filled = filled.replace("{" + name + "}", _placeholder(p.get("schema", {})))
    # Every path parameter is a placeholder naming nothing on the target, so whatever else is
    # wrong with the request, it addresses no resource and must be refused.
    names_nothing = bool(path_params)

    def bad(label: str, *, strict: bool, reference: bool = True, **kw: Any) -> BadRequest:
        return BadRequest(
            label,
            op_id,
            method,
            kw.pop("path", filled),
            allowed=kw.pop("allowed", errors),
            strict=strict or names_nothing,
            refused_by_reference=reference or strict or names_nothing,
            **kw,
        )

    secured = op.get("security", document.get("security")) != []
    if secured:
        yield bad("no credentials", auth="missing", strict=True)
        yield bad("malformed credentials", auth="malformed", strict=True)
    for name in path_params:
        for weird in WEIRD_IDS:
            path = template
            for other, q in path_params.items():
                value = weird if other == name else _placeholder(q.get("schema", {}))
                path = path.replace("{" + other + "}", value)
            yield bad(f"invalid {name} {weird[:12]!r}", path=path, strict=True)
    for p in params:
        if p["in"] != "query":
            continue
        name, schema = str(p["name"]), _resolve(document, p.get("schema", {}))
        kind = schema.get("type")
        if "enum" in schema:
            yield bad(f"unknown {name} value", params=((name, "no-such-value"),), strict=False)
        if kind in ("integer", "number"):
            yield bad(f"{name} not a number", params=((name, "abc"),), strict=False)
        if name == "after" or "pattern" in schema or schema.get("format") in ("date-time", "uuid"):
            # FACTS.md: "limit <= 0 or a bad cursor -> 400" (Strait lists).
            documented = api == "strait" and name == "cursor"
            yield bad(f"{name} malformed", params=((name, "not-an-id\u0001"),), strict=documented)
        yield bad(
            f"{name} control characters",
            params=((name, "\u0000\u001b\u202e"),),
            strict=False,
            reference=False,
        )
        yield bad(f"{name} twice", params=((name, "a"), (name, "b")), strict=False, reference=False)
    body = op.get("requestBody")
    if body is None:
        return
    # A body the documents require: anything that is not a JSON object carrying its required
    # content is invalid. An optional body may be ignored by a target, so malforming it is not.
    required_body = bool(body.get("required"))
    json_headers = {"Content-Type": "application/json"}
    yield bad("malformed JSON", content=b'{"a": ', headers=json_headers, strict=required_body)
    yield bad(
        "wrong content type",
        content=b"hello",
        headers={"Content-Type": "text/plain"},
        strict=required_body,
    )
    yield bad("deeply nested JSON", content=DEEP_BODY, headers=json_headers, strict=required_body)
    yield bad(
        "huge body",
        content=HUGE_BODY,
        headers=json_headers,
        allowed=errors | {413},
        strict=required_body,
    )
    if required_body:
        yield bad("empty body", content=b"", headers=json_headers, strict=True)
    schema = _resolve(
        document, body.get("content", {}).get("application/json", {}).get("schema", {})
    )
    if schema.get("type") == "object":
        wrongs: tuple[Any, ...] = ([], 42, "text", None)
        for wrong in wrongs:
            yield bad(
                f"body is {type(wrong).__name__}",
                content=json.dumps(wrong).encode(),
                headers=json_headers,
                strict=required_body,
            )
        required = set(schema.get("required", []))
        props: Mapping[str, Any] = schema.get("properties", {})
        for name, raw in props.items():
            prop: Mapping[str, Any] = _resolve(document, raw)
            # A body of this one field lacks the other required fields; an id names nothing.
            invalid = required_body and (bool(required - {name}) or name.endswith("_id"))
            if "enum" in prop:
                unknown = {name: "no-such-value"}
                yield bad(
                    f"unknown {name} value",
                    content=json.dumps(unknown).encode(),
                    headers=json_headers,
                    strict=invalid,
                )
            if prop.get("type") == "string" and name in required:
                for weird in WEIRD_STRINGS[:2]:
                    yield bad(
                        f"{name} with control characters",
                        content=json.dumps({name: weird}).encode(),
                        headers=json_headers,
                        strict=invalid,
                    )
