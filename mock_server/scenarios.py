"""Scenario presets: a TOML file of jobs and runs to start, and outcomes to force on them.

A frontend developer loads one (`--scenario NAME`, `POST /_mock/scenarios/{name}`, or the
inspector's menu) to build an edge-case screen without real traffic. The bundled presets live in
`fixtures/scenarios/`; any file of the same shape works:

    title = "Waiting for approval"
    description = "..."
    reset = true                  # default: start from the seed world (false: add to it)

    [[auvy]]                      # AUVY jobs: a seeded pathway, run by its own workspace
    pathway = "2d9a3b5c-..."
    count = 2                     # default 1
    outcome = "approval"          # optional: forced at once (any /_mock/ outcome of the API)
    reason = "Publish?"           # optional: the failure reason, or the question asked

    [[ava]]                       # AVA jobs: a seeded worker, triggered in its own tenant
    worker = "wkr_queue_quick"
    priority = 3                  # default 5
    delay_ms = 60000              # optional: scheduled this long after loading

    [[strait]]                    # Strait runs: a seeded job, triggered with its project's key
    job = "job_acme_long"
    delay_ms = 60000              # optional: delayed until then

The whole file is checked before anything changes, so a bad preset leaves the world as it was.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import auvy, ava, strait
from .model.errors import ModelError
from .profile import FIXTURES
from .world import World

SCENARIOS = FIXTURES / "scenarios"
MAX_COUNT = 200


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Start:
    """`count` jobs of one seeded definition, each optionally forced to `outcome` at once."""

    api: str
    target: str  # a pathway, worker or job id
    count: int = 1
    outcome: str | None = None
    reason: str | None = None
    priority: int = ava.DEFAULT_PRIORITY
    delay_ms: int | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    reset: bool
    starts: tuple[Start, ...]


TARGET_KEY = {"auvy": "pathway", "ava": "worker", "strait": "job"}
# AUVY jobs start at once; AVA and Strait ones may be scheduled, and AVA's have a priority.
EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    "auvy": (),
    "ava": ("priority", "delay_ms"),
    "strait": ("delay_ms",),
}
OUTCOMES = {
    "auvy": auvy.FORCED_OUTCOMES,
    "ava": ava.FORCED_OUTCOMES,
    "strait": tuple(strait.FORCED_OUTCOMES),
}


def bundled() -> list[Path]:
    return sorted(SCENARIOS.glob("*.toml"))


def find(name_or_path: str) -> Path:
    """A bundled preset by name (`queue-backed-up`), or a TOML file by path."""
    path = SCENARIOS / f"{name_or_path}.toml"
    if name_or_path.replace("-", "").replace("_", "").isalnum() and path.is_file():
        return path
    given = Path(name_or_path)
    if given.suffix == ".toml" and given.is_file():
        return given
    names = ", ".join(p.stem for p in bundled())
    raise ScenarioError(f"no scenario {name_or_path!r}; bundled: {names} (or a path to a .toml)")


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from None
    return parse(text, path.stem)


def parse(text: str, name: str) -> Scenario:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {name} is not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"title", "description", "reset", *TARGET_KEY})
    if unknown:
        raise ScenarioError(f"scenario {name}: unknown key(s) {', '.join(unknown)}")
    title, description = raw.get("title", name), raw.get("description", "")
    reset = raw.get("reset", True)
    if not isinstance(title, str) or not isinstance(description, str):
        raise ScenarioError(f"scenario {name}: title and description must be strings")
    if not isinstance(reset, bool):
        raise ScenarioError(f"scenario {name}: reset must be true or false")
    starts: list[Start] = []
    for api, key in TARGET_KEY.items():
        tables = raw.get(api, [])
        if not isinstance(tables, list):
            raise ScenarioError(f"scenario {name}: [[{api}]] must be an array of tables")
        for i, table in enumerate(tables, 1):
            starts.append(_start(api, key, table, f"scenario {name} [[{api}]] #{i}"))
    return Scenario(name, title, description, reset, tuple(starts))


def _start(api: str, key: str, table: object, where: str) -> Start:
    if not isinstance(table, dict):
        raise ScenarioError(f"{where}: must be a table")
    allowed = {key, "count", "outcome", "reason", *EXTRA_KEYS[api]}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}")
    target = table.get(key)
    if not isinstance(target, str) or not target:
        raise ScenarioError(f"{where}: needs {key} = the id of a seeded {key}")
    count = table.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ScenarioError(f"{where}: count must be an integer from 1 to {MAX_COUNT}")
    outcome, reason = table.get("outcome"), table.get("reason")
    if outcome is not None and outcome not in OUTCOMES[api]:
        raise ScenarioError(f"{where}: outcome must be one of {', '.join(OUTCOMES[api])}")
    if reason is not None and not isinstance(reason, str):
        raise ScenarioError(f"{where}: reason must be a string")
    priority = table.get("priority", ava.DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ScenarioError(f"{where}: priority must be an integer")
    if not ava.MIN_PRIORITY <= priority <= ava.MAX_PRIORITY:
        raise ScenarioError(f"{where}: priority must be {ava.MIN_PRIORITY} to {ava.MAX_PRIORITY}")
    delay = table.get("delay_ms")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int) or delay < 0):
        raise ScenarioError(f"{where}: delay_ms must be a non-negative integer")
    return Start(api, target, count, outcome, reason, priority, delay)


def apply(world: World, scenario: Scenario) -> dict[str, Any]:
    """Reset (unless the preset says not to), then start and force what it lists."""
    _check_targets(world, scenario)
    if scenario.reset:
        world.reset()
    created: dict[str, list[str]] = {"auvy": [], "ava": [], "strait": []}
    try:
        for start in scenario.starts:
            for _ in range(start.count):
                created[start.api].append(_run(world, start))
    except ModelError as exc:
        # A seeded tenant that is suspended, say: the preset asks for what the world refuses.
        raise ScenarioError(f"scenario {scenario.name}: {exc}") from None
    return {
        "scenario": scenario.name,
        "title": scenario.title,
        "description": scenario.description,
        "created": created,
    }


def _check_targets(world: World, scenario: Scenario) -> None:
    known = {
        "auvy": set(world.auvy.pathways),
        "ava": set(world.ava.workers),
        "strait": set(world.strait.jobs),
    }
    for start in scenario.starts:
        if start.api not in world.apis:
            raise ScenarioError(f"scenario {scenario.name}: {start.api} is not served here")
        if start.target not in known[start.api]:
            what = TARGET_KEY[start.api]
            raise ScenarioError(
                f"scenario {scenario.name}: no seeded {start.api} {what} {start.target!r}"
            )


def _run(world: World, start: Start) -> str:
    now = world.engine.now()
    scheduled = now + start.delay_ms if start.delay_ms is not None else None
    if start.api == "auvy":
        pathway = world.auvy.pathways[start.target]
        job = world.auvy.start_pathway_for(pathway.workspace_id, pathway.id, {"scenario": True})
        if start.outcome is not None:
            world.auvy.force(job.id, start.outcome, start.reason)
        return job.id
    if start.api == "ava":
        worker = world.ava.workers[start.target]
        caller = ava.Caller(world.ava.tenants[worker.tenant_id], "scenario", ava.ROLES[-1])
        ava_job = world.ava.trigger(
            caller, worker.id, priority=start.priority, scheduled_ms=scheduled
        )
        if start.outcome is not None:
            world.ava.force(ava_job.id, start.outcome, start.reason)
        return ava_job.id
    job_def = world.strait.jobs[start.target]
    key = next((k for k in world.strait.keys.values() if k.project_id == job_def.project_id), None)
    if key is None:
        raise ScenarioError(f"no API key of project {job_def.project_id} is seeded")
    run, _ = world.strait.trigger(key, job_def.id, strait.TriggerOptions(scheduled_ms=scheduled))
    if start.outcome is not None:
        world.strait.force(run.id, start.outcome, start.reason)
    return run.id


def describe() -> list[dict[str, str]]:
    """The bundled presets, for the control route and the inspector's menu."""
    found = []
    for path in bundled():
        try:
            scenario = load(path)
        except ScenarioError as exc:
            found.append({"name": path.stem, "title": path.stem, "description": str(exc)})
            continue
        found.append(
            {"name": scenario.name, "title": scenario.title, "description": scenario.description}
        )
    return found
