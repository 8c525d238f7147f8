from __future__ import annotations

from enum import StrEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.model.auvy import ACTIONS, TRANSITIONS, JobStatus
from mock_server.model.errors import IllegalTransition
from mock_server.model.status import TransitionTable


class Light(StrEnum):
    RED = "red"
    GREEN = "green"
    AMBER = "amber"
    OFF = "off"


LIGHTS: TransitionTable[Light] = TransitionTable(
    "light",
    {
        Light.RED: {Light.GREEN, Light.OFF},
        Light.GREEN: {Light.AMBER},
        Light.AMBER: {Light.RED},
        Light.OFF: set(),
    },
)

# The AUVY job table as the spec describes it, written out independently of the code.
AUVY_EDGES: dict[JobStatus, set[JobStatus]] = {
    JobStatus.PENDING: {JobStatus.RUNNING, JobStatus.FAILED},
    JobStatus.RUNNING: {
        JobStatus.COMPLETED,
        JobStatus.FAILED,
        JobStatus.WAITING,
        JobStatus.PAUSED,
    },
    JobStatus.WAITING: {JobStatus.RUNNING, JobStatus.FAILED},
    JobStatus.PAUSED: {JobStatus.RUNNING, JobStatus.FAILED},
    JobStatus.COMPLETED: set(),
    JobStatus.FAILED: set(),
}


def test_terminal_statuses_are_those_without_targets() -> None:
    assert LIGHTS.terminal == frozenset({Light.OFF})
    assert LIGHTS.is_terminal(Light.OFF)
    assert not LIGHTS.is_terminal(Light.RED)


def test_targets_and_allowed() -> None:
    assert LIGHTS.targets(Light.RED) == frozenset({Light.GREEN, Light.OFF})
    assert LIGHTS.allowed(Light.GREEN, Light.AMBER)
    assert not LIGHTS.allowed(Light.GREEN, Light.RED)
    assert not LIGHTS.allowed(Light.GREEN, Light.GREEN)


def test_statuses_lists_every_source_in_declaration_order() -> None:
    assert LIGHTS.statuses() == [Light.RED, Light.GREEN, Light.AMBER, Light.OFF]


def test_a_status_missing_from_the_table_has_no_targets() -> None:
    partial: TransitionTable[Light] = TransitionTable("light", {Light.RED: {Light.GREEN}})
    assert partial.targets(Light.AMBER) == frozenset()
    assert not partial.allowed(Light.AMBER, Light.RED)
    with pytest.raises(IllegalTransition):
        partial.check("x", Light.AMBER, Light.RED, "go")


def test_check_passes_on_a_declared_edge() -> None:
    LIGHTS.check("l1", Light.RED, Light.GREEN, "go")


def test_check_raises_an_error_value_naming_everything() -> None:
    with pytest.raises(IllegalTransition) as info:
        LIGHTS.check("l1", Light.OFF, Light.RED, "switch on")
    err = info.value
    assert (err.kind, err.ident, err.current, err.action) == ("light", "l1", "off", "switch on")
    assert err.message == "cannot switch on light l1: it is off"


def test_the_auvy_table_is_the_documented_one() -> None:
    assert set(TRANSITIONS.statuses()) == set(JobStatus)
    for status in JobStatus:
        assert TRANSITIONS.targets(status) == frozenset(AUVY_EDGES[status]), status
    assert TRANSITIONS.terminal == frozenset({JobStatus.COMPLETED, JobStatus.FAILED})


def test_every_client_action_is_a_declared_edge_from_each_of_its_sources() -> None:
    for action, (sources, target) in ACTIONS.items():
        for source in sources:
            assert TRANSITIONS.allowed(source, target), (action, source, target)
        assert not sources & TRANSITIONS.terminal, action


@given(st.sampled_from(list(JobStatus)), st.sampled_from(list(JobStatus)))
def test_walking_the_auvy_table_only_declared_moves_are_allowed(
    current: JobStatus, target: JobStatus
) -> None:
    declared = target in AUVY_EDGES[current]
    assert TRANSITIONS.allowed(current, target) is declared
    if declared:
        TRANSITIONS.check("job-1", current, target, "move")
    else:
        with pytest.raises(IllegalTransition):
            TRANSITIONS.check("job-1", current, target, "move")


@given(st.lists(st.sampled_from(list(JobStatus)), max_size=12))
def test_random_walks_from_pending_stop_at_a_terminal_status(choices: list[JobStatus]) -> None:
    status = JobStatus.PENDING
    for wanted in choices:
        if TRANSITIONS.is_terminal(status):
            assert TRANSITIONS.targets(status) == frozenset()
            with pytest.raises(IllegalTransition):
                TRANSITIONS.check("job-1", status, wanted, "move")
            continue
        if TRANSITIONS.allowed(status, wanted):
            status = wanted
    assert status in set(JobStatus)
