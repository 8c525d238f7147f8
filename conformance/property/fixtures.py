"""Known-good ids from the profile that generated requests borrow, so generated sequences reach
real jobs instead of stopping at 404 for a random id.

Only fixtures that finish on their own are used: a stream read of a job that waits for approval
or runs for minutes would hold a generated request open until its timeout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..profile import TargetProfile

__all__ = ["finishing_fixtures"]


def finishing_fixtures(profile: TargetProfile, api: str) -> list[str]:
    """Ids (AUVY pathways, AVA workers, Strait jobs) of fixtures that complete or fail quickly."""
    keys: Mapping[str, tuple[str, ...]] = {
        "auvy": ("auvy.pathways.complete.id", "auvy.pathways.fail.id"),
        "ava": ("ava.workers.complete.id", "ava.workers.fail.id"),
        "strait": ("strait.jobs.complete", "strait.jobs.fatal"),
    }
    found: list[Any] = [profile.get(k) for k in keys[api]]
    return [str(v) for v in found if v is not None]
