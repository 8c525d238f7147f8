"""Every OpenAPI document in openapi/: valid, following openapi/README.md's conventions, and with
every example valid against the schema it illustrates.

Conventions checked mechanically, per operation:
- `operationId` in lowerCamelCase, unique within the document;
- a non-empty `description`;
- `x-source` naming a file in ../shared/seeds/ (when that folder is there);
- a documented 400 and 401 response, unless the operation says why not: `security: []` (nothing to
  authenticate, so no 401), or `x-omitted-responses: {"400": "<reason>"}`;
and, anywhere in the document, no `nullable` keyword (3.1 uses `type: [..., "null"]`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import openapi_spec_validator
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = REPO / "openapi"
SEEDS_DIR = REPO.parent / "shared" / "seeds"
DOCUMENTS = sorted(SPEC_DIR.glob("*.yaml"))
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
LOWER_CAMEL = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*")
# Keys whose values are example data or free text, never OpenAPI/JSON Schema structure.
OPAQUE = {"example", "examples", "default", "const", "enum", "description", "x-decision"}


@cache
def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def operations(document: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for template, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {template}", item[method]


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and "$ref" in node:
        ref = str(node["$ref"])
        assert ref.startswith("#/"), f"only local $refs: {ref}"
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def walk(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, node) of the document's structure, example data excluded."""
    yield pointer, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key not in OPAQUE:
                yield from walk(value, f"{pointer}/{escape(str(key))}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{pointer}/{index}")


