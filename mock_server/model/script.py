"""What a seeded pathway (or worker, or job) does when it runs: a script of steps.

A script is data, loaded from the seed world, so fixtures with known behaviour are declared next to
the ids a target profile refers to:

    script = [
      { progress = 3, name = "draft" },
      { wait = "approval", prompt = "Publish the draft?" },
      { progress = 2, name = "publish" },
      { complete = { url = "https://example.test/post/1" } },
    ]

Each `progress` unit is one tick of the job's pacing; `wait` stops until input arrives; `pause`
stops until resumed; `fail` and `complete` end the run. A script that runs out completes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

WaitKind = Literal["approval", "input", "questions"]
FieldType = Literal["string", "number", "boolean"]


@dataclass(frozen=True)
class Progress:
    count: int
    name: str = "work"
    tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType = "string"
    required: bool = True


@dataclass(frozen=True)
class Question:
    id: str
    text: str


@dataclass(frozen=True)
class Wait:
    kind: WaitKind
    prompt: str
    fields: tuple[Field, ...] = ()
    questions: tuple[Question, ...] = ()


@dataclass(frozen=True)
class Pause:
    reason: str = "paused by workflow"


@dataclass(frozen=True)
class Fail:
    reason: str


@dataclass(frozen=True)
class Complete:
    result: Mapping[str, object] = field(default_factory=dict)


Step = Progress | Wait | Pause | Fail | Complete


class ScriptError(ValueError):
    pass


def parse_script(raw: Sequence[Mapping[str, object]], where: str) -> tuple[Step, ...]:
    """Build steps from seed data; errors name the seed entry so a bad world fails at start-up."""
    steps: list[Step] = []
    for i, item in enumerate(raw):
        here = f"{where} step {i + 1}"
        if not isinstance(item, Mapping):
            raise ScriptError(f"{here}: a step must be a table")
        if "progress" in item:
            count = item["progress"]
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ScriptError(f"{here}: progress must be a positive integer")
            tokens = item.get("tokens", ())
            if not isinstance(tokens, list | tuple) or not all(isinstance(t, str) for t in tokens):
                raise ScriptError(f"{here}: tokens must be a list of strings")
            steps.append(Progress(count, str(item.get("name", "work")), tuple(tokens)))
        elif "wait" in item:
            kind = item["wait"]
            if kind not in ("approval", "input", "questions"):
                raise ScriptError(f"{here}: wait must be approval, input or questions")
            fields = tuple(
                Field(
                    str(f["name"]),
                    _field_type(f.get("type", "string"), here),
                    bool(f.get("required", True)),
                )
                for f in _dicts(item.get("fields", []), here)
            )
            questions = tuple(
                Question(str(q["id"]), str(q["text"]))
                for q in _dicts(item.get("questions", []), here)
            )
            if kind == "input" and not fields:
                raise ScriptError(f"{here}: an input wait needs fields")
            if kind == "questions" and not questions:
                raise ScriptError(f"{here}: a questions wait needs questions")
            steps.append(Wait(kind, str(item.get("prompt", "Input needed")), fields, questions))
        elif "pause" in item:
            steps.append(Pause(str(item["pause"])))
        elif "fail" in item:
            steps.append(Fail(str(item["fail"])))
        elif "complete" in item:
            result = item["complete"]
            if not isinstance(result, Mapping):
                raise ScriptError(f"{here}: complete takes a table (the job's result)")
            steps.append(Complete(dict(result)))
        else:
            raise ScriptError(f"{here}: unknown step {sorted(item)}")
    return tuple(steps)


def _field_type(value: object, here: str) -> FieldType:
    if value not in ("string", "number", "boolean"):
        raise ScriptError(f"{here}: a field's type must be string, number or boolean")
    return value


def _dicts(value: object, here: str) -> list[Mapping[str, object]]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ScriptError(f"{here}: expected a list of tables")
    return value


def progress_units(script: Sequence[Step]) -> int:
    return sum(s.count for s in script if isinstance(s, Progress))
