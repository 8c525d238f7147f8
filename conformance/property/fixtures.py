"""Known-good ids of the fuzz identity (targets.py) that generated requests borrow, so generated
sequences reach real jobs instead of stopping at 404 for a random id.

Only fixtures that finish on their own are used: a stream read of a job that waits for approval
or runs for minutes would hold a generated request open until its timeout.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..profile import TargetProfile
from .targets import fuzz_identity

__all__ = ["finishing_fixtures", "retargets"]

FINISHING: Mapping[str, tuple[str, ...]] = {
    "auvy": ("complete", "fail"),  # pathways
    "ava": ("complete", "fail"),  # workers
    "strait": ("complete", "fatal"),  # jobs
}

# Parameters whose documented example names one of the main workspace's fixtures (the AUVY spec's
# `acme` / `support` are the reference server's main workspace and receptor), mapped to the fuzz
# identity's equivalent. Schemathesis mixes examples into generated data; retargeting them keeps
# those requests on fixtures that exist for the fuzz identity instead of a certain 404.
RETARGETED: Mapping[str, Mapping[str, str]] = {
    "auvy": {
        "workspace": "workspace",
        "slug": "receptor",
        "receptor_id": "receptor_id",
        "t": "share_token",
        "share_token": "share_token",  # the body's alternative to ?t=
    },
}


def finishing_fixtures(profile: TargetProfile, api: str) -> list[str]:
    """Ids (AUVY pathways, AVA workers, Strait jobs) of the fuzz identity's fixtures that
    complete or fail quickly."""
    fuzz = fuzz_identity(profile, api)
    return [str(fuzz[k]) for k in FINISHING[api] if fuzz.get(k) is not None]


def retargets(profile: TargetProfile, api: str) -> dict[str, str]:
    """Parameter name -> the fuzz identity's value for it (for parameters in RETARGETED)."""
    fuzz = fuzz_identity(profile, api)
    return {
        name: str(fuzz[key])
        for name, key in RETARGETED.get(api, {}).items()
        if fuzz.get(key) is not None
    }
