"""Fixtures of the property suites: depth, seeds, and per-API credentials as plain headers."""

from __future__ import annotations

import pytest

from .depth import Depth, test_seed


@pytest.fixture(scope="session")
def depth(pytestconfig: pytest.Config) -> Depth:
    from ..plugin import STATE

    return pytestconfig.stash[STATE].depth


@pytest.fixture(scope="session")
def run_seed(pytestconfig: pytest.Config) -> int:
    from ..plugin import STATE

    return pytestconfig.stash[STATE].seed


@pytest.fixture
def prop_seed(run_seed: int, request: pytest.FixtureRequest) -> int:
    return test_seed(run_seed, request.node.nodeid)
