"""The target profile: credentials and the ids of fixtures with known behaviour on a deployment.

A TOML file; `fixtures/reference.toml` matches the bundled reference server and
`fixtures/profile.sample.toml` is the commented template for a real deployment. A test asks for
what it needs with `profile.need("auvy.pathways.approval")`, which skips the test, naming the
missing key, when the profile does not have it. The skip reason carries the key in a parseable
form (`needed_keys`), so the report can tell a profile author which key would enable the check.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE_PROFILE = REPO / "fixtures" / "reference.toml"
# How often a check polls a job's or run's status while it waits, unless `<api>.poll_interval_s`
# says: gentle enough for a shared deployment. The reference profile polls faster, since the
# bundled server's jobs step every few milliseconds and a poll there costs next to nothing.
POLL_INTERVAL_S = {"auvy": 0.05, "ava": 0.05, "strait": 0.03}
# The longest one test may take (setup, call and teardown each get what is left of it) unless
# `suite.test_timeout_s` says: generous, since a real deployment's jobs can take minutes.
TEST_TIMEOUT_S = 300.0

# Skip reasons end with this tag naming the missing keys; xdist ships only the reason's text
# between processes, so the text itself has to carry them.
_NEEDS_TAG = re.compile(r"\[needs profile keys?: ([^\]]+)\]\s*$")


def needs_tag(keys: tuple[str, ...]) -> str:
    return f"[needs profile key{'s' if len(keys) > 1 else ''}: {', '.join(keys)}]"


def needed_keys(reason: str) -> tuple[str, ...]:
    """The profile keys a skip reason says are missing (empty for any other skip)."""
    found = _NEEDS_TAG.search(reason)
    if found is None:
        return ()
    return tuple(k.strip() for k in found.group(1).split(",") if k.strip())


def without_needs_tag(reason: str) -> str:
    """The reason as a person reads it (the keys are reported on their own)."""
    return _NEEDS_TAG.sub("", reason).rstrip()


def skip_for_missing(*keys: str, why: str = "") -> NoReturn:
    """Skip the calling test because the profile lacks `keys`; `why` says what they are for."""
    if not keys:
        raise ValueError("skip_for_missing needs at least one key")
    text = why or f"the profile has no {' or '.join(keys)}"
    pytest.skip(f"{text} {needs_tag(keys)}")


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
            skip_for_missing(dotted, why=f"{where} has no {dotted}: this check needs that fixture")
        return value

    def test_timeout_s(self) -> float:
        """Each test's deadline (`suite.test_timeout_s`); raises ProfileError when unusable."""
        value = self.get("suite.test_timeout_s", TEST_TIMEOUT_S)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ProfileError(
                f"{self.path or 'the target profile'}: [suite] test_timeout_s must be a "
                f"positive number of seconds, got {value!r}"
            )
        return float(value)

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
