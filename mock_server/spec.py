"""The OpenAPI documents as the server's routing and validation tables.

`Spec.load` reads one document once at start-up and compiles, per operation, a matcher for its
path and JSON Schema validators for its parameters and body. `Spec.match` finds the operation for
a request and `Operation.validate` turns the raw request into typed values or a `RequestInvalid`
that names the offending field, which each API renders in its own envelope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .errors import MethodNotAllowed, RequestInvalid, RouteNotFound
from .fastcheck import Check, compile_check

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
_BASE_URI = "urn:spec:"

Location = Literal["path", "query", "header", "body"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Param:
    name: str
    location: Location
    required: bool
    schema: Mapping[str, Any]
    validator: Draft202012Validator
    fast: Check | None = None  # answers "valid?" without jsonschema when it can
    # Declared with `content: {application/json: ...}` instead of `schema`: the wire string is a
    # JSON text, and the schema describes the value it decodes to.
    json_content: bool = False

    def coerce(self, raw: str) -> Any:
        """Turn the wire string into the declared type; a mismatch is a validation error."""
        if self.json_content:
            try:
                return _BODY_DECODER.decode(raw)
            except ValueError:
                raise RequestInvalid(self.location, self.name, f"{self.name} is not JSON") from None
            except RecursionError:
                raise RequestInvalid(
                    self.location, self.name, f"{self.name} is nested too deeply"
                ) from None
        kind = self.schema.get("type")
        if kind == "integer":
            # A 64-bit integer at most (OpenAPI's int64): the bound also keeps int() far from its
            # digit limit on hostile input.
            if not re.fullmatch(r"-?[0-9]{1,19}", raw) or not INT64_MIN <= int(raw) <= INT64_MAX:
                raise RequestInvalid(self.location, self.name, f"{self.name} must be an integer")
            return int(raw)
        if kind == "number":
            # float() alone would also take " 1", "1_000" and "nan", which are not JSON numbers.
            if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", raw):
                raise RequestInvalid(self.location, self.name, f"{self.name} must be a number")
            value = float(raw)
            if value != value or value in (float("inf"), float("-inf")):
                raise RequestInvalid(self.location, self.name, f"{self.name} must be finite")
            return value
        if kind == "boolean":
            if raw not in ("true", "false"):
                raise RequestInvalid(self.location, self.name, f"{self.name} must be true or false")
            return raw == "true"
        return raw


@dataclass(frozen=True)
class Body:
    required: bool
    media_types: tuple[str, ...]
    validator: Draft202012Validator
    fast: Check | None = None


@dataclass
class ValidRequest:
    """A request that passed the spec: parameters typed, body parsed and schema-valid."""

    operation: Operation
    path: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    body: Any = None


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    params: tuple[Param, ...]
    body: Body | None
    secured: bool
    streams: bool
    raw: Mapping[str, Any]

    def validate(
        self,
        path_values: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        content_type: str | None,
        raw_body: bytes,
        *,
        max_body_bytes: int,
    ) -> ValidRequest:
        out = ValidRequest(self)
        grouped: dict[str, list[str]] = {}
        for key, value in query:
            grouped.setdefault(key, []).append(value)
        for param in self.params:
            raw: str | None
            if param.location == "path":
                raw = path_values.get(param.name)
            elif param.location == "query":
                values = grouped.get(param.name, [])
                if len(values) > 1:
                    raise RequestInvalid(
                        "query", param.name, f"query parameter {param.name} is given more than once"
                    )
                raw = values[0] if values else None
            else:
                raw = headers.get(param.name.lower())
            if raw is None:
                if param.required:
                    raise RequestInvalid(
                        param.location,
                        param.name,
                        f"{param.location} parameter {param.name} is required",
                    )
                if "default" in param.schema:
                    self._target(out, param.location)[param.name] = param.schema["default"]
                continue
            value = param.coerce(raw)
            error = _first_error(param.validator, value, param.fast)
            if error is not None:
                raise RequestInvalid(param.location, param.name, f"{param.name}: {error.message}")
            self._target(out, param.location)[param.name] = value
        if self.body is not None:
            out.body = self._parse_body(content_type, raw_body, max_body_bytes)
        return out

    @staticmethod
    def _target(out: ValidRequest, location: Location) -> dict[str, Any]:
        return {"path": out.path, "query": out.query, "header": out.headers}[location]

    def _parse_body(self, content_type: str | None, raw: bytes, max_bytes: int) -> Any:
        assert self.body is not None
        if len(raw) > max_bytes:
            raise RequestInvalid("body", "", f"request body is larger than {max_bytes} bytes")
        if not raw.strip():
            if self.body.required:
                raise RequestInvalid("body", "", "a JSON request body is required")
            return None
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media not in self.body.media_types:
            raise RequestInvalid(
                "body",
                "",
                f"Content-Type must be {' or '.join(self.body.media_types)}, "
                f"not {media or 'missing'}",
            )
        try:
            value = _BODY_DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
        except ValueError as exc:
            # Also covers UnicodeDecodeError and int()'s digit limit on a huge integer literal.
            raise RequestInvalid("body", "", f"request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise RequestInvalid("body", "", "request body is nested too deeply") from None
        # Only a \u escape makes a lone surrogate out of ASCII bytes: most bodies skip the walk.
        if not (raw.isascii() and b"\\u" not in raw) and _has_lone_surrogate(value):
            raise RequestInvalid("body", "", "request body holds a lone UTF-16 surrogate escape")
        try:
            error = _first_error(self.body.validator, value, self.body.fast)
        except RecursionError:
            raise RequestInvalid("body", "", "request body is nested too deeply") from None
        if error is not None:
            name = _field_of(error)
            raise RequestInvalid("body", name, _message(error, name or "body"))
        return value


def _has_lone_surrogate(value: Any) -> bool:
    """JSON may escape half a surrogate pair ("\\ud800"); Python keeps it, and any later attempt
    to encode it as UTF-8 (rendering a response, an event) fails, so it is refused up front."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and +-Infinity, which are not JSON; stored, they break JSON rendering.
    raise ValueError(f"{name} is not a JSON value")


