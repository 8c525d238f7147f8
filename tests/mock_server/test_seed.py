from __future__ import annotations

from pathlib import Path

import pytest

from mock_server.clock import ManualClock
from mock_server.model.auvy import AuvyModel
from mock_server.model.engine import Engine
from mock_server.model.script import Complete, Progress, Wait
from mock_server.model.store import MemoryStreams
from mock_server.model.strait import StraitModel
from mock_server.profile import FIXTURES
from mock_server.seed import SeedError, describe_auvy, load_auvy, load_strait

SEED = FIXTURES / "seed" / "auvy.toml"

WS = """
[[workspaces]]
id = "ws-1"
slug = "one"
"""


def model() -> AuvyModel:
    return AuvyModel(Engine(ManualClock()), streams=MemoryStreams(maxlen=None, ttl_ms=None))


def load(tmp_path: Path, text: str) -> AuvyModel:
    path = tmp_path / "seed.toml"
    path.write_text(text, encoding="utf-8")
    m = model()
    load_auvy(m, path)
    return m


def test_the_bundled_seed_loads() -> None:
    m = model()
    load_auvy(m, SEED)
    assert {"trc_acme_support_0001", "trc_globex_0001"} <= set(m.traces)
    states = {ws.slug: ws.state for ws in m.workspaces.values()}
    assert {
        "acme": "active",
        "globex": "active",
        "initech": "trial_expired",
        "umbrella": "cost_cap",
    }.items() <= states.items()
    for token in ("auvy_test_acme_rw", "auvy_test_globex_rw", "auvy_test_initech_rw"):
        assert token in m.keys
    assert len(m.pathways) >= 8
    for pathway in m.pathways.values():
        assert pathway.workspace_id in m.workspaces
    assert m.keys["auvy_test_acme_ro"].scopes == frozenset({"read"})
    assert m.keys["auvy_test_acme_rw"].scopes == frozenset({"read", "write"})


def test_defaults_and_script_parsing(tmp_path: Path) -> None:
    m = load(
        tmp_path,
        WS
        + """
[[keys]]
token = "k1"
workspace = "ws-1"

[[pathways]]
id = "p1"
workspace = "ws-1"
step_ms = 5
script = [{ progress = 2 }, { wait = "approval" }, { complete = { ok = true } }]

[[traces]]
id = "t1"
workspace = "ws-1"
""",
    )
    ws = m.workspaces["ws-1"]
    assert (ws.name, ws.state) == ("one", "active")
    assert m.keys["k1"].scopes == frozenset({"read", "write"})
    pathway = m.pathways["p1"]
    assert pathway.name == "p1"
    assert pathway.step_ms == 5
    assert pathway.script == (
        Progress(2),
        Wait("approval", "Input needed"),
        Complete({"ok": True}),
    )
    assert m.traces["t1"].workspace_id == "ws-1"


def test_an_empty_seed_is_an_empty_world(tmp_path: Path) -> None:
    m = load(tmp_path, "")
    assert (m.workspaces, m.keys, m.pathways, m.traces) == ({}, {}, {}, {})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            WS + '[[keys]]\ntoken = "k"\nworkspace = "ws-9"\n',
            "key k names unknown workspace ws-9",
        ),
        (
            WS + '[[pathways]]\nid = "p"\nworkspace = "ws-9"\n',
            "pathway p names unknown workspace ws-9",
        ),
        (
            WS + '[[traces]]\nid = "t"\nworkspace = "ws-9"\n',
            "trace t names unknown workspace ws-9",
        ),
        (
            '[[workspaces]]\nid = "w"\nslug = "w"\nstate = "frozen"\n',
            "workspace w has unknown state 'frozen'",
        ),
        ('[[workspaces]]\nid = "w"\n', "an entry lacks the key 'slug'"),
        (WS + '[[keys]]\nworkspace = "ws-1"\n', "an entry lacks the key 'token'"),
        (WS + '[[pathways]]\nid = "p"\n', "an entry lacks the key 'workspace'"),
        (WS + '[[traces]]\nworkspace = "ws-1"\n', "an entry lacks the key 'id'"),
        (
            WS + '[[pathways]]\nid = "p"\nworkspace = "ws-1"\nscript = [{ progress = 0 }]\n',
            "pathway p step 1: progress must be a positive integer",
        ),
        (
            WS
            + '[[pathways]]\nid = "p"\nname = "nice"\nworkspace = "ws-1"\n'
            + "script = [{ progress = 1 }, { dance = 1 }]\n",
            "pathway nice step 2: unknown step ['dance']",
        ),
        (
            WS
            + '[[pathways]]\nid = "p"\nworkspace = "ws-1"\n'
            + 'script = [{ wait = "input", fields = [{ type = "string" }] }]\n',
            "an entry lacks the key 'name'",
        ),
    ],
)
def test_bad_seeds_fail_at_load_with_a_message(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SeedError) as info:
        load(tmp_path, text)
    assert message in str(info.value)


def test_an_unreadable_seed(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="cannot read seed world"):
        load_auvy(model(), tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[workspaces]\n")
    with pytest.raises(SeedError, match="cannot read seed world"):
        load_auvy(model(), bad)


def test_describe_lists_keys_pathways_and_traces() -> None:
    lines = describe_auvy(SEED)
    assert lines[0] == "  auvy seed world:"
    text = "\n".join(lines)
    assert "key auvy_test_acme_rw  workspace acme (read,write)" in text
    assert "key auvy_test_acme_ro  workspace acme (read)" in text
    assert "pathway 0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10  summarise" in text
    assert "(globex)" in text
    assert "trace trc_globex_0001 (globex)" in text


def test_describe_of_an_unreadable_seed_is_empty(tmp_path: Path) -> None:
    assert describe_auvy(tmp_path / "missing.toml") == []


STRAIT_SPAWNING = """
[[projects]]
id = "proj_a"
[[projects]]
id = "proj_b"
[[jobs]]
id = "parent"
project = "proj_a"
behaviour = "spawn"
spawn_job = "{child}"
spawn_count = 1
[[jobs]]
id = "kid_a"
project = "proj_a"
[[jobs]]
id = "kid_b"
project = "proj_b"
"""


@pytest.mark.parametrize(("child", "loads"), [("kid_a", True), ("kid_b", False), ("nobody", False)])
def test_a_strait_job_spawns_runs_of_its_own_projects_jobs_only(
    tmp_path: Path, child: str, loads: bool
) -> None:
    """A run's children are found in its project's partition (and must be invisible to other
    projects' keys anyway): a seed whose job spawns another project's job, or a job that does
    not exist, is refused at load."""
    path = tmp_path / "strait.toml"
    path.write_text(STRAIT_SPAWNING.format(child=child))
    model = StraitModel(Engine(ManualClock()))
    if loads:
        load_strait(model, path)
        assert model.jobs["parent"].spawn_job == "kid_a"
        return
    with pytest.raises(SeedError, match=f"job parent: spawn_job {child} is not a job of project"):
        load_strait(model, path)
