"""fixtures/reference.toml (the target profile of the bundled server) agrees with the seed world
and server profile it names, and fixtures/profile.sample.toml has the same shape."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from mock_server.clock import ManualClock
from mock_server.model.auvy import AuvyModel, Job, JobStatus, Settings
from mock_server.model.engine import Engine
from mock_server.model.script import Complete, Fail, Pause, Progress, Wait, progress_units
from mock_server.model.store import MemoryStreams
from mock_server.profile import ServerProfile
from mock_server.seed import load_auvy

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
REFERENCE = FIXTURES / "reference.toml"
SAMPLE = FIXTURES / "profile.sample.toml"


@cache
def reference() -> dict[str, Any]:
    return tomllib.loads(REFERENCE.read_text(encoding="utf-8"))


def auvy() -> dict[str, Any]:
    section: dict[str, Any] = reference()["auvy"]
    return section


def server_profile() -> ServerProfile:
    return ServerProfile.load(FIXTURES / reference()["reference"]["server_profile"])


def seeded() -> AuvyModel:
    """A fresh model of the seed world the reference server profile loads."""
    engine = Engine(ManualClock())
    model = AuvyModel(
        engine,
        Settings(step_ms=10, start_delay_ms=0, stream_maxlen=None, stream_ttl_ms=None),
        streams=MemoryStreams(maxlen=None, ttl_ms=None),
    )
    load_auvy(model, server_profile().auvy.seed)
    return model


def run(model: AuvyModel, job: Job, ms: int = 10_000) -> None:
    clock = model.engine.clock
    assert isinstance(clock, ManualClock)
    clock.advance(ms)
    model.engine.run_due()


def status_of(job: Job) -> JobStatus:
    """A call, so the type checker does not keep a narrowing across model actions."""
    return job.status


def main_workspace() -> str:
    workspace: str = auvy()["workspace_id"]
    return workspace


def pathway_profile(name: str) -> dict[str, Any]:
    section: dict[str, Any] = auvy()["pathways"][name]
    return section


# --- the server profile it names -------------------------------------------------------------


def test_the_reference_names_an_existing_server_profile() -> None:
    path = FIXTURES / reference()["reference"]["server_profile"]
    assert path.is_file()
    assert path == FIXTURES / "server" / "ci.toml"
    profile = server_profile()
    assert profile.auvy.seed.is_file()
    assert profile.auvy.seed == (FIXTURES / "seed" / "auvy.toml").resolve()


def test_the_keepalive_promise_fits_the_server_profile() -> None:
    assert server_profile().ping_interval_ms < auvy()["keepalive_within_s"] * 1000


# --- keys ------------------------------------------------------------------------------------


def test_every_key_exists_in_the_seed() -> None:
    model = seeded()
    for name, token in auvy()["keys"].items():
        assert token in model.keys, f"auvy.keys.{name} = {token} is not in the seed"


def test_the_main_and_read_only_keys() -> None:
    model = seeded()
    keys = auvy()["keys"]
    main = model.keys[keys["main"]]
    read_only = model.keys[keys["read_only"]]
    assert main.workspace_id == main_workspace()
    assert read_only.workspace_id == main_workspace()
    assert {"read", "write"} <= main.scopes
    assert "read" in read_only.scopes
    assert "write" not in read_only.scopes
    assert model.workspaces[main_workspace()].state == "active"


def test_the_other_key_is_of_another_active_workspace() -> None:
    model = seeded()
    other = model.keys[auvy()["keys"]["other"]]
    assert other.workspace_id != main_workspace()
    assert model.workspaces[other.workspace_id].state == "active"
    assert "write" in other.scopes


@pytest.mark.parametrize("name", ["trial_expired", "cost_cap"])
def test_blocked_keys_belong_to_workspaces_in_that_state(name: str) -> None:
    model = seeded()
    key = model.keys[auvy()["keys"][name]]
    assert model.workspaces[key.workspace_id].state == name
    assert key.workspace_id != main_workspace()
    assert "write" in key.scopes, "a blocked start must be refused for the state, not the scope"


def test_a_rate_limited_key_has_the_documented_limit() -> None:
    token = auvy()["keys"].get("rate_limited")
    if token is None:
        pytest.skip("the reference profile names no rate_limited key")
    key = seeded().keys[token]
    assert key.workspace_id == main_workspace()
    limit = auvy().get("rate_limit")
    assert limit is not None, "[auvy.rate_limit] must say the rate_limited key's limit"
    assert key.rate_limit == (limit["requests"], limit["window_s"] * 1000)


# --- ids of the other workspace --------------------------------------------------------------


def test_other_ids_belong_to_the_other_workspace_and_trace_id_to_the_main_one() -> None:
    model = seeded()
    other_ws = model.keys[auvy()["keys"]["other"]].workspace_id
    assert model.pathways[auvy()["other_pathway_id"]].workspace_id == other_ws
    assert model.traces[auvy()["other_trace_id"]].workspace_id == other_ws
    assert model.traces[auvy()["trace_id"]].workspace_id == main_workspace()


# --- pathways with known behaviour -----------------------------------------------------------

NAMES = ["complete", "fail", "approval", "input", "questions", "long", "pause"]


def test_every_pathway_name_is_declared() -> None:
    assert set(NAMES) <= set(auvy()["pathways"])


@pytest.mark.parametrize("name", NAMES)
def test_every_pathway_is_in_the_main_workspace(name: str) -> None:
    pathway = seeded().pathways.get(pathway_profile(name)["id"])
    assert pathway is not None, f"auvy.pathways.{name} is not in the seed"
    assert pathway.workspace_id == main_workspace()


def start(model: AuvyModel, name: str) -> Job:
    return model.start_pathway(
        model.authenticate(auvy()["keys"]["main"]), pathway_profile(name)["id"]
    )


def waits_of(name: str) -> list[Wait]:
    script = seeded().pathways[pathway_profile(name)["id"]].script
    return [s for s in script if isinstance(s, Wait)]


def test_complete_ends_with_exactly_the_declared_result() -> None:
    model = seeded()
    script = model.pathways[pathway_profile("complete")["id"]].script
    assert isinstance(script[-1], Complete)
    assert dict(script[-1].result) == pathway_profile("complete")["result"]
    assert not [s for s in script if isinstance(s, Wait | Pause | Fail)]
    job = start(model, "complete")
    run(model, job)
    assert status_of(job) is JobStatus.COMPLETED
    assert job.result == pathway_profile("complete")["result"]


def test_fail_fails_with_the_declared_reason() -> None:
    model = seeded()
    script = model.pathways[pathway_profile("fail")["id"]].script
    fails = [s for s in script if isinstance(s, Fail)]
    assert fails
    assert fails[0].reason == pathway_profile("fail")["reason"]
    job = start(model, "fail")
    run(model, job)
    assert status_of(job) is JobStatus.FAILED
    assert job.failed_reason == pathway_profile("fail")["reason"]


@pytest.mark.parametrize("kind", ["approval", "input", "questions"])
def test_waiting_pathways_wait_on_their_kind(kind: str) -> None:
    assert kind in [w.kind for w in waits_of(kind)]
    model = seeded()
    job = start(model, kind)
    run(model, job)
    assert status_of(job) is JobStatus.WAITING
    intervention = model.waiting_for(job)
    assert intervention is not None
    assert intervention.wait.kind == kind


def test_the_declared_fields_are_a_valid_submit_for_the_input_pathway() -> None:
    model = seeded()
    job = start(model, "input")
    run(model, job)
    intervention = model.waiting_for(job)
    assert intervention is not None
    assert intervention.wait.kind == "input"
    model.submit_input(
        model.authenticate(auvy()["keys"]["main"]),
        job.id,
        main_workspace(),
        {
            "type": "intervention_response",
            "interventionId": intervention.id,
            "action": "submit_input",
            "fields": pathway_profile("input")["fields"],
        },
    )
    assert status_of(job) is JobStatus.RUNNING
    run(model, job)
    assert status_of(job) is JobStatus.COMPLETED


def test_long_runs_at_least_ten_thousand_progress_units() -> None:
    model = seeded()
    script = model.pathways[pathway_profile("long")["id"]].script
    assert progress_units(script) >= 10_000
    assert not [s for s in script if isinstance(s, Wait | Pause)]
    # At the reference server's pacing it is still running when a scenario wants to cancel it.
    step_ms = model.pathways[pathway_profile("long")["id"]].step_ms or server_profile().auvy.step_ms
    assert progress_units(script) * step_ms >= 60_000


def test_pause_pauses_then_completes_when_resumed() -> None:
    model = seeded()
    script = model.pathways[pathway_profile("pause")["id"]].script
    assert [s for s in script if isinstance(s, Pause)]
    assert [s for s in script if isinstance(s, Progress)]
    job = start(model, "pause")
    run(model, job)
    assert status_of(job) is JobStatus.PAUSED
    model.resume(model.authenticate(auvy()["keys"]["main"]), job.id)
    run(model, job)
    assert status_of(job) is JobStatus.COMPLETED


# --- the sample profile ----------------------------------------------------------------------

# Values that are TOML tables but opaque data, not part of the profile's structure.
VALUE_TABLES = {"result", "fields", "output"}
_HEADER = re.compile(r"\[\s*([A-Za-z0-9_.\-]+)\s*\]")
_COMMENTED_KEY = re.compile(r"#\s*([A-Za-z_][A-Za-z0-9_\-]*)\s*=")


def dotted_keys(table: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and key not in VALUE_TABLES:
            yield from dotted_keys(value, f"{name}.")
        else:
            yield name


def commented_keys(text: str) -> set[str]:
    """Keys a template shows commented out (`# result = ...`) as optional, with their section
    (which may itself be commented out: `# [ava.list]`)."""
    section = ""
    found = set()
    for raw in text.splitlines():
        line = raw.strip()
        header = _HEADER.fullmatch(line.split("#", 1)[0].strip()) or _HEADER.fullmatch(
            line.lstrip("#").strip()
        )
        if header:
            section = header[1] + "."
            continue
        match = _COMMENTED_KEY.match(line)
        if match:
            found.add(section + match[1])
    return found


def test_the_sample_profile_parses() -> None:
    sample = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
    assert "reference" not in sample, "[reference] is for the bundled server only"
    assert "auvy" in sample


# Keys with which a target declares which of the answers the documents allow it gives. The
# reference profile leaves them out on purpose: the suite then accepts every allowed answer, so
# the same profile also passes against the reference server's variants (--variant choices).
DECLARED_CHOICES = frozenset(
    {
        "auvy.public.revoked_token_status",
        "ava.list.cursor_param",
        "ava.webhooks.record_field",
        "ava.webhooks.type_field",
    }
)


def test_the_sample_profile_has_the_reference_profiles_keys() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    sample = (set(dotted_keys(tomllib.loads(text))) | commented_keys(text)) - DECLARED_CHOICES
    ref = {k for k in dotted_keys(reference()) if not k.startswith("reference.")}
    missing = sorted(ref - sample)
    extra = sorted(sample - ref)
    assert not missing and not extra, (
        f"in reference.toml but not in profile.sample.toml: {missing}; "
        f"in profile.sample.toml but not in reference.toml: {extra}"
    )


def test_commented_keys_are_found_with_their_section() -> None:
    text = '[a.b]\nid = "x"\n# result = { }     # optional\n\n[c]\n#   reason = "y"\n# prose\n'
    assert commented_keys(text) == {"a.b.result", "c.reason"}
    assert set(dotted_keys({"a": {"b": {"id": 1, "result": {"x": 1}}}})) == {"a.b.id", "a.b.result"}


# --- the fuzz tenants: what the property suites' generated requests may trash -----------------


def seed_toml(api: str) -> dict[str, Any]:
    return tomllib.loads((FIXTURES / "seed" / f"{api}.toml").read_text(encoding="utf-8"))


def test_the_auvy_fuzz_workspace_is_its_own() -> None:
    fuzz = auvy()["fuzz"]
    model = seeded()
    key = model.keys[fuzz["key"]]
    assert key.workspace_id == fuzz["workspace_id"] != main_workspace()
    assert {"read", "write"} <= key.scopes
    workspace = model.workspaces[fuzz["workspace_id"]]
    assert workspace.slug == fuzz["workspace"]
    assert workspace.state == "active"
    others = [
        k for name, k in auvy()["keys"].items() if model.keys[k].workspace_id == key.workspace_id
    ]
    assert not others, "no other key of the profile may reach the fuzz workspace"
    for kind, status in (("complete", JobStatus.COMPLETED), ("fail", JobStatus.FAILED)):
        assert model.pathways[fuzz[kind]].workspace_id == fuzz["workspace_id"]
        job = model.start_pathway(model.authenticate(fuzz["key"]), fuzz[kind])
        run(model, job)
        assert status_of(job) is status


def test_the_auvy_fuzz_receptor_has_the_declared_active_share() -> None:
    fuzz = auvy()["fuzz"]
    raw = seed_toml("auvy")
    receptor = next(r for r in raw["receptors"] if r["id"] == fuzz["receptor_id"])
    assert receptor["workspace"] == fuzz["workspace_id"]
    assert receptor["slug"] == fuzz["receptor"]
    share = next(s for s in raw["shares"] if s["token"] == fuzz["share_token"])
    assert share["receptor"] == fuzz["receptor_id"]
    assert share.get("status", "active") == "active"
    public = [r for r in auvy()["public"]["receptors"].values() if "id" in r]
    assert fuzz["receptor_id"] not in {r["id"] for r in public}


def test_the_ava_fuzz_tenant_is_its_own() -> None:
    fuzz = reference()["ava"]["fuzz"]
    seed = seed_toml("ava")
    assert fuzz["tenant_id"] in {t["id"] for t in seed["tenants"]}
    identities = reference()["ava"]["identities"].values()
    assert fuzz["tenant_id"] not in {i["tenant_id"] for i in identities}
    assert fuzz["role"] in reference()["ava"]["roles"]["writers"]
    workers = {w["id"]: w for w in seed["workers"]}
    for kind in ("complete", "fail"):
        assert workers[fuzz[kind]]["tenant"] == fuzz["tenant_id"]
        assert kind in workers[fuzz[kind]]["script"][-1]


def test_the_strait_fuzz_project_is_its_own() -> None:
    fuzz = reference()["strait"]["fuzz"]
    seed = seed_toml("strait")
    keys = {k["token"]: k["project"] for k in seed["keys"]}
    assert keys[fuzz["key"]] == fuzz["project_id"]
    used = {reference()["strait"]["project_id"]} | {
        v["project_id"]
        for v in reference()["strait"].values()
        if isinstance(v, dict) and v is not fuzz and "project_id" in v
    }
    assert fuzz["project_id"] not in used
    jobs = {j["id"]: j for j in seed["jobs"]}
    for kind, behaviour in (("complete", "complete"), ("fatal", "fatal")):
        assert jobs[fuzz[kind]]["project"] == fuzz["project_id"]
        assert jobs[fuzz[kind]]["behaviour"] == behaviour


# --- the battery tenants: only the bad-input battery uses them; nothing may create jobs in them -


def battery_section(api: str) -> dict[str, Any]:
    section: dict[str, Any] = reference()[api]["battery"]
    return section


def test_the_auvy_battery_workspace_is_its_own() -> None:
    battery = battery_section("auvy")
    model = seeded()
    key = model.keys[battery["key"]]
    assert key.workspace_id == battery["workspace_id"]
    assert battery["workspace_id"] not in {main_workspace(), auvy()["fuzz"]["workspace_id"]}
    assert {"read", "write"} <= key.scopes
    workspace = model.workspaces[battery["workspace_id"]]
    assert workspace.slug == battery["workspace"]
    assert workspace.state == "active"
    others = [*auvy()["keys"].values(), auvy()["fuzz"]["key"]]
    assert not [k for k in others if model.keys[k].workspace_id == key.workspace_id], (
        "no other key of the profile may reach the battery workspace"
    )
    # Nothing of it another test could start, share or look up.
    raw = seed_toml("auvy")
    for kind in ("pathways", "receptors", "traces"):
        assert not [x for x in raw.get(kind, []) if x["workspace"] == battery["workspace_id"]], kind


def test_the_ava_battery_tenant_is_its_own() -> None:
    battery = battery_section("ava")
    seed = seed_toml("ava")
    assert battery["tenant_id"] in {t["id"] for t in seed["tenants"]}
    identities = reference()["ava"]["identities"].values()
    taken = {i["tenant_id"] for i in identities} | {reference()["ava"]["fuzz"]["tenant_id"]}
    assert battery["tenant_id"] not in taken
    assert battery["role"] in reference()["ava"]["roles"]["writers"]
    tenant = next(t for t in seed["tenants"] if t["id"] == battery["tenant_id"])
    assert not tenant.get("suspended"), "a suspended tenant would refuse writes before parsing"
    assert not [w for w in seed["workers"] if w["tenant"] == battery["tenant_id"]]


def test_the_strait_battery_project_is_its_own() -> None:
    battery = battery_section("strait")
    seed = seed_toml("strait")
    assert battery["project_id"] in {p["id"] for p in seed["projects"]}
    keys = {k["token"]: k["project"] for k in seed["keys"]}
    assert keys[battery["key"]] == battery["project_id"]
    used = {reference()["strait"]["project_id"]} | {
        v["project_id"]
        for v in reference()["strait"].values()
        if isinstance(v, dict) and v is not battery and "project_id" in v
    }
    assert battery["project_id"] not in used
    assert [p for p, project in keys.items() if project == battery["project_id"]] == [
        battery["key"]
    ]
    assert not [j for j in seed["jobs"] if j["project"] == battery["project_id"]]
