from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from mock_server.model.script import (
    Complete,
    Fail,
    Field,
    Pause,
    Progress,
    Question,
    ScriptError,
    Wait,
    parse_script,
    progress_units,
)


def parse(*steps: Mapping[str, Any]) -> tuple[object, ...]:
    return parse_script(list(steps), "pathway demo")


def test_every_step_kind_parses() -> None:
    got = parse(
        {"progress": 2, "name": "fetch", "tokens": ["a", "b"]},
        {"wait": "approval", "prompt": "Go?"},
        {
            "wait": "input",
            "prompt": "Details",
            "fields": [
                {"name": "email"},
                {"name": "seats", "type": "number"},
                {"name": "news", "type": "boolean", "required": False},
            ],
        },
        {"wait": "questions", "questions": [{"id": "q1", "text": "Where?"}]},
        {"pause": "human node"},
        {"fail": "boom"},
        {"complete": {"ok": True}},
    )
    assert got == (
        Progress(2, "fetch", ("a", "b")),
        Wait("approval", "Go?"),
        Wait(
            "input",
            "Details",
            fields=(
                Field("email", "string", True),
                Field("seats", "number", True),
                Field("news", "boolean", False),
            ),
        ),
        Wait("questions", "Input needed", questions=(Question("q1", "Where?"),)),
        Pause("human node"),
        Fail("boom"),
        Complete({"ok": True}),
    )


def test_defaults() -> None:
    assert parse({"progress": 1}) == (Progress(1, "work", ()),)
    assert parse() == ()


def test_progress_units_counts_only_progress_steps() -> None:
    script = parse_script(
        [{"progress": 3}, {"wait": "approval"}, {"progress": 4}, {"complete": {}}], "p"
    )
    assert progress_units(script) == 7
    assert progress_units(()) == 0


def test_complete_copies_its_result() -> None:
    result = {"a": 1}
    (step,) = parse({"complete": result})
    result["a"] = 2
    assert isinstance(step, Complete)
    assert step.result == {"a": 1}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"progress": 0}], "step 1: progress must be a positive integer"),
        ([{"progress": -3}], "progress must be a positive integer"),
        ([{"progress": "3"}], "progress must be a positive integer"),
        ([{"progress": 1.5}], "progress must be a positive integer"),
        ([{"progress": 1, "tokens": "abc"}], "tokens must be a list of strings"),
        ([{"progress": 1, "tokens": ["a", 2]}], "tokens must be a list of strings"),
        ([{"wait": "coffee"}], "wait must be approval, input or questions"),
        ([{"wait": "input"}], "an input wait needs fields"),
        ([{"wait": "input", "fields": []}], "an input wait needs fields"),
        ([{"wait": "questions"}], "a questions wait needs questions"),
        ([{"wait": "input", "fields": {"name": "a"}}], "expected a list of tables"),
        ([{"wait": "input", "fields": ["email"]}], "expected a list of tables"),
        ([{"wait": "questions", "questions": "q1"}], "expected a list of tables"),
        (
            [{"wait": "input", "fields": [{"name": "n", "type": "integer"}]}],
            "a field's type must be string, number or boolean",
        ),
        ([{"complete": "done"}], "complete takes a table"),
        ([{"complete": ["done"]}], "complete takes a table"),
        ([{"teleport": 1}], "unknown step ['teleport']"),
        ([{}], "unknown step []"),
        ([42], "a step must be a table"),
        ([{"progress": 1}, {"progress": 1}, {"bogus": 1}], "pathway demo step 3: unknown step"),
    ],
)
def test_script_errors_name_the_entry(steps: Sequence[Any], message: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse_script(steps, "pathway demo")
    text = str(info.value)
    assert text.startswith("pathway demo step ")
    assert message in text


def test_a_script_error_is_a_value_error() -> None:
    assert issubclass(ScriptError, ValueError)
