"""The target profile's optional pacing: how often a check polls a status while it waits."""

from __future__ import annotations

from conformance.profile import REFERENCE_PROFILE, TargetProfile


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
