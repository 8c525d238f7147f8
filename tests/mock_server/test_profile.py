from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mock_server.profile import (
    DEFAULT_PROFILE,
    FIXTURES,
    AuvySettings,
    ProfileError,
    ServerProfile,
)


def test_an_empty_profile_takes_every_default() -> None:
    profile = ServerProfile.from_dict({})
    assert profile == ServerProfile()
    assert profile.clock == "system"
    assert profile.ping_interval_ms == 15_000
    assert profile.max_body_bytes == 1024 * 1024
    assert profile.source is None
    assert profile.auvy == AuvySettings()
    assert profile.auvy.seed == FIXTURES / "seed" / "auvy.toml"
    assert profile.auvy.step_ms == 250
    assert profile.auvy.start_delay_ms == 0
    assert profile.auvy.stream_maxlen == 10_000
    assert profile.auvy.stream_ttl_ms == 24 * 3600 * 1000


def test_every_key_is_read() -> None:
    profile = ServerProfile.from_dict(
        {
            "server": {"clock": "manual", "ping_interval_ms": 200, "max_body_bytes": 64},
            "auvy": {
                "seed": "seed/auvy.toml",
                "step_ms": 0,
                "start_delay_ms": 7,
                "stream_maxlen": 5,
                "stream_ttl_ms": 1000,
            },
        },
        base=FIXTURES,
    )
    assert (profile.clock, profile.ping_interval_ms, profile.max_body_bytes) == ("manual", 200, 64)
    assert profile.auvy == AuvySettings(FIXTURES / "seed" / "auvy.toml", 0, 7, 5, 1000)


def test_the_seed_is_relative_to_the_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[auvy]\nseed = "worlds/mine.toml"\n')
    profile = ServerProfile.load(path)
    assert profile.auvy.seed == (tmp_path / "worlds" / "mine.toml").resolve()
    assert profile.source == path


@pytest.mark.parametrize("key", ["stream_maxlen", "stream_ttl_ms"])
def test_zero_means_unbounded(key: str) -> None:
    profile = ServerProfile.from_dict({"auvy": {key: 0}})
    assert getattr(profile.auvy, key) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"serverr": {}}, "unknown key(s) in the profile: serverr"),
        ({"server": {"clok": "manual"}}, "unknown key(s) in [server]: clok"),
        ({"auvy": {"step": 1, "delay": 2}}, "unknown key(s) in [auvy]: delay, step"),
        ({"server": {"clock": "wall"}}, "[server] clock must be 'system' or 'manual'"),
        ({"server": {"clock": 1}}, "[server] clock must be 'system' or 'manual'"),
        ({"server": {"ping_interval_ms": 0}}, "[server] ping_interval_ms must be positive"),
        ({"server": {"max_body_bytes": 0}}, "[server] max_body_bytes must be positive"),
        ({"server": {"max_body_bytes": -5}}, "[server] max_body_bytes"),
        ({"server": {"ping_interval_ms": "fast"}}, "[server] ping_interval_ms"),
        ({"auvy": {"step_ms": -1}}, "[auvy] step_ms"),
        ({"auvy": {"start_delay_ms": -1}}, "[auvy] start_delay_ms"),
        ({"auvy": {"step_ms": "40"}}, "[auvy] step_ms"),
        ({"auvy": {"step_ms": 1.5}}, "[auvy] step_ms"),
        ({"auvy": {"step_ms": True}}, "[auvy] step_ms"),
        ({"auvy": {"stream_maxlen": -1}}, "[auvy] stream_maxlen"),
        ({"auvy": {"stream_ttl_ms": "1d"}}, "[auvy] stream_ttl_ms"),
    ],
)
def test_bad_profiles_are_refused_with_a_message(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ProfileError) as info:
        ServerProfile.from_dict(raw)
    assert message in str(info.value)


def test_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ProfileError, match="does not exist"):
        ServerProfile.load(missing)


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server\nclock = ")
    with pytest.raises(ProfileError, match="is not valid TOML"):
        ServerProfile.load(path)


@pytest.mark.parametrize("name", ["dev.toml", "ci.toml"])
def test_the_bundled_profiles_load(name: str) -> None:
    profile = ServerProfile.load(FIXTURES / "server" / name)
    assert profile.auvy.seed == (FIXTURES / "seed" / "auvy.toml").resolve()
    assert profile.auvy.seed.is_file()
    assert profile.clock == "system"


def test_load_defaults_to_the_dev_profile() -> None:
    assert ServerProfile.load().source == DEFAULT_PROFILE
    assert DEFAULT_PROFILE == FIXTURES / "server" / "dev.toml"
