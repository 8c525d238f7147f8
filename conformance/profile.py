"""The target profile: credentials and the ids of fixtures with known behaviour on a deployment.

A TOML file; `fixtures/reference.toml` matches the bundled reference server and
`fixtures/profile.sample.toml` is the commented template for a real deployment. A test asks for
what it needs with `profile.need("auvy.pathways.approval")`, which skips the test, naming the
missing key, when the profile does not have it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE_PROFILE = REPO / "fixtures" / "reference.toml"
# How often a check polls a job's or run's status while it waits, unless `<api>.poll_interval_s`
# says: gentle enough for a shared deployment. The reference profile polls faster, since the
# bundled server's jobs step every few milliseconds and a poll there costs next to nothing.
POLL_INTERVAL_S = {"auvy": 0.05, "ava": 0.05, "strait": 0.03}


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class TargetProfile:
    data: Mapping[str, Any]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> TargetProfile:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProfileError(f"target profile {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"target profile {path} is not valid TOML: {exc}") from None
        return cls(data, path)

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def has(self, dotted: str) -> bool:
        return self.get(dotted, _MISSING) is not _MISSING

    def need(self, dotted: str) -> Any:
        """The value at `dotted`, or skip the calling test with a reason naming the gap."""
        value = self.get(dotted, _MISSING)
        if value is _MISSING:
            where = self.path.name if self.path else "the target profile"
            pytest.skip(f"{where} has no {dotted}: this check needs that fixture")
        return value

    def base_path(self, api: str) -> str:
        return str(self.get(f"{api}.base_path", "")).rstrip("/")

    def poll_interval_s(self, api: str) -> float:
        return float(self.get(f"{api}.poll_interval_s", POLL_INTERVAL_S[api]))

    def server_profile(self) -> Path | None:
        """The server profile for the bundled reference server, used when there is no target."""
        name = self.get("reference.server_profile")
        if name is None or self.path is None:
            return None
        return (self.path.parent / str(name)).resolve()


_MISSING = object()