# What json.loads(raw, parse_constant=_reject_constant) does, but with one decoder: json.loads
# builds a new JSONDecoder on every call that passes an option.
_BODY_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _first_error(
    validator: Draft202012Validator, value: Any, fast: Check | None = None
) -> ValidationError | None:
    if fast is not None:
        # A certain "valid" skips jsonschema; anything else lets it find (and word) the error.
        try:
            if fast(value) is True:
                return None
        except RecursionError:
            pass
    error: ValidationError | None = best_match(validator.iter_errors(value))
    return error


def _message(error: ValidationError, name: str) -> str:
    if error.validator in ("not", "oneOf", "anyOf"):
        # jsonschema's own text here repeats the whole instance and subschema; the schema's
        # description says what shape was expected instead.
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        described = schema.get("description")
        return f"{name} does not match any allowed shape" + (f": {described}" if described else "")
    # jsonschema repeats the offending value, which may be most of a 1 MiB body.
    text = error.message if len(error.message) <= 300 else error.message[:300] + "…"
    return f"{name}: {text}"


def _field_of(error: ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.instance, dict):
        wanted = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [p for p in wanted if p not in error.instance]
        if missing:
            parts.append(str(missing[0]))
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        extra = sorted(set(error.instance) - allowed)
        if extra:
            parts.append(extra[0])
    return ".".join(parts)


@dataclass(frozen=True)
class Route:
    template: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    operations: Mapping[str, Operation]


