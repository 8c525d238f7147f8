"""The target profile's optional pacing: how often a check polls a status while it waits."""

from __future__ import annotations

import pytest

from conformance.profile import (
    REFERENCE_PROFILE,
    ProfileError,
    TargetProfile,
    needed_keys,
    skip_for_missing,
    without_needs_tag,
)


def test_the_profile_sets_the_poll_interval_and_a_gentle_default_stands_in() -> None:
    profile = TargetProfile({"auvy": {"poll_interval_s": 0.01}, "strait": {}})
    assert profile.poll_interval_s("auvy") == 0.01
    assert profile.poll_interval_s("ava") == 0.05
    assert profile.poll_interval_s("strait") == 0.03


def test_the_reference_profile_polls_faster_than_the_defaults() -> None:
    reference = TargetProfile.load(REFERENCE_PROFILE)
    fresh = TargetProfile({})
    for api in ("auvy", "ava", "strait"):
        assert reference.poll_interval_s(api) < fresh.poll_interval_s(api), api


def test_the_deadline_defaults_to_300_s_and_must_be_a_positive_number() -> None:
    assert TargetProfile({}).test_timeout_s() == 300
    assert TargetProfile({"suite": {"test_timeout_s": 12}}).test_timeout_s() == 12.0
    for bad in (0, -1, "60", True):
        with pytest.raises(ProfileError, match="test_timeout_s must be a positive number"):
            TargetProfile({"suite": {"test_timeout_s": bad}}).test_timeout_s()


def test_the_reference_profile_sets_a_tighter_deadline() -> None:
    assert (
        TargetProfile.load(REFERENCE_PROFILE).test_timeout_s() < TargetProfile({}).test_timeout_s()
    )


def test_a_missing_key_skips_naming_it_in_a_parseable_form() -> None:
    with pytest.raises(pytest.skip.Exception) as info:
        TargetProfile({"ava": {}}).need("ava.workers.long.id")
    reason = str(info.value.msg)
    assert needed_keys(reason) == ("ava.workers.long.id",)
    assert without_needs_tag(reason).endswith("this check needs that fixture")
    with pytest.raises(pytest.skip.Exception) as info:
        skip_for_missing("ava.roles.read", "ava.roles.write", why="no roles to check with")
    assert needed_keys(str(info.value.msg)) == ("ava.roles.read", "ava.roles.write")
