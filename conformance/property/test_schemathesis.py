"""Schemathesis over each spec, against the target.

Per operation: positive data (what the spec allows) and negative data (what it forbids), each
response checked for not_a_server_error, status_code_conformance, content_type_conformance and
response_schema_conformance against the spec as the documents read it: without the reference's own
constraints (`x-reference-only`), and with every status the documents give the same answer (AVA's
and Strait's 400 and 422; HTTP's 413 and 415 for a body). negative_data_rejection is not a
document check: the spec's request schemas forbid much that the documents never call invalid, so
it runs in its own decision test (`negative-reference`), against the spec with the reference's
constraints. Then the stateful phase follows the specs' OpenAPI links (create -> status -> stream
-> cancel, ...) with ensure_resource_availability on top (a job just created can be read); not
use_after_free, since no DELETE of these APIs removes what it names (a canceled Strait run, a
revoked AUVY share can still be read). Every request runs as the profile's fuzz identity
(targets.py), a tenant nothing else uses: positive data really does rotate shares and cancel runs.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as oas_checks

from ..checks import ConformanceFailure
from ..profile import TargetProfile
from ..spec_check import with_decisions
from .depth import Depth, settings_for
from .fixtures import finishing_fixtures, retargets
from .headroom import with_headroom
from .repro import replay_command
from .targets import auth_headers, base_url, spec_document

APIS = ("auvy", "ava", "strait")
REQUEST_TIMEOUT_S = 10.0

RESPONSE_CHECKS = [
    schemathesis.checks.not_a_server_error,
    oas_checks.status_code_conformance,
    oas_checks.content_type_conformance,
    oas_checks.response_schema_conformance,
]
STATEFUL_CHECKS = [*RESPONSE_CHECKS, oas_checks.ensure_resource_availability]
METHODS = ("get", "post", "put", "patch", "delete")
# Modes of test_operation: (generation mode, reference). The reference mode is a decision test.
MODES = {
    "positive": (GenerationMode.POSITIVE, False),
    "negative": (GenerationMode.NEGATIVE, False),
    "negative-reference": (GenerationMode.NEGATIVE, True),
}


def _operation_ids(api: str) -> list[str]:
    document = spec_document(api)
    return [
        op["operationId"]
        for item in document["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]


@functools.cache
def _documented_examples(api: str) -> frozenset[str]:
    """Every example value the spec gives a parameter (schemathesis mixes them into its data)."""
    document = spec_document(api)
    params: list[Any] = list(document.get("components", {}).get("parameters", {}).values())
    for item in document["paths"].values():
        params += item.get("parameters", [])
        params += [
            p
            for m, op in item.items()
            if m in ("get", "post", "put", "patch", "delete")
            for p in op.get("parameters", [])
        ]
    values: set[str] = set()
    for param in params:
        if isinstance(param, dict) and "$ref" not in param:
            for example in (param.get("example"), param.get("schema", {}).get("example")):
                if isinstance(example, str):
                    values.add(example)
    return frozenset(values)


def _retarget(api: str, case: Any, fuzz_values: dict[str, str]) -> None:
    """Swap a documented example value (the main workspace's fixtures, in the AUVY spec) for the
    fuzz identity's equivalent, so example-based requests reach something the identity owns."""
    if not fuzz_values:
        return
    examples = _documented_examples(api)

    def swap(values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        return {
            k: fuzz_values[k] if k in fuzz_values and isinstance(v, str) and v in examples else v
            for k, v in values.items()
        }

    case.path_parameters = swap(case.path_parameters)
    case.query = swap(case.query)
    if isinstance(case.body, dict):
        case.body = swap(case.body)


def document_view(api: str, reference: bool) -> dict[str, Any]:
    """The spec as a check of `api` may read it. reference: with the reference server's own
    constraints (`x-reference-only`). Otherwise without them, and with the statuses the documents
    give the same answer documented beside the spec's: a target answering a validation error
    with 422 where the reference says 400 (AVA, Strait), or refusing a body with HTTP's 413 or
    415, answers as documented."""
    view: dict[str, Any] = with_decisions(spec_document(api), reference)
    if reference:
        return view
    for item in view["paths"].values():
        for method, op in item.items():
            if method not in METHODS:
                continue
            responses = op.setdefault("responses", {})
            if api in ("ava", "strait"):
                for one, other in (("400", "422"), ("422", "400")):
                    if one in responses and other not in responses:
                        responses[other] = responses[one]
            if "requestBody" in op:
                for status in ("413", "415"):
                    responses.setdefault(status, {"description": "HTTP's refusal of a body"})
    return view


@functools.cache
def _schema(api: str, reference: bool = False) -> Any:
    schema = schemathesis.openapi.from_dict(document_view(api, reference))
    # Credentials come from the profile, so schemathesis must neither generate nor negate them;
    # undeclared query parameters are ignored by design, so adding some is not negative data.
    schema.config.generation.update(with_security_parameters=False, allow_extra_parameters=False)
    return schema


def _cases() -> list[Any]:
    return [
        pytest.param(
            api,
            op,
            mode,
            id=f"{api}-{op}-{mode}",
            marks=pytest.mark.req(
                f"{api}.properties.schema-rejects-invalid"
                if MODES[mode][1]
                else f"{api}.properties.schema"
            ),
        )
        for api in APIS
        for op in _operation_ids(api)
        for mode in MODES
    ]


def _identity_headers(api: str, headers: dict[str, str]) -> dict[str, str]:
    # AVA's identity headers are declared parameters; pinning them keeps generated requests inside
    # the fuzz tenant, and negative data then comes from the other parameters and the body.
    return {k: v for k, v in headers.items() if k.startswith("x-")} if api == "ava" else {}


@pytest.mark.parametrize(("api", "operation_id", "mode"), _cases())
def test_operation(
    api: str,
    operation_id: str,
    mode: str,
    target: str,
    profile: TargetProfile,
    depth: Depth,
    prop_seed: int,
    run_seed: int,
    request: pytest.FixtureRequest,
) -> None:
    if api not in profile.data:
        pytest.skip(f"the profile has no [{api}] section")
    headers = auth_headers(profile, api)
    url = base_url(target, profile, api)
    generation, reference = MODES[mode]
    operation = _schema(api, reference).find_operation_by_id(operation_id)
    strategy = operation.as_strategy(
        generation_mode=generation, headers=_identity_headers(api, headers) or None
    )
    checks = list(RESPONSE_CHECKS)
    if reference:
        checks.append(oas_checks.negative_data_rejection)

    fuzz_values = retargets(profile, api)

    @hypothesis.seed(prop_seed)
    @settings_for(depth.examples_per_operation)
    @hypothesis.given(case=strategy)
    def run(case: Any) -> None:
        _retarget(api, case, fuzz_values)
        case.call_and_validate(
            base_url=url, headers=headers, checks=checks, timeout=REQUEST_TIMEOUT_S
        )

    try:
        with_headroom(run)
    except hypothesis.errors.Unsatisfiable:
        pytest.skip(f"{operation_id}: no {mode} data can be generated for it")
    except (Exception, BaseExceptionGroup) as exc:
        raise ConformanceFailure(
            f"{api} {operation_id} ({mode} data)",
            f"{exc}\nreplay: {replay_command(run_seed, request.node.nodeid, depth.name)}",
        ) from None


@pytest.mark.parametrize(
    "api", [pytest.param(a, marks=pytest.mark.req(f"{a}.properties.stateful")) for a in APIS]
)
def test_stateful_links(
    api: str,
    target: str,
    profile: TargetProfile,
    depth: Depth,
    prop_seed: int,
    run_seed: int,
    request: pytest.FixtureRequest,
) -> None:
    if api not in profile.data:
        pytest.skip(f"the profile has no [{api}] section")
    headers = auth_headers(profile, api)
    url = base_url(target, profile, api)
    known = finishing_fixtures(profile, api)
    if not known:
        pytest.skip(f"the profile names no {api} fixture that finishes on its own")
    fuzz_values = retargets(profile, api)
    rng = random.Random(prop_seed)
    schema = _schema(api)
    schema.config.checks.update(included_check_names=[c.__name__ for c in STATEFUL_CHECKS])

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            _retarget(api, case, fuzz_values)
            _borrow_fixture(api, case, rng.choice(known), headers)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": url, "headers": headers, "timeout": REQUEST_TIMEOUT_S}

    hypothesis.seed(prop_seed)(Machine)
    try:
        settings = settings_for(depth.stateful_examples, steps=depth.machine_steps)
        with_headroom(lambda: Machine.run(settings=settings))
    except (Exception, BaseExceptionGroup) as exc:
        raise ConformanceFailure(
            f"{api}: stateful phase (OpenAPI links)",
            f"{exc}\nreplay: {replay_command(run_seed, request.node.nodeid, depth.name)}",
        ) from None


def _borrow_fixture(api: str, case: Any, fixture_id: str, headers: dict[str, str]) -> None:
    """Point the first step of a scenario at a fixture that exists, so links lead somewhere."""
    op = case.operation.definition.raw.get("operationId")
    if api == "auvy" and op == "createJob" and isinstance(case.body, dict):
        case.body.pop("pathway", None)
        case.body["pathway_id"] = fixture_id
    elif api == "ava" and op == "triggerJob" and isinstance(case.body, dict):
        case.body["worker_id"] = fixture_id
        case.body.pop("scheduled_at", None)
        case.headers = {**(case.headers or {}), **_identity_headers(api, headers)}
    elif api == "ava":
        case.headers = {**(case.headers or {}), **_identity_headers(api, headers)}
    elif api == "strait" and op == "triggerJob":
        case.path_parameters = {**(case.path_parameters or {}), "jobID": fixture_id}


del st
