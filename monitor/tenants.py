"""Who a request speaks for: the workspace (AUVY), tenant (AVA) or project (Strait) whose jobs it
may see. Isolation is judged only between callers whose tenants are known to differ; a caller
the monitor cannot place is never judged.

- AVA: the `x-tenant-id` header names the tenant itself.
- Strait: a key's project comes from the target profile (`strait.key` with `strait.project_id`,
  `strait.<name>.key` with `strait.<name>.project_id`), or is learned from the run a trigger with
  that key created (its `project_id`).
- AUVY: nothing on the wire names a key's workspace, so only the profile's keys are placed:
  `[auvy.keys]` main, read_only and rate_limited are the main workspace; other, trial_expired and
  cost_cap each another; `auvy.fuzz.key` and `auvy.battery.key` their own. `[monitor.tenants]`
  in the profile may place any other key: `"<key>" = "<workspace>"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MAIN_AUVY_KEYS = ("main", "read_only", "rate_limited")


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Tenants:
    def __init__(self, profile: Mapping[str, Any]) -> None:
        self._keys: dict[str, str] = {}
        auvy = _table(profile, "auvy")
        keys = _table(auvy, "keys")
        for name, key in keys.items():
            if isinstance(key, str):
                self._keys[key] = "auvy:main" if name in _MAIN_AUVY_KEYS else f"auvy:{name}"
        for section in ("fuzz", "battery"):
            key = _table(auvy, section).get("key")
            if isinstance(key, str):
                self._keys[key] = f"auvy:{section}"
        strait = _table(profile, "strait")
        if isinstance(strait.get("key"), str) and isinstance(strait.get("project_id"), str):
            self._keys[strait["key"]] = f"strait:{strait['project_id']}"
        for value in strait.values():
            if isinstance(value, Mapping):
                key, project = value.get("key"), value.get("project_id")
                if isinstance(key, str) and isinstance(project, str):
                    self._keys[key] = f"strait:{project}"
        for key, tenant in _table(profile, "monitor", "tenants").items():
            if isinstance(tenant, str):
                self._keys[str(key)] = tenant

    def of(self, api: str, headers: Mapping[str, str]) -> str | None:
        """The caller's tenant, or None when it cannot be placed."""
        if api == "ava":
            tenant = headers.get("x-tenant-id")
            return f"ava:{tenant}" if tenant else None
        key = bearer(headers)
        return self._keys.get(key) if key else None

    def learn_strait_project(self, headers: Mapping[str, str], project_id: object) -> None:
        key = bearer(headers)
        if key and isinstance(project_id, str) and key not in self._keys:
            self._keys[key] = f"strait:{project_id}"


def _table(node: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    for part in path:
        child = node.get(part)
        if not isinstance(child, Mapping):
            return {}
        node = child
    return node
