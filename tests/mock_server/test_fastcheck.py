"""The compiled fast check never contradicts jsonschema.

Instances are built from each schema of the documents (mostly valid, then mutated), and for every
one the fast check's answer, when it gives one, must equal jsonschema's verdict. Keyword by keyword
cases pin the corners (bool vs integer, 1.0 as an integer, NaN, enum with non-strings).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from mock_server.fastcheck import compile_check
from mock_server.spec import SPEC_DIR, Spec

SPECS = sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))
SAMPLE_STRINGS = {
    "uuid": "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10",
    "date-time": "2026-01-01T00:00:00Z",
    "email": "a@example.com",
    "uri": "https://example.com/x",
}


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].split("#", 1)[1].lstrip("/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def build(document: Mapping[str, Any], schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value meant to satisfy `schema` (often does, not always: that is fine too)."""
    schema = _resolve(document, schema)
    if not isinstance(schema, Mapping) or depth > 6:
        return rng.choice([None, "x", 1, {}, []])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in schema and rng.random() < 0.7:
            merged = dict(_resolve(document, rng.choice(schema[key])))
            merged.update({k: v for k, v in schema.items() if k not in (key, "not")})
            return build(document, merged, rng, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind is None:
        kind = "object" if "properties" in schema or "required" in schema else None
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        out = {}
        for name, sub in props.items():
            if name in required or rng.random() < 0.5:
                out[name] = build(document, sub, rng, depth + 1)
        for name in required - set(out):
            out[name] = rng.choice(["x", 1, True])
        return out
    if kind == "array":
        return [build(document, schema.get("items", {}), rng, depth + 1) for _ in range(2)]
    if kind == "string":
        fmt = schema.get("format")
        if fmt in SAMPLE_STRINGS:
            return SAMPLE_STRINGS[fmt]
        return "s" * max(1, int(schema.get("minLength", 1)))
    if kind == "integer":
        return int(schema.get("minimum", 0)) + rng.choice([0, 1])
    if kind == "number":
        return float(schema.get("minimum", 0)) + 0.5
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "null":
        return None
    return rng.choice(["x", 1, None])


def mutate(value: Any, rng: random.Random) -> Any:
    """Small changes that a request might carry: a wrong type, a missing or extra key."""
    choice = rng.random()
    if isinstance(value, dict) and value and choice < 0.3:
        out = dict(value)
        key = rng.choice(sorted(out))
        if rng.random() < 0.5:
            del out[key]
        else:
            out[key] = mutate(out[key], rng)
        return out
    if isinstance(value, dict) and choice < 0.45:
        return {**value, "unexpected": 1}
    if isinstance(value, list) and value and choice < 0.5:
        return [mutate(v, rng) for v in value]
    return rng.choice(
        [None, True, 0, 1, -1, 1.0, 2.5, math.nan, "", "x", [], {}, "s" * 300, 10**20, value]
    )


def validators(name: str) -> list[tuple[str, Any, Any]]:
    spec = Spec.load(SPEC_DIR / f"{name}.yaml")
    out = []
    for op in spec.operations.values():
        for p in op.params:
            out.append((f"{op.operation_id}:{p.name}", p.validator, p.fast))
        if op.body is not None:
            out.append((f"{op.operation_id}:body", op.body.validator, op.body.fast))
    return out


@pytest.mark.parametrize("name", SPECS)
def test_every_request_schema_compiles(name: str) -> None:
    missing = [where for where, _, fast in validators(name) if fast is None]
    assert missing == []


@pytest.mark.parametrize("name", SPECS)
def test_the_fast_check_agrees_with_jsonschema(name: str) -> None:
    rng = random.Random(f"fastcheck-{name}")
    document = Spec.load(SPEC_DIR / f"{name}.yaml").document
    answers = {True: 0, False: 0}
    for where, validator, fast in validators(name):
        if fast is None:
            continue
        for _ in range(150):
            value = build(document, validator.schema, rng)
            for candidate in (value, mutate(value, rng), mutate(mutate(value, rng), rng)):
                verdict = fast(candidate)
                if verdict is not None:
                    answers[verdict] += 1
                    assert verdict == validator.is_valid(candidate), (where, candidate)
    assert min(answers.values()) > 1000  # both answers are exercised, not only "invalid"


def check(schema: Any) -> Any:
    compiled = compile_check(schema, {}, FormatChecker())
    assert compiled is not None
    return compiled


def truth(schema: Any, value: Any) -> bool:
    return Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(value)


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "integer"}, True),
        ({"type": "integer"}, 1.0),
        ({"type": "integer"}, 1.5),
        ({"type": "number"}, False),
        ({"type": ["string", "null"]}, None),
        ({"minimum": 1}, math.nan),
        ({"maximum": 1}, math.nan),
        ({"exclusiveMinimum": 1}, 1),
        ({"minimum": 1}, True),
        ({"enum": ["a", "b"]}, "a"),
        ({"enum": ["a", "b"]}, 1),
        ({"const": "a"}, "a"),
        ({"minLength": 2}, "é"),
        ({"pattern": "^a"}, "ba"),
        ({"format": "uuid"}, "not-a-uuid"),
        ({"format": "uuid"}, 5),
        ({"format": "uuid"}, "0B7E1F3A-2C4D-4E5F-8A9B-1C2D3E4F5A10"),
        ({"format": "uuid"}, "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a1"),
        ({"format": "uuid"}, "0b7e1f3a2c4d4e5f8a9b1c2d3e4f5a10"),
        ({"format": "uuid"}, "{0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10}"),
        ({"format": "uuid"}, "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10\n"),
        ({"format": "uuid"}, "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5_10"),
        ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"a": 1, "b": 2}),
        ({"not": {"required": ["a"]}}, {"a": 1}),
        ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}),
        ({"then": {"required": ["b"]}}, {"a": 1}),
        ({"additionalProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}),
        ({"items": {"type": "string"}, "maxItems": 2}, ["a", 1]),
        ({"minProperties": 1}, {}),
    ],
)
def test_keyword_corners(schema: dict[str, Any], value: Any) -> None:
    verdict = check(schema)(value)
    assert verdict is None or verdict == truth(schema, value)


@pytest.mark.parametrize(
    ("schema", "value"),
    [({"enum": [1, "a"]}, 1), ({"const": 1}, True), ({"type": "string"}, ("a",))],
)
def test_no_answer_where_jsonschema_equality_is_subtle(schema: dict[str, Any], value: Any) -> None:
    assert check(schema)(value) is None


@pytest.mark.parametrize(
    "schema",
    [
        {"uniqueItems": True},
        {"patternProperties": {"a": {}}},
        {"$ref": "https://x/y"},
        {"$id": "x"},
    ],
)
def test_an_unhandled_keyword_leaves_the_schema_to_jsonschema(schema: dict[str, Any]) -> None:
    assert compile_check(schema, {}, FormatChecker()) is None


def test_recursive_references_compile() -> None:
    document = {"node": {"type": "object", "properties": {"child": {"$ref": "#/node"}}}}
    compiled = compile_check({"$ref": "#/node"}, document, None)
    assert compiled is not None
    assert compiled({"child": {"child": {}}}) is True
    assert compiled({"child": {"child": 1}}) is False
