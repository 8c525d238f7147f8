"""The server profile: pacing, keepalives, retention, limits and which seed world to load.

A TOML file (see `fixtures/server/*.toml`); every key has a default, so an empty file is a valid
profile. Unknown keys are errors, because a typo silently ignored would change a test run.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
DEFAULT_PROFILE = FIXTURES / "server" / "dev.toml"


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class AuvySettings:
    seed: Path = FIXTURES / "seed" / "auvy.toml"
    step_ms: int = 250
    start_delay_ms: int = 0
    stream_maxlen: int | None = 10_000
    stream_ttl_ms: int | None = 24 * 3600 * 1000


@dataclass(frozen=True)
class ServerProfile:
    clock: str = "system"
    ping_interval_ms: int = 15_000
    max_body_bytes: int = 1024 * 1024
    auvy: AuvySettings = field(default_factory=AuvySettings)
    source: Path | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> ServerProfile:
        path = path or DEFAULT_PROFILE
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ProfileError(f"server profile {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(f"server profile {path} is not valid TOML: {exc}") from None
        return cls.from_dict(raw, base=path.parent, source=path)

    @classmethod
    def from_dict(
        cls, raw: dict[str, Any], *, base: Path = FIXTURES, source: Path | None = None
    ) -> ServerProfile:
        server = dict(raw.get("server", {}))
        _only(server, {"clock", "ping_interval_ms", "max_body_bytes"}, "[server]")
        auvy_raw = dict(raw.get("auvy", {}))
        _only(auvy_raw, {f.name for f in fields(AuvySettings)}, "[auvy]")
        _only(raw, {"server", "auvy"}, "the profile")
        if "seed" in auvy_raw:
            auvy_raw["seed"] = (base / str(auvy_raw["seed"])).resolve()
        for where, table, names in (
            ("[server]", server, ("ping_interval_ms", "max_body_bytes")),
            ("[auvy]", auvy_raw, ("step_ms", "start_delay_ms", "stream_maxlen", "stream_ttl_ms")),
        ):
            for name in names:
                # Checked here: a string or a negative number would only fail at the first job.
                value = table.get(name, 0)
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ProfileError(f"{where} {name} must be a non-negative integer")
        for key in ("stream_maxlen", "stream_ttl_ms"):
            if auvy_raw.get(key) == 0:
                auvy_raw[key] = None  # 0 means unbounded, as TOML has no null
        profile = cls(auvy=AuvySettings(**auvy_raw), source=source, **server)
        if profile.clock not in ("system", "manual"):
            raise ProfileError("[server] clock must be 'system' or 'manual'")
        for name in ("ping_interval_ms", "max_body_bytes"):
            if int(getattr(profile, name)) <= 0:
                raise ProfileError(f"[server] {name} must be positive")
        if profile.auvy.step_ms < 0 or profile.auvy.start_delay_ms < 0:
            raise ProfileError("[auvy] step_ms and start_delay_ms must not be negative")
        return profile


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ProfileError(f"unknown key(s) in {where}: {', '.join(unknown)}")
