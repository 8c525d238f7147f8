"""How hard the property suites push: `--depth quick|deep` (or `[property] depth` in the profile)
and `--seed N`.

quick is what CI runs on every change (about a minute on two cores); deep is the release gate.
Every hypothesis-driven test derives its own seed from the run's seed and its node id, so one
`--seed` replays a whole run and a failing test's seed replays that test alone, independent of
which xdist worker ran it or in which order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import hypothesis

__all__ = ["DEPTHS", "Depth", "DepthError", "resolve_depth", "settings_for", "test_seed"]


class DepthError(ValueError):
    pass


@dataclass(frozen=True)
class Depth:
    name: str
    examples_per_operation: int  # schemathesis, per generation mode (positive, negative)
    stateful_examples: int  # schemathesis' link-driven scenarios per API
    machine_examples: int  # lifecycle state machine runs per API
    machine_steps: int  # steps per state machine run
    sse_examples: int  # disconnect points tried per stream
    race_rounds: int  # repetitions of each race
    concurrent_streams: int  # readers of one job in the many-streams race


DEPTHS: Final[dict[str, Depth]] = {
    d.name: d
    for d in (
        Depth(
            "quick",
            examples_per_operation=3,
            stateful_examples=3,
            machine_examples=4,
            machine_steps=8,
            sse_examples=2,
            race_rounds=1,
            concurrent_streams=6,
        ),
        Depth(
            "deep",
            examples_per_operation=40,
            stateful_examples=20,
            machine_examples=25,
            machine_steps=20,
            sse_examples=12,
            race_rounds=5,
            concurrent_streams=24,
        ),
    )
}


def resolve_depth(option: str | None, profile_value: Any = None) -> Depth:
    """The command line wins over the profile; quick when neither says."""
    name = option if option is not None else profile_value
    if name is None:
        return DEPTHS["quick"]
    if not isinstance(name, str) or name not in DEPTHS:
        raise DepthError(f"unknown depth {name!r}; use one of {', '.join(DEPTHS)}")
    return DEPTHS[name]


def test_seed(run_seed: int, nodeid: str) -> int:
    """A stable per-test seed: the same run seed gives every test the same seed on any worker."""
    digest = hashlib.sha256(f"{run_seed}:{nodeid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (2**32)


# Not a test, despite the name pytest would otherwise collect from a test module's namespace.
test_seed.__test__ = False  # type: ignore[attr-defined]


def settings_for(
    max_examples: int, *, steps: int | None = None, shrink: bool = True
) -> hypothesis.settings:
    """Hypothesis settings for a suite that talks to a live server: no deadline (latency is the
    server's, not the test's), no example database (a run must replay from its seed alone, not
    from files a previous run left behind), and no health checks that assume fast, local data.
    Without `shrink`, a failure is reported as first found: for inputs already small, where every
    shrinking attempt would cost a live job on the target."""
    # Imported here, not at the top: the plugin imports this module for --depth in every process,
    # and an xdist controller, which runs no test, would otherwise load hypothesis for nothing
    # (seconds when pytest rewrites its asserts without a bytecode cache).
    import hypothesis

    extra: dict[str, Any] = {}
    if steps is not None:
        extra["stateful_step_count"] = steps
    if not shrink:
        extra["phases"] = [p for p in hypothesis.Phase if p is not hypothesis.Phase.shrink]
    return hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=False,
        suppress_health_check=list(hypothesis.HealthCheck),
        **extra,
    )
