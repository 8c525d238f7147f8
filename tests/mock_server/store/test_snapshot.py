"""`Snapshots.state_print` without Redis: when a document's print may come from its shape."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from mock_server.store import snapshot
from mock_server.store.snapshot import Root, Snapshots


@dataclass(frozen=True)
class Pathway:
    id: str
    steps: int = 1
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Token:
    id: str
    uses: int = 0


class Model:
    def __init__(self) -> None:
        self.pathways: dict[str, Pathway] = {"p1": Pathway("p1"), "p2": Pathway("p2")}
        self.order: list[list[str]] = [["p1", "p2"]]
        self.secret = "s"
        self.tokens: dict[str, Token] = {"t1": Token("t1")}


def documents(verify: bool = False) -> tuple[Model, Snapshots]:
    model = Model()
    snapshots = Snapshots(
        [Root("model", model, config=frozenset({"pathways", "order", "secret"}))], {}
    )
    snapshots.verify = verify
    return model, snapshots


def printed_twice(snapshots: Snapshots, part: str, change: Any) -> tuple[Any, Any]:
    before = snapshots.state_print(part)
    change()
    return before, snapshots.state_print(part)


def test_an_unchanged_config_is_answered_from_its_shape_without_printing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, snapshots = documents()
    first = snapshots.state_print("config")
    printed: list[object] = []
    monkeypatch.setattr(snapshots, "print_value", lambda value: printed.append(value))
    assert snapshots.state_print("config") == first
    assert printed == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda m: m.pathways.__setitem__("p1", replace(m.pathways["p1"], steps=2)),
            id="an entry replaced",
        ),
        pytest.param(lambda m: m.pathways.__setitem__("p3", Pathway("p3")), id="an entry added"),
        pytest.param(lambda m: m.pathways.pop("p2"), id="an entry removed"),
        pytest.param(lambda m: m.order[0].append("p3"), id="a nested list grown"),
        pytest.param(lambda m: setattr(m, "secret", "t"), id="an attribute replaced"),
        pytest.param(
            lambda m: m.pathways.update({"p2": m.pathways.pop("p1"), "p1": m.pathways["p2"]}),
            id="entries reordered",
        ),
    ],
)
def test_every_change_to_the_containers_or_their_values_prints_again(change: Any) -> None:
    model, snapshots = documents()
    before, after = printed_twice(snapshots, "config", lambda: change(model))
    assert before != after
    assert after == snapshots.print_value(snapshots._state("config"))


def test_a_document_holding_mutable_objects_is_printed_every_time() -> None:
    model, snapshots = documents()
    token = model.tokens["t1"]
    before, after = printed_twice(snapshots, "live", lambda: setattr(token, "uses", 1))
    assert before != after


def test_verify_catches_a_frozen_object_whose_container_changed_in_place() -> None:
    model, snapshots = documents(verify=True)
    snapshots.state_print("config")
    model.pathways["p1"].labels["tier"] = "gold"  # frozen, yet its dict changes in place
    with pytest.raises(RuntimeError, match="config document changed while its shape did not"):
        snapshots.state_print("config")


def test_without_verify_such_a_change_goes_unseen_which_is_why_the_redis_tests_verify() -> None:
    model, snapshots = documents()
    before, after = printed_twice(
        snapshots, "config", lambda: model.pathways["p1"].labels.__setitem__("tier", "gold")
    )
    assert before == after


def test_the_redis_tests_run_with_verification_on() -> None:
    # tests/conftest.py sets it for every server these tests start, in process or not.
    import os

    assert os.environ.get(snapshot.VERIFY_ENV) == "1"
    assert documents()[1].verify is False  # `documents` turns it off: it tests both ways
