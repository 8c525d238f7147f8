"""Receptors, share tokens and public access, on the model alone (manual clock, seed world)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mock_server.clock import ManualClock
from mock_server.model.auvy import AuvyModel, JobStatus, Principal, Settings
from mock_server.model.engine import Engine
from mock_server.model.errors import Forbidden, NotFound, Unauthenticated
from mock_server.model.receptors import Receptor, Receptors, ShareToken
from mock_server.model.store import MemoryStreams
from mock_server.profile import FIXTURES
from mock_server.seed import load_auvy

SUPPORT = "a1b2c3d4-0001-4a00-8000-000000000001"
SALES = "a1b2c3d4-0002-4a00-8000-000000000002"
GLOBEX_SUPPORT = "b1b2c3d4-0001-4a00-8000-000000000011"
SUPPORT_TOKEN = "shr_acme_support_valid_7Hq2mK9xQ"
SALES_TOKEN = "shr_acme_sales_valid_9Xc4nP7zD"
GLOBEX_TOKEN = "shr_globex_support_valid_6Mn1bV"
REVOKED = "shr_acme_support_revoked_2Lp8vN3"
ROTATED = "shr_acme_support_rotated_5Rt6wB1"
TRIAL_TOKEN = "shr_initech_helpdesk_valid_4Zx"
CAP_TOKEN = "shr_umbrella_kiosk_valid_1Ab2C"


@dataclass
class World:
    clock: ManualClock
    model: AuvyModel
    receptors: Receptors

    def who(self, key: str = "auvy_test_acme_rw") -> Principal:
        return self.model.authenticate(key)

    def settle(self, ms: int = 1_000) -> None:
        self.clock.advance(ms)
        self.model.engine.run_due()


@pytest.fixture
def world() -> World:
    clock = ManualClock()
    model = AuvyModel(
        Engine(clock), Settings(step_ms=10), streams=MemoryStreams(maxlen=None, ttl_ms=None)
    )
    receptors = Receptors(model)
    load_auvy(model, FIXTURES / "seed" / "auvy.toml", receptors)
    return World(clock, model, receptors)


def test_a_token_opens_exactly_its_receptor(world: World) -> None:
    r = world.receptors
    assert r.access(SUPPORT_TOKEN, workspace_slug="acme", slug="support").id == SUPPORT
    assert r.access(SUPPORT_TOKEN, receptor_id=SUPPORT).id == SUPPORT
    assert r.access(SUPPORT_TOKEN).id == SUPPORT


@pytest.mark.parametrize(
    "token,kwargs",
    [
        (SALES_TOKEN, {"workspace_slug": "acme", "slug": "support"}),
        (GLOBEX_TOKEN, {"workspace_slug": "acme", "slug": "support"}),
        (SUPPORT_TOKEN, {"workspace_slug": "globex", "slug": "support"}),
        (SUPPORT_TOKEN, {"receptor_id": SALES}),
        (SUPPORT_TOKEN, {"workspace_slug": "acme", "slug": "no-such-receptor"}),
        (SUPPORT_TOKEN, {"receptor_id": "00000000-0000-4000-8000-000000000000"}),
    ],
    ids=[
        "other-receptor",
        "same-slug-other-ws",
        "other-ws-path",
        "other-id",
        "missing-slug",
        "missing-id",
    ],
)
def test_another_receptor_is_forbidden_never_not_found(
    world: World, token: str, kwargs: dict[str, str]
) -> None:
    with pytest.raises(Forbidden):
        world.receptors.access(token, **kwargs)


@pytest.mark.parametrize("token", [None, "", "garbage", REVOKED, ROTATED])
def test_missing_unknown_revoked_and_rotated_tokens_are_unauthenticated(
    world: World, token: str | None
) -> None:
    with pytest.raises(Unauthenticated):
        world.receptors.access(token, workspace_slug="acme", slug="support")


def test_rotate_and_revoke_take_effect_at_once(world: World) -> None:
    r, who = world.receptors, world.who()
    new = r.rotate_share(who, "acme", "support")
    assert new.token != SUPPORT_TOKEN and new.status == "active"
    with pytest.raises(Unauthenticated):
        r.access(SUPPORT_TOKEN)
    assert r.access(new.token).id == SUPPORT
    r.revoke_share(who, "acme", "support")
    with pytest.raises(Unauthenticated):
        r.access(new.token)
    with pytest.raises(NotFound):
        r.get_share(who, "acme", "support")
    with pytest.raises(NotFound):
        r.revoke_share(who, "acme", "support")
    share, created = r.create_share(who, "acme", "support", allow_files=False)
    assert created and r.access(share.token).allow_files is False


def test_create_share_is_idempotent_and_applies_settings(world: World) -> None:
    r, who = world.receptors, world.who()
    share, created = r.create_share(
        who, "acme", "support", customization={"title": "Hi", "unknown": "ignored"}
    )
    assert not created and share.token == SUPPORT_TOKEN
    custom = r.receptors[SUPPORT].customization
    assert custom["title"] == "Hi" and "unknown" not in custom


def test_share_management_is_workspace_scoped_and_needs_write(world: World) -> None:
    r = world.receptors
    with pytest.raises(NotFound):
        r.get_share(world.who("auvy_test_globex_rw"), "acme", "support")
    with pytest.raises(NotFound):
        r.rotate_share(world.who("auvy_test_globex_rw"), "acme", "support")
    with pytest.raises(Forbidden):
        r.rotate_share(world.who("auvy_test_acme_ro"), "acme", "support")
    assert r.get_share(world.who("auvy_test_acme_ro"), "acme", "support").token == SUPPORT_TOKEN


def test_execute_starts_the_pathway_with_a_trace_and_attribution(world: World) -> None:
    receptor = world.receptors.access(SUPPORT_TOKEN)
    job, trace = world.receptors.execute(receptor, "hello", stream=True, user_id="usr_1")
    assert job.receptor_id == SUPPORT and job.trace_id == trace.id
    assert trace.user_id == "usr_1" and trace.job_ids == [job.id]
    assert job.input == {"message": "hello", "stream": True}
    world.settle()
    assert job.status is JobStatus.COMPLETED
    assert world.receptors.job(receptor, job.id, trace.id) is job
    assert world.receptors.trace(receptor, trace.id) is trace


def test_jobs_and_traces_of_another_receptor_are_not_found(world: World) -> None:
    support = world.receptors.access(SUPPORT_TOKEN)
    sales = world.receptors.access(SALES_TOKEN)
    job, trace = world.receptors.execute(support, "hello", stream=False, user_id=None)
    with pytest.raises(NotFound):
        world.receptors.job(sales, job.id)
    with pytest.raises(NotFound):
        world.receptors.trace(sales, trace.id)
    other_job, other_trace = world.receptors.execute(support, "again", stream=False, user_id=None)
    with pytest.raises(NotFound):
        world.receptors.job(support, job.id, other_trace.id)
    private = world.model.start_pathway(world.who(), "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10")
    with pytest.raises(NotFound):
        world.receptors.job(support, private.id)
    assert other_job.id != job.id


def test_transcription_needs_allow_files(world: World) -> None:
    with pytest.raises(Forbidden):
        world.receptors.transcribe(world.receptors.access(SALES_TOKEN), "AAAA", "audio/webm")
    job = world.receptors.transcribe(world.receptors.access(SUPPORT_TOKEN), "AAAA", "audio/webm")
    assert job.kind == "transcription" and job.receptor_id == SUPPORT


@pytest.mark.parametrize("token,reason", [(TRIAL_TOKEN, "trial_expired"), (CAP_TOKEN, "cost_cap")])
def test_blocked_workspaces_cannot_execute(world: World, token: str, reason: str) -> None:
    receptor = world.receptors.access(token)
    with pytest.raises(Forbidden) as caught:
        world.receptors.execute(receptor, "hi", stream=False, user_id=None)
    assert caught.value.reason == reason
    count = sum(1 for _ in world.model.jobs.values())
    assert count == 0


def test_world_rejects_inconsistent_receptors_and_shares(world: World) -> None:
    r = world.receptors
    with pytest.raises(ValueError, match="unknown workspace"):
        r.add(Receptor("x", "no-such-ws", "s", "n", "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"))
    with pytest.raises(ValueError, match="unknown pathway"):
        r.add(Receptor("x", "3f1c0a52-6a4e-4c8e-9d43-6b1f0e7a9a01", "s", "n", "no-such-pathway"))
    with pytest.raises(ValueError, match="unknown receptor"):
        r.add_share(ShareToken("shr_xxxxxxxxxxxxxxxx", "no-such-receptor", 0))
    with pytest.raises(ValueError, match="at most one active"):
        r.add_share(ShareToken("shr_second_active_token", SUPPORT, 0))
