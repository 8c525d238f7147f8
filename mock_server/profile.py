"""The server profile: pacing, keepalives, retention, limits and which seed world to load.

A TOML file (see `fixtures/server/*.toml`); every key has a default, so an empty file is a valid
profile. Unknown keys are errors, because a typo silently ignored would change a test run.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .variants import Variant, VariantError, apply_presets, variant_from_table

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
    # Per credential (API key or share token) over a sliding window; 0 requests = no limit.
    # A seeded key may carry its own limit instead.
    rate_limit_requests: int = 0
    rate_limit_window_ms: int = 60_000


@dataclass(frozen=True)
class AvaWebhook:
    url: str
    secret: str


@dataclass(frozen=True)
class AvaSettings:
    seed: Path = FIXTURES / "seed" / "ava.toml"
    step_ms: int = 250
    start_delay_ms: int = 0
    # Executions per tenant at once; a tenant of the seed may set its own.
    max_concurrent: int = 2
    # Endpoints that get ava.job.completed / ava.job.failed; an entry without a secret (and every
    # --ava-webhook URL) is signed with webhook_secret.
    webhooks: tuple[AvaWebhook, ...] = ()
    webhook_secret: str = "whsec_ava_dev"
    webhook_backoff_ms: int = 1_000
    webhook_max_attempts: int = 6
    webhook_timeout_ms: int = 5_000

    @classmethod
    def from_table(cls, raw: object, base: Path) -> AvaSettings:
        if not isinstance(raw, dict):
            raise ProfileError("[ava] must be a table")
        table = dict(raw)
        _only(table, {f.name for f in fields(AvaSettings)}, "[ava]")
        if "seed" in table:
            table["seed"] = (base / str(table["seed"])).resolve()
        _integers(table, "[ava]", ("step_ms", "start_delay_ms"), minimum=0)
        positive = ("max_concurrent", "webhook_backoff_ms", "webhook_max_attempts")
        _integers(table, "[ava]", (*positive, "webhook_timeout_ms"), minimum=1)
        secret = table.get("webhook_secret", cls.webhook_secret)
        if not isinstance(secret, str) or not secret:
            raise ProfileError("[ava] webhook_secret must be a non-empty string")
        hooks = table.get("webhooks", [])
        if not isinstance(hooks, list):
            raise ProfileError("[ava] webhooks must be a list of {url, secret?} tables")
        parsed = []
        for hook in hooks:
            if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
                raise ProfileError("[ava] each webhook needs a url string")
            _only(hook, {"url", "secret"}, "an [ava] webhook")
            if not hook["url"].startswith(("http://", "https://")):
                raise ProfileError(f"[ava] webhook url {hook['url']!r} is not http(s)")
            parsed.append(AvaWebhook(hook["url"], str(hook.get("secret", secret))))
        table["webhooks"] = tuple(parsed)
        return cls(**table)


@dataclass(frozen=True)
class StraitSettings:
    seed: Path = FIXTURES / "seed" / "strait.toml"
    step_ms: int = 250
    start_delay_ms: int = 0
    # How long one second of a job's timeout_secs and retry delays lasts on the server's clock.
    second_ms: int = 1000

    @classmethod
    def from_table(cls, raw: object, base: Path) -> StraitSettings:
        if not isinstance(raw, dict):
            raise ProfileError("[strait] must be a table")
        table = dict(raw)
        _only(table, {f.name for f in fields(StraitSettings)}, "[strait]")
        if "seed" in table:
            table["seed"] = (base / str(table["seed"])).resolve()
        _integers(table, "[strait]", ("step_ms", "start_delay_ms", "second_ms"), minimum=0)
        if table.get("second_ms", 1) == 0:
            raise ProfileError("[strait] second_ms must be positive")
        return cls(**table)


@dataclass(frozen=True)
class ServerProfile:
    clock: str = "system"
    ping_interval_ms: int = 15_000
    max_body_bytes: int = 1024 * 1024
    auvy: AuvySettings = field(default_factory=AuvySettings)
    ava: AvaSettings = field(default_factory=AvaSettings)
    strait: StraitSettings = field(default_factory=StraitSettings)
    # Switches that make this server another conformant implementation (mock_server.variants).
    variant: Variant = field(default_factory=Variant)
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
        for section in ("server", "auvy", "ava", "strait"):
            if not isinstance(raw.get(section, {}), dict):
                raise ProfileError(f"[{section}] must be a table")
        server = dict(raw.get("server", {}))
        _only(server, {"clock", "ping_interval_ms", "max_body_bytes"}, "[server]")
        auvy_raw = dict(raw.get("auvy", {}))
        _only(auvy_raw, {f.name for f in fields(AuvySettings)}, "[auvy]")
        _only(raw, {"server", "auvy", "ava", "strait", "variant"}, "the profile")
        try:
            variant = variant_from_table(raw.get("variant", {}))
        except VariantError as exc:
            raise ProfileError(str(exc)) from None
        ava = AvaSettings.from_table(raw.get("ava", {}), base)
        strait = StraitSettings.from_table(raw.get("strait", {}), base)
        if "seed" in auvy_raw:
            auvy_raw["seed"] = (base / str(auvy_raw["seed"])).resolve()
        _integers(server, "[server]", ("ping_interval_ms", "max_body_bytes"), minimum=0)
        auvy_ints = ("step_ms", "start_delay_ms", "stream_maxlen", "stream_ttl_ms")
        _integers(auvy_raw, "[auvy]", auvy_ints, minimum=0)
        for key in ("stream_maxlen", "stream_ttl_ms"):
            if auvy_raw.get(key) == 0:
                auvy_raw[key] = None  # 0 means unbounded, as TOML has no null
        profile = cls(
            auvy=AuvySettings(**auvy_raw),
            ava=ava,
            strait=strait,
            variant=variant,
            source=source,
            **server,
        )
        if profile.clock not in ("system", "manual"):
            raise ProfileError("[server] clock must be 'system' or 'manual'")
        for name in ("ping_interval_ms", "max_body_bytes"):
            if int(getattr(profile, name)) <= 0:
                raise ProfileError(f"[server] {name} must be positive")
        return profile


# `--pace`: (step_ms, start_delay_ms) for every API's jobs, overriding the profile's. instant
# finishes a seeded job in tens of milliseconds, yet the long ones (thousands of steps) still run
# long enough to cancel; human is the dev profile's; slow is for demos and screen recordings.
PACES: dict[str, tuple[int, int]] = {
    "instant": (5, 0),
    "human": (400, 300),
    "slow": (1500, 1000),
}


def with_pace(profile: ServerProfile, pace: str) -> ServerProfile:
    if pace not in PACES:
        raise ProfileError(f"unknown pace {pace!r}; known: {', '.join(PACES)}")
    step, delay = PACES[pace]
    return replace(
        profile,
        auvy=replace(profile.auvy, step_ms=step, start_delay_ms=delay),
        ava=replace(profile.ava, step_ms=step, start_delay_ms=delay),
        strait=replace(profile.strait, step_ms=step, start_delay_ms=delay),
    )


def with_variants(profile: ServerProfile, names: list[str]) -> ServerProfile:
    """`--variant NAME`: the named presets applied over the profile's own [variant] table."""
    try:
        return replace(profile, variant=apply_presets(profile.variant, names))
    except VariantError as exc:
        raise ProfileError(str(exc)) from None


def _integers(table: dict[str, Any], where: str, names: tuple[str, ...], *, minimum: int) -> None:
    """Checked at load: a string or an out-of-range number would only fail at the first job."""
    kind = "non-negative" if minimum == 0 else "positive"
    for name in names:
        value = table.get(name, minimum)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ProfileError(f"{where} {name} must be a {kind} integer")


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ProfileError(f"unknown key(s) in {where}: {', '.join(unknown)}")
