"""Which API and documented operation a request is: the OpenAPI documents' path templates below
each API's base path (the target profile's `<api>.base_path`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conformance.spec_check import spec_document

_PARAM = re.compile(r"\{([^}/]+)\}")


@dataclass(frozen=True, slots=True)
class Route:
    api: str
    operation_id: str
    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Template:
    api: str
    method: str
    operation_id: str
    pattern: re.Pattern[str]
    literal_segments: int


class Router:
    def __init__(self, base_paths: Mapping[str, str]) -> None:
        """`base_paths`: api -> prefix ("" for an API served at the root)."""
        templates: list[_Template] = []
        for api, base in base_paths.items():
            for path, item in spec_document(api).get("paths", {}).items():
                regex = _PARAM.sub(lambda m: f"(?P<{_group(m[1])}>[^/]+)", path_regex(path))
                pattern = re.compile(re.escape(base.rstrip("/")) + regex)
                literal = sum(1 for s in path.split("/") if s and not _PARAM.fullmatch(s))
                for method, op in item.items():
                    if isinstance(op, Mapping) and "operationId" in op:
                        templates.append(
                            _Template(api, method.upper(), op["operationId"], pattern, literal)
                        )
        # Most literal segments first: /v1/runs/dlq before /v1/runs/{runID}.
        self._templates: Sequence[_Template] = sorted(templates, key=lambda t: -t.literal_segments)

    def match(self, method: str, path: str) -> Route | None:
        for template in self._templates:
            if template.method != method.upper():
                continue
            found = template.pattern.fullmatch(path)
            if found is not None:
                params = {_ungroup(k): v for k, v in found.groupdict().items()}
                return Route(template.api, template.operation_id, params)
        return None


def path_regex(template: str) -> str:
    """The template with its literal parts escaped and `{name}` left for substitution."""
    parts = _PARAM.split(template)
    out = []
    for index, part in enumerate(parts):
        out.append(re.escape(part) if index % 2 == 0 else "{" + part + "}")
    return "".join(out)


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _ungroup(group: str) -> str:
    return group[2:]
