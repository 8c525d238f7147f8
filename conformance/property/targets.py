"""Where each API lives on the target and how the main identity authenticates, as plain values
(schemathesis and the raw batteries send requests without the suite's typed clients)."""

from __future__ import annotations

from ..profile import TargetProfile


def auth_headers(profile: TargetProfile, api: str) -> dict[str, str]:
    """The main identity's credentials: AVA's four headers, a bearer key for AUVY and Strait."""
    if api == "ava":
        ident = "ava.identities.main"
        return {
            "x-internal-secret": str(profile.need("ava.secret")),
            "x-tenant-id": str(profile.need(f"{ident}.tenant_id")),
            "x-user-id": str(profile.need(f"{ident}.user_id")),
            "x-platform-role": str(profile.need(f"{ident}.role")),
        }
    key = profile.need("auvy.keys.main" if api == "auvy" else "strait.key")
    return {"Authorization": f"Bearer {key}"}


def base_url(target: str, profile: TargetProfile, api: str) -> str:
    return target + profile.base_path(api)
