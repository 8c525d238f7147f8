"""The lifecycle state machines (machines.py) against the target, one per API.

Each API's model runs as a document test, accepting every answer the documents allow; AUVY and AVA
also run it in reference mode, a decision test demanding the reference server's own choices where
the documents leave one open (informational against any other target)."""

from __future__ import annotations

from collections.abc import Callable

import hypothesis
import pytest
from hypothesis.stateful import run_state_machine_as_test

from ..clients.auvy import AuvyClient
from ..clients.ava import AvaClient
from ..clients.strait import StraitClient
from ..profile import TargetProfile
from .depth import Depth, settings_for
from .headroom import with_headroom
from .machines import (
    AUVY_SETTLES,
    AVA_SETTLES,
    STRAIT_SETTLES,
    Context,
    FullRecorder,
    LifecycleMachine,
    auvy_machine,
    ava_machine,
    strait_machine,
)


def _run(machine: type[LifecycleMachine], depth: Depth, seed: int) -> None:
    hypothesis.seed(seed)(machine)
    settings = settings_for(depth.machine_examples, steps=depth.machine_steps)
    with_headroom(lambda: run_state_machine_as_test(machine, settings=settings))


def _context(
    requirement: str,
    request: pytest.FixtureRequest,
    seed: int,
    depth: Depth,
    settle_s: float,
    fixtures: dict[str, str],
    *,
    reference: bool = False,
) -> Context:
    if not fixtures:
        pytest.skip("the profile names none of the fixtures the model knows")
    return Context(
        requirement=requirement,
        nodeid=request.node.nodeid,
        seed=seed,
        depth=depth.name,
        recorder=FullRecorder(),
        settle_s=settle_s,
        fixtures=fixtures,
        reference=reference,
    )


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param(False, id="document", marks=pytest.mark.req("auvy.properties.lifecycle")),
        pytest.param(
            True, id="reference", marks=pytest.mark.req("auvy.properties.lifecycle-reference")
        ),
    ],
)
def test_auvy_lifecycle(
    reference: bool,
    auvy: AuvyClient,
    profile: TargetProfile,
    depth: Depth,
    prop_seed: int,
    run_seed: int,
    request: pytest.FixtureRequest,
) -> None:
    fixtures = {
        k: str(profile.get(f"auvy.pathways.{k}.id"))
        for k in AUVY_SETTLES
        if profile.has(f"auvy.pathways.{k}.id")
    }
    settle = float(profile.get("auvy.job_timeout_s", 30))
    req = "auvy.properties.lifecycle" + ("-reference" if reference else "")
    ctx = _context(req, request, run_seed, depth, settle, fixtures, reference=reference)
    ctx.extra["workspace_id"] = profile.need("auvy.workspace_id")
    auvy.api.recorder = ctx.recorder
    _run(auvy_machine(auvy, ctx), depth, prop_seed)


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param(False, id="document", marks=pytest.mark.req("ava.properties.lifecycle")),
        pytest.param(
            True, id="reference", marks=pytest.mark.req("ava.properties.lifecycle-reference")
        ),
    ],
)
def test_ava_lifecycle(
    reference: bool,
    ava: AvaClient,
    profile: TargetProfile,
    depth: Depth,
    prop_seed: int,
    run_seed: int,
    request: pytest.FixtureRequest,
) -> None:
    fixtures = {
        k: str(profile.get(f"ava.workers.{k}.id"))
        for k in AVA_SETTLES
        if profile.has(f"ava.workers.{k}.id")
    }
    settle = float(profile.get("ava.job_timeout_s", 30))
    req = "ava.properties.lifecycle" + ("-reference" if reference else "")
    ctx = _context(req, request, run_seed, depth, settle, fixtures, reference=reference)
    ava.api.recorder = ctx.recorder
    _run(ava_machine(ava, ctx), depth, prop_seed)


@pytest.mark.req("strait.properties.lifecycle")
def test_strait_lifecycle(
    strait: StraitClient,
    strait_job: Callable[[str], str],
    profile: TargetProfile,
    depth: Depth,
    prop_seed: int,
    run_seed: int,
    request: pytest.FixtureRequest,
) -> None:
    fixtures = {
        k: str(profile.get(f"strait.jobs.{k}"))
        for k in STRAIT_SETTLES
        if profile.has(f"strait.jobs.{k}")
    }
    settle = float(profile.get("strait.run_timeout_s", 20))
    ctx = _context("strait.properties.lifecycle", request, run_seed, depth, settle, fixtures)
    strait.api.recorder = ctx.recorder
    _run(strait_machine(strait, ctx), depth, prop_seed)