def test_there_are_documents() -> None:
    assert DOCUMENTS, "openapi/ holds no *.yaml"
    assert SPEC_DIR / "auvy.yaml" in DOCUMENTS


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_the_document_is_valid_openapi_3_1(path: Path) -> None:
    document = load(path)
    assert document["openapi"] == "3.1.0"
    openapi_spec_validator.validate(document)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML lets a later key silently replace an earlier one; in a spec that hides an edit."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            assert key not in seen, f"duplicate key {key!r} at {key_node.start_mark}"
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_no_mapping_repeats_a_key(path: Path) -> None:
    yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_operation_ids_are_lower_camel_case_and_unique(path: Path) -> None:
    seen: dict[str, str] = {}
    for where, op in operations(load(path)):
        op_id = op.get("operationId")
        assert isinstance(op_id, str), f"{where} has no operationId"
        assert LOWER_CAMEL.fullmatch(op_id), f"{where}: {op_id} is not lowerCamelCase"
        assert op_id not in seen, f"{op_id} is used by {seen[op_id]} and {where}"
        seen[op_id] = where


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_operation_has_a_description_and_a_source(path: Path) -> None:
    problems = []
    for where, op in operations(load(path)):
        description = op.get("description")
        if not isinstance(description, str) or not description.strip():
            problems.append(f"{where}: no description")
        source = op.get("x-source")
        if not isinstance(source, str) or not source.strip():
            problems.append(f"{where}: no x-source")
        elif source == "FACTS.md":
            continue  # the documented fallback source (openapi/README.md)
        elif SEEDS_DIR.is_dir() and not (SEEDS_DIR / source).is_file():
            problems.append(f"{where}: x-source {source} is not a file of {SEEDS_DIR}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_operation_documents_400_and_401_or_says_why_not(path: Path) -> None:
    document = load(path)
    problems = []
    for where, op in operations(document):
        responses = op.get("responses", {})
        omitted = op.get("x-omitted-responses", {})
        assert isinstance(omitted, Mapping), f"{where}: x-omitted-responses must be a map"
        for status, reason in omitted.items():
            assert isinstance(reason, str) and reason.strip(), f"{where}: empty reason for {status}"
        unauthenticated = op.get("security", document.get("security")) in (None, [])
        if "400" not in responses and "400" not in omitted:
            problems.append(f"{where} ({op.get('operationId')}): no 400 response and no reason")
        if "401" not in responses and "401" not in omitted and not unauthenticated:
            problems.append(f"{where} ({op.get('operationId')}): no 401 response and no reason")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_nothing_uses_nullable(path: Path) -> None:
    found = [p for p, node in walk(load(path)) if isinstance(node, Mapping) and "nullable" in node]
    assert not found, f"`nullable` at {found}; use type: [..., 'null']"


# --- examples --------------------------------------------------------------------------------


def schema_validator(path: Path, pointer: str) -> Draft202012Validator:
    return _validator(path, pointer)


@cache
def _registry(path: Path) -> Registry[Any]:
    resource = Resource.from_contents(load(path), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(f"urn:doc:{path.stem}", resource)
    return registry


@cache
def _validator(path: Path, pointer: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"urn:doc:{path.stem}#{pointer}"},
        registry=_registry(path),
        format_checker=FormatChecker(),
    )


SCHEMA_WORDS = {"type", "$ref", "properties", "items", "enum", "const", "allOf", "oneOf", "anyOf"}


def examples_of(path: Path) -> Iterator[tuple[str, str, Any]]:
    """(where, schema pointer, example value) for every example in the document."""
    document = load(path)
    for pointer, node in walk(document):
        if not isinstance(node, Mapping):
            continue
        # A media type, parameter or header: examples illustrate its `schema`.
        if "schema" in node:
            target = f"{pointer}/schema"
            if "example" in node:
                yield f"{pointer}/example", target, node["example"]
            examples = node.get("examples", {})
            if isinstance(examples, Mapping):
                for name, example in examples.items():
                    example = resolve(document, example)
                    if "value" not in example:
                        continue
                    if pointer.endswith("/text~1event-stream"):
                        # An event stream's schema describes one event, as OpenAPI 3.2's
                        # itemSchema does: the example text is checked event by event.
                        for event in parse_events(str(example["value"])):
                            yield f"{pointer}/examples/{name}", target, event
                    else:
                        yield f"{pointer}/examples/{name}", target, example["value"]
        # A schema: 3.1's `examples` list (and the older single `example`) illustrate itself.
        elif SCHEMA_WORDS & set(node):
            if isinstance(node.get("examples"), list):
                for index, value in enumerate(node["examples"]):
                    yield f"{pointer}/examples/{index}", pointer, value
            if "example" in node:
                yield f"{pointer}/example", pointer, node["example"]


def parse_events(text: str) -> list[dict[str, str]]:
    """Events of an event-stream text as the HTML standard's parser sees them: blank lines end an
    event, comments are skipped, and an event without data is not dispatched."""
    events: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in [*text.splitlines(), ""]:
        if not line:
            if data:
                events.append({**fields, "data": "\n".join(data)})
            fields, data = {}, []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
    return events


def sse_examples_of(path: Path) -> Iterator[tuple[str, str, Any]]:
    """(where, x-sse-data pointer, data JSON) for every `data:` line of event-stream examples."""
    document = load(path)
    for pointer, node in walk(document):
        if not (isinstance(node, Mapping) and pointer.endswith("/text~1event-stream")):
            continue
        if "x-sse-data" not in node:
            continue
        for name, example in node.get("examples", {}).items():
            value = resolve(document, example).get("value", "")
            for line in str(value).splitlines():
                if line.startswith("data:"):
                    data = json.loads(line[len("data:") :].strip())
                    yield f"{pointer}/examples/{name}", f"{pointer}/x-sse-data", data


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_example_is_valid_against_its_schema(path: Path) -> None:
    found = list(examples_of(path)) + list(sse_examples_of(path))
    assert found, f"{path.name} has no examples"
    problems = []
    for where, schema, value in found:
        errors = list(schema_validator(path, schema).iter_errors(value))
        if errors:
            problems.append(f"{where}: {'; '.join(e.message for e in errors)[:300]}")
    assert not problems, "\n".join(problems)


def test_the_example_finder_sees_every_kind_of_example() -> None:
    path = SPEC_DIR / "auvy.yaml"
    where = [w for w, _, _ in examples_of(path)]
    assert any("/requestBody/content/application~1json/examples/" in w for w in where)
    assert any("/components/responses/" in w for w in where)
    assert any(w.startswith("/components/schemas/") for w in where)
    assert any("/parameters/" in w and w.endswith("/example") for w in where)
    assert list(sse_examples_of(path))


def test_a_bad_example_would_be_caught(tmp_path: Path) -> None:
    doc = tmp_path / "bad.yaml"
    doc.write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n"
        "    N:\n      type: integer\n      examples: [1, 'two']\n"
    )
    found = list(examples_of(doc))
    assert [v for _, _, v in found] == [1, "two"]
    assert [bool(list(schema_validator(doc, s).iter_errors(v))) for _, s, v in found] == [
        False,
        True,
    ]
