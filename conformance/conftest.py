"""Registers the conformance plugin and the per-API client fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .clients.auvy import AuvyClient
from .clients.http import ApiClient, Recorder
from .profile import TargetProfile
from .spec_check import ResponseSpec

pytest_plugins = ["conformance.plugin"]


@pytest.fixture
def auvy_as(
    target: str, profile: TargetProfile, recorder: Recorder
) -> Iterator[Callable[[str | None], AuvyClient]]:
    """A client authenticated with the profile's key `auvy.keys.<name>` (None: no credentials)."""
    made: list[ApiClient] = []
    base = target + profile.base_path("auvy")
    timeout = float(profile.get("auvy.request_timeout_s", 15.0))

    def make(name: str | None) -> AuvyClient:
        headers = {}
        if name is not None:
            headers["Authorization"] = f"Bearer {profile.need(f'auvy.keys.{name}')}"
        api = ApiClient(
            base, ResponseSpec.for_api("auvy"), recorder, headers=headers, timeout_s=timeout
        )
        made.append(api)
        return AuvyClient(api)

    yield make
    for api in made:
        api.close()


@pytest.fixture
def auvy(auvy_as: Callable[[str | None], AuvyClient]) -> AuvyClient:
    """The main workspace's read-write client."""
    return auvy_as("main")
