"""Where each API lives on the target and the identity generated requests use, as plain values
(schemathesis and the raw batteries send requests without the suite's typed clients).

Generated requests carry valid credentials, so they can do anything the identity may: rotate or
revoke a share, cancel every executing run of a project, reset an idempotency key. They therefore
run as one of the profile's sacrificial identities, never as the main one: schemathesis as the
fuzz identity (`[auvy.fuzz]`, `[ava.fuzz]`, `[strait.fuzz]`), a tenant the property suites may
trash and no other test uses; the bad-input battery as the battery identity (`[auvy.battery]`,
`[ava.battery]`, `[strait.battery]`), a tenant only it uses, so that its job count before and
after each test is the battery's alone to change (it must stay the same). Without the section the
suite skips; falling back to another identity would let it break the fixtures other tests rely on
or attribute their jobs to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from ..profile import TargetProfile
from ..spec_check import spec_document

__all__ = [
    "auth_headers",
    "base_url",
    "battery_identity",
    "fuzz_identity",
    "identity",
    "spec_document",
    "spec_path",
]

REPO = Path(__file__).resolve().parents[2]


def spec_path(api: str) -> Path:
    return REPO / "openapi" / f"{api}.yaml"


# Why each sacrificial identity exists, for the skip reason when the profile lacks it.
_PURPOSE = {
    "fuzz": "generated requests run only as a tenant the property suites may trash",
    "battery": (
        "the bad-input battery runs only as a tenant nothing else uses (its state-unchanged check "
        "counts that tenant's jobs)"
    ),
}


def identity(profile: TargetProfile, api: str, section: str) -> Mapping[str, Any]:
    """The profile's `[<api>.<section>]` table, or skip the calling test naming what is missing."""
    table = profile.get(f"{api}.{section}")
    if not isinstance(table, Mapping):
        where = profile.path.name if profile.path else "the target profile"
        pytest.skip(
            f"{where} has no [{api}.{section}]: {_PURPOSE[section]}, never as another identity"
        )
    return table


def fuzz_identity(profile: TargetProfile, api: str) -> Mapping[str, Any]:
    """The profile's `[<api>.fuzz]` table, or skip the calling test naming what is missing."""
    return identity(profile, api, "fuzz")


def battery_identity(profile: TargetProfile, api: str) -> Mapping[str, Any]:
    """The profile's `[<api>.battery]` table, or skip the calling test naming what is missing."""
    return identity(profile, api, "battery")


def auth_headers(profile: TargetProfile, api: str, section: str = "fuzz") -> dict[str, str]:
    """The credentials of `[<api>.<section>]` (the fuzz identity unless told): AVA's four headers,
    a bearer key for AUVY and Strait."""
    identity(profile, api, section)

    def need(key: str) -> str:
        return str(profile.need(f"{api}.{section}.{key}"))

    if api == "ava":
        return {
            "x-internal-secret": str(profile.need("ava.secret")),
            "x-tenant-id": need("tenant_id"),
            "x-user-id": need("user_id"),
            "x-platform-role": need("role"),
        }
    return {"Authorization": f"Bearer {need('key')}"}


def base_url(target: str, profile: TargetProfile, api: str) -> str:
    return target + profile.base_path(api)