class Spec:
    def __init__(
        self,
        name: str,
        document: Mapping[str, Any],
        routes: Sequence[Route],
        *,
        text: str | None = None,
    ) -> None:
        self.name = name
        self.document = document
        # The YAML source as written (comments, order, block styles): what <prefix>/openapi.yaml
        # serves, so readers see the file itself rather than a re-dump of the parsed document.
        self.text = text
        self.routes = tuple(routes)
        # A template's parameters never match a "/", so only routes with as many slashes as the
        # path can match it: trying just those (in the same order) gives the same answer without
        # running every route's regex on every request.
        by_slashes: dict[int, list[Route]] = {}
        for route in self.routes:
            by_slashes.setdefault(route.template.count("/"), []).append(route)
        self._by_slashes = {n: tuple(rs) for n, rs in by_slashes.items()}
        self.operations: dict[str, Operation] = {
            op.operation_id: op for r in routes for op in r.operations.values()
        }

    @classmethod
    def load(cls, path: Path) -> Spec:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
        uri = _BASE_URI + path.stem
        registry: Registry[Any] = Registry().with_resource(
            uri, Resource.from_contents(document, default_specification=DRAFT202012)
        )
        routes = []
        for template, item in document.get("paths", {}).items():
            shared = item.get("parameters", [])
            ops = {}
            for method in HTTP_METHODS:
                raw = item.get(method)
                if raw is None:
                    continue
                pointer = f"/paths/{_escape(template)}/{method}"
                ops[method.upper()] = _compile(
                    document, registry, uri, template, method.upper(), raw, shared, pointer
                )
            pattern, names = _path_regex(template)
            routes.append(Route(template, pattern, names, ops))
        # Literal segments beat parameters at each position (/v1/runs/dlq before /v1/runs/{id}).
        routes.sort(key=lambda r: [s.startswith("{") for s in r.template.split("/")])
        return cls(path.stem, document, routes, text=text)

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        """The most specific path that matches decides (OpenAPI: concrete paths before
        templated ones); a method it lacks is refused rather than tried on a looser path, so
        DELETE /v1/runs/dlq never becomes a delete of the run "dlq"."""
        for route in self._by_slashes.get(path.count("/"), ()):
            m = route.pattern.fullmatch(path)
            if m is None:
                continue
            op = route.operations.get(method)
            if op is None and method == "HEAD":
                op = route.operations.get("GET")
            if op is None:
                raise MethodNotAllowed(method, path, tuple(sorted(route.operations)))
            return op, m.groupdict()
        raise RouteNotFound(method, path)


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _path_regex(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    names: list[str] = []
    out = []
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            names.append(name)
            out.append(f"(?P<{_group(name)}>[^/]+)")
        else:
            out.append(re.escape(piece))
    return re.compile("".join(out)), tuple(names)


def _group(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"path parameter {name!r} is not a valid identifier")
    return name


def _deref(document: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref}")
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _validator(registry: Registry[Any], uri: str, pointer: str) -> Draft202012Validator:
    """A validator compiled on the schema at `pointer` itself, not on {"$ref": "<uri>#<pointer>"}:
    the same checks and errors, without resolving that reference again on every request (which
    took most of the validation time). Its own local references are made absolute, so they still
    resolve in the whole document."""
    schema = _absolute_refs(_schema_at(registry.contents(uri), pointer), uri)
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


# Keywords whose values are data, not schemas: a "$ref" inside them is not a reference.
_DATA_KEYWORDS = frozenset({"const", "default", "enum", "example", "examples"})


def _schema_at(document: Any, pointer: str) -> Any:
    """The node at a JSON pointer; a node that is nothing but a local $ref is followed."""
    node = document
    for part in pointer.lstrip("/").split("/") if pointer else ():
        key = part.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    while isinstance(node, Mapping) and set(node) == {"$ref"} and node["$ref"].startswith("#"):
        node = _schema_at(document, node["$ref"][1:])
    return node


def _absolute_refs(node: Any, uri: str) -> Any:
    """A copy of a schema whose local references ("#/...") name the document (`uri#/...`)."""
    if isinstance(node, Mapping):
        return {
            key: (
                value
                if key in _DATA_KEYWORDS
                else uri + value
                if key == "$ref" and isinstance(value, str) and value.startswith("#")
                else _absolute_refs(value, uri)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(value, uri) for value in node]
    return node


def _compile(
    document: Mapping[str, Any],
    registry: Registry[Any],
    uri: str,
    template: str,
    method: str,
    raw: Mapping[str, Any],
    shared: Sequence[Mapping[str, Any]],
    pointer: str,
) -> Operation:
    op_id = raw.get("operationId")
    if not op_id:
        raise ValueError(f"{method} {template} has no operationId")
    params: dict[tuple[str, str], Param] = {}
    for source, base in (
        (shared, f"/paths/{_escape(template)}/parameters"),
        (raw.get("parameters", []), f"{pointer}/parameters"),
    ):
        for index, ref_or_param in enumerate(source):
            param = _deref(document, ref_or_param)
            location = param["in"]
            if location == "cookie":
                continue
            where = ref_or_param["$ref"][1:] if "$ref" in ref_or_param else f"{base}/{index}"
            media = _json_content(op_id, param)
            if media is None:
                schema = param.get("schema", {})
                schema_pointer = f"{where}/schema"
            else:
                schema = param["content"][media].get("schema", {})
                schema_pointer = f"{where}/content/{_escape(media)}/schema"
            validator = _validator(registry, uri, schema_pointer)
            params[(location, param["name"])] = Param(
                name=param["name"],
                location=location,
                required=bool(param.get("required", location == "path")),
                schema=_deref(document, schema),
                validator=validator,
                fast=compile_check(validator.schema, document, validator.format_checker),
                json_content=media is not None,
            )
    body = None
    if "requestBody" in raw:
        request_body = _deref(document, raw["requestBody"])
        content = request_body.get("content", {})
        media_types = tuple(m.lower() for m in content)
        json_types = [m for m in media_types if m == "application/json" or m.endswith("+json")]
        if not json_types:
            raise ValueError(f"{op_id}: only JSON request bodies are supported")
        body_pointer = (
            raw["requestBody"]["$ref"][1:]
            if "$ref" in raw["requestBody"]
            else f"{pointer}/requestBody"
        )
        validator = _validator(
            registry, uri, f"{body_pointer}/content/{_escape(json_types[0])}/schema"
        )
        body = Body(
            required=bool(request_body.get("required", False)),
            media_types=tuple(json_types),
            validator=validator,
            fast=compile_check(validator.schema, document, validator.format_checker),
        )
    security = raw.get("security", document.get("security", []))
    streams = any(
        "text/event-stream" in _deref(document, resp).get("content", {})
        for resp in raw.get("responses", {}).values()
    )
    return Operation(
        operation_id=op_id,
        method=method,
        template=template,
        params=tuple(params.values()),
        body=body,
        secured=bool(security),
        streams=streams,
        raw=raw,
    )


def _json_content(op_id: str, param: Mapping[str, Any]) -> str | None:
    """The media type of a parameter declared with `content` (only JSON is supported), or None
    for one declared with `schema`."""
    content = param.get("content")
    if content is None:
        return None
    media = [m for m in content if m.lower() == "application/json"]
    if len(content) != 1 or not media:
        raise ValueError(f"{op_id}: parameter {param['name']} needs one application/json content")
    return str(media[0])


def load_specs(names: Sequence[str], directory: Path = SPEC_DIR) -> dict[str, Spec]:
    return {name: Spec.load(directory / f"{name}.yaml") for name in names}
