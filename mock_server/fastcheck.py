"""A JSON Schema compiled once into plain Python checks, to answer "valid?" fast.

jsonschema stays the judge of every error: `Operation.validate` asks this check first and only
skips jsonschema when the answer is a certain yes. A check answers True (certainly valid), False
(certainly invalid) or None (cannot tell: a value of a non-JSON type, an integer-only enum, ...),
and `compile_check` returns no check at all for a schema that uses a keyword it does not handle, so
the schema is always judged by jsonschema alone. Every keyword handled here mirrors
`jsonschema._keywords` (Draft 2020-12) exactly; `tests/mock_server/test_fastcheck.py` compares the
two on every schema of the documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jsonschema import FormatChecker

Check = Callable[[Any], bool | None]

# Keywords that never fail an instance (annotations, containers of definitions, OpenAPI and x-*).
_ANNOTATIONS = frozenset(
    {
        "$comment",
        "$defs",
        "contentEncoding",
        "contentMediaType",
        "default",
        "deprecated",
        "description",
        "discriminator",
        "example",
        "examples",
        "externalDocs",
        "readOnly",
        "title",
        "writeOnly",
        "xml",
    }
)

# The JSON kinds of the Python types json.loads and the parameter coercion produce. A value of any
# other type (a subclass, a Decimal, a tuple) gets no answer.
_KIND: Mapping[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


# Spellings every value of a format in this form passes: jsonschema's "uuid" parses with UUID()
# and wants "-" at 8, 13, 18 and 23, which 8-4-4-4-12 hex digits always satisfy.
_HEX = "[0-9a-fA-F]"
_CANONICAL: Mapping[str, re.Pattern[str]] = {
    "uuid": re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"),
}


class Unsupported(Exception):
    pass


def compile_check(
    schema: Any, document: Mapping[str, Any], format_checker: FormatChecker | None
) -> Check | None:
    """A check for `schema`, whose references ("#/..." or "<uri>#/...") point into `document`;
    None when the schema uses something this module does not handle."""
    try:
        return _Compiler(document, format_checker).schema(schema)
    except Unsupported:
        return None


class _Compiler:
    def __init__(self, document: Mapping[str, Any], format_checker: FormatChecker | None) -> None:
        self.document = document
        self.format_checker = format_checker
        self.refs: dict[str, Check] = {}

    def schema(self, node: Any) -> Check:
        if node is True:
            return _always(True)
        if node is False:
            return _always(False)
        if not isinstance(node, Mapping):
            raise Unsupported("a schema must be an object or a boolean")
        checks = []
        for key, value in node.items():
            if key in _ANNOTATIONS or key.startswith("x-"):
                continue
            if key in ("then", "else"):
                continue  # read with "if"
            build = getattr(self, "kw_" + key.lstrip("$"), None)
            if build is None:
                raise Unsupported(key)
            checks.append(build(value, node))
        return _all(checks)

    # -- references ------------------------------------------------------------------------------

    def kw_ref(self, ref: Any, _: Mapping[str, Any]) -> Check:
        if not isinstance(ref, str) or "#" not in ref:
            raise Unsupported("$ref")
        pointer = ref.split("#", 1)[1]
        if pointer not in self.refs:
            # Compiled on first use; a recursive reference finds itself through `self.refs`.
            compiled: list[Check] = []
            self.refs[pointer] = lambda x: compiled[0](x)
            compiled.append(self.schema(_resolve(self.document, pointer)))
        return self.refs[pointer]

    # -- type, values ----------------------------------------------------------------------------

    def kw_type(self, types: Any, _: Mapping[str, Any]) -> Check:
        wanted = frozenset([types] if isinstance(types, str) else types)
        if not wanted <= {"object", "array", "string", "integer", "number", "boolean", "null"}:
            raise Unsupported("type")

        def check(x: Any) -> bool | None:
            kind = _KIND.get(type(x))
            if kind is None:
                return None
            if kind in wanted:
                return True
            if kind == "integer":
                return "number" in wanted
            # Since draft 6 a float with no fractional part is an integer too.
            return kind == "number" and "integer" in wanted and x.is_integer()

        return check

    def kw_enum(self, values: Any, _: Mapping[str, Any]) -> Check:
        if not isinstance(values, list):
            raise Unsupported("enum")
        return _equal_any(values)

    def kw_const(self, value: Any, _: Mapping[str, Any]) -> Check:
        return _equal_any([value])

    def kw_format(self, name: Any, _: Mapping[str, Any]) -> Check:
        checker = self.format_checker
        if checker is None:
            return _always(True)
        canonical = _CANONICAL.get(name) if name in checker.checkers else None

        def check(x: Any) -> bool | None:
            # The canonical spelling is a subset of what the checker accepts, and by far the most
            # common; anything else is left to the checker itself.
            if canonical is not None and type(x) is str and canonical.fullmatch(x):
                return True
            return checker.conforms(x, name)

        return check

    # -- strings ---------------------------------------------------------------------------------

    def kw_minLength(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return lambda x: not isinstance(x, str) or len(x) >= limit

    def kw_maxLength(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return lambda x: not isinstance(x, str) or len(x) <= limit

    def kw_pattern(self, pattern: Any, _: Mapping[str, Any]) -> Check:
        # jsonschema calls re.search with the pattern text; re's own cache compiles it once.
        return lambda x: not isinstance(x, str) or re.search(pattern, x) is not None

    # -- numbers ---------------------------------------------------------------------------------

    # Written as jsonschema's failure tests, negated, so that even NaN is judged the same way.
    def kw_minimum(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return _number(lambda x: not x < limit)

    def kw_maximum(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return _number(lambda x: not x > limit)

    def kw_exclusiveMinimum(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return _number(lambda x: not x <= limit)

    def kw_exclusiveMaximum(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return _number(lambda x: not x >= limit)

    # -- objects ---------------------------------------------------------------------------------

    def kw_required(self, names: Any, _: Mapping[str, Any]) -> Check:
        wanted = tuple(names)
        if len(wanted) == 1:
            name = wanted[0]
            return lambda x: not isinstance(x, dict) or name in x
        try:
            # One set comparison instead of a generator per check: this runs on every body.
            keys = frozenset(wanted)
        except TypeError:
            return lambda x: not isinstance(x, dict) or all(n in x for n in wanted)
        return lambda x: not isinstance(x, dict) or x.keys() >= keys

    def kw_properties(self, properties: Any, _: Mapping[str, Any]) -> Check:
        compiled = tuple((name, self.schema(sub)) for name, sub in properties.items())

        def check(x: Any) -> bool | None:
            if not isinstance(x, dict):
                return True
            result: bool | None = True
            for name, sub in compiled:
                if name in x:
                    r = sub(x[name])
                    if r is False:
                        return False
                    if r is None:
                        result = None
            return result

        return check

    def kw_additionalProperties(self, extra: Any, schema: Mapping[str, Any]) -> Check:
        if "patternProperties" in schema:
            raise Unsupported("additionalProperties with patternProperties")
        known = frozenset(schema.get("properties", {}))
        sub = self.schema(extra)

        def check(x: Any) -> bool | None:
            if not isinstance(x, dict):
                return True
            result: bool | None = True
            for key, value in x.items():
                if key not in known:
                    r = sub(value)
                    if r is False:
                        return False
                    if r is None:
                        result = None
            return result

        return check

    def kw_minProperties(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return lambda x: not isinstance(x, dict) or len(x) >= limit

    def kw_maxProperties(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return lambda x: not isinstance(x, dict) or len(x) <= limit

    # -- arrays ----------------------------------------------------------------------------------

    def kw_items(self, items: Any, schema: Mapping[str, Any]) -> Check:
        if "prefixItems" in schema:
            raise Unsupported("items with prefixItems")
        sub = self.schema(items)

        def check(x: Any) -> bool | None:
            if not isinstance(x, list):
                return True
            result: bool | None = True
            for item in x:
                r = sub(item)
                if r is False:
                    return False
                if r is None:
                    result = None
            return result

        return check

    def kw_minItems(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return lambda x: not isinstance(x, list) or len(x) >= limit

    def kw_maxItems(self, limit: Any, _: Mapping[str, Any]) -> Check:
        return lambda x: not isinstance(x, list) or len(x) <= limit

    # -- combinations ----------------------------------------------------------------------------

    def kw_allOf(self, schemas: Any, _: Mapping[str, Any]) -> Check:
        return _all([self.schema(s) for s in schemas])

    def kw_anyOf(self, schemas: Any, _: Mapping[str, Any]) -> Check:
        compiled = [self.schema(s) for s in schemas]

        def check(x: Any) -> bool | None:
            results = [c(x) for c in compiled]
            if True in results:
                return True
            return None if None in results else False

        return check

    def kw_oneOf(self, schemas: Any, _: Mapping[str, Any]) -> Check:
        compiled = [self.schema(s) for s in schemas]

        def check(x: Any) -> bool | None:
            results = [c(x) for c in compiled]
            valid = results.count(True)
            if valid > 1:
                return False
            if None in results:
                return None
            return valid == 1

        return check

    def kw_not(self, schema: Any, _: Mapping[str, Any]) -> Check:
        sub = self.schema(schema)

        def check(x: Any) -> bool | None:
            r = sub(x)
            return None if r is None else not r

        return check

    def kw_if(self, condition: Any, schema: Mapping[str, Any]) -> Check:
        test = self.schema(condition)
        then = self.schema(schema.get("then", True))
        otherwise = self.schema(schema.get("else", True))

        def check(x: Any) -> bool | None:
            r = test(x)
            if r is None:
                return None
            return then(x) if r else otherwise(x)

        return check


def _always(value: bool) -> Check:
    return lambda _: value


def _all(checks: Sequence[Check]) -> Check:
    if not checks:
        return _always(True)
    if len(checks) == 1:
        return checks[0]
    fixed = tuple(checks)

    def check(x: Any) -> bool | None:
        result: bool | None = True
        for c in fixed:
            r = c(x)
            if r is False:
                return False
            if r is None:
                result = None
        return result

    return check


def _number(compare: Callable[[Any], bool]) -> Check:
    """A numeric keyword: it applies to ints and floats (never to bools); others pass."""

    def check(x: Any) -> bool | None:
        kind = _KIND.get(type(x))
        if kind is None:
            return None
        if kind in ("integer", "number"):
            return compare(x)
        return True

    return check


def _equal_any(values: Sequence[Any]) -> Check:
    """enum / const. jsonschema's `equal` compares a string with anything by ==, so a string
    instance is judged exactly against the string values; another JSON value equals none of them
    when every value is a string, and gets no answer otherwise."""
    strings = frozenset(v for v in values if isinstance(v, str))
    only_strings = all(isinstance(v, str) for v in values)

    def check(x: Any) -> bool | None:
        if type(x) is str:
            return x in strings  # a string never equals a value that is not one
        return False if only_strings and _KIND.get(type(x)) is not None else None

    return check


def _resolve(document: Mapping[str, Any], pointer: str) -> Any:
    node: Any = document
    for part in pointer.lstrip("/").split("/") if pointer else ():
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(key)]
        elif isinstance(node, Mapping) and key in node:
            node = node[key]
        else:
            raise Unsupported(f"unresolvable reference #{pointer}")
    return node
