"""AVA fixtures: the shared client factory, told how the target pages its lists."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance.clients.ava import AvaClient
from conformance.profile import TargetProfile


@pytest.fixture
def ava_as(ava_as: Callable[..., AvaClient], profile: TargetProfile) -> Callable[..., AvaClient]:
    """The suite-wide factory; each client sends a list's next_cursor back in the query parameter
    the profile names (`ava.list.cursor_param`, default `cursor`): no pagination is documented,
    so a target that pages must say how, or the suite could not see past its first page."""
    cursor_param = str(profile.get("ava.list.cursor_param", "cursor"))

    def make(identity: str | None = "main", **override: str | None) -> AvaClient:
        client = ava_as(identity, **override)
        client.cursor_param = cursor_param
        return client

    return make
