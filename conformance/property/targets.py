"""Where each API lives on the target and the identity generated requests use, as plain values
(schemathesis and the raw batteries send requests without the suite's typed clients).

Generated requests carry valid credentials, so they can do anything the identity may: rotate or
revoke a share, cancel every executing run of a project, reset an idempotency key. They therefore
run as the profile's fuzz identity (`[auvy.fuzz]`, `[ava.fuzz]`, `[strait.fuzz]`): a tenant the
property suites may trash and no other test uses. Without one they skip; falling back to the main
identity would let them break the fixtures the rest of the suite relies on.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..profile import TargetProfile

__all__ = ["auth_headers", "base_url", "fuzz_identity", "spec_document", "spec_path"]

REPO = Path(__file__).resolve().parents[2]
# libyaml when present: the pure-Python loader takes a third of a second per spec, paid at
# collection in every xdist worker.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def spec_path(api: str) -> Path:
    return REPO / "openapi" / f"{api}.yaml"


@functools.cache
def spec_document(api: str) -> Any:
    return yaml.load(spec_path(api).read_text(encoding="utf-8"), Loader=_LOADER)


def fuzz_identity(profile: TargetProfile, api: str) -> Mapping[str, Any]:
    """The profile's `[<api>.fuzz]` table, or skip the calling test naming what is missing."""
    section = profile.get(f"{api}.fuzz")
    if not isinstance(section, Mapping):
        where = profile.path.name if profile.path else "the target profile"
        pytest.skip(
            f"{where} has no [{api}.fuzz]: generated requests run only as a tenant the property "
            "suites may trash, never as the main identity"
        )
    return section


def _need(profile: TargetProfile, api: str, key: str) -> str:
    return str(profile.need(f"{api}.fuzz.{key}"))


def auth_headers(profile: TargetProfile, api: str) -> dict[str, str]:
    """The fuzz identity's credentials: AVA's four headers, a bearer key for AUVY and Strait."""
    fuzz_identity(profile, api)
    if api == "ava":
        return {
            "x-internal-secret": str(profile.need("ava.secret")),
            "x-tenant-id": _need(profile, api, "tenant_id"),
            "x-user-id": _need(profile, api, "user_id"),
            "x-platform-role": _need(profile, api, "role"),
        }
    return {"Authorization": f"Bearer {_need(profile, api, 'key')}"}


def base_url(target: str, profile: TargetProfile, api: str) -> str:
    return target + profile.base_path(api)
