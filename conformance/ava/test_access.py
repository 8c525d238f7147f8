"""Who may call: the secret, the identity headers, the role needed to write, tenant isolation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from conformance.checks import ava_error_envelope, no_leak, status_is
from conformance.clients.ava import AvaClient, format_ts
from conformance.profile import TargetProfile

req = pytest.mark.req
JOB_ID = "job_01hxyz00000000000000000000"
MakeClient = Callable[..., AvaClient]
Call = Callable[[AvaClient, TargetProfile], httpx.Response]

EVERY_ROUTE: dict[str, Call] = {
    "triggerJob": lambda c, p: c.trigger({"worker_id": p.need("ava.workers.complete.id")}),
    "listJobs": lambda c, p: c.list_jobs(),
    "getJob": lambda c, p: c.get_job(JOB_ID),
    "getJobLogs": lambda c, p: c.get_logs(JOB_ID),
    "cancelJob": lambda c, p: c.cancel(JOB_ID),
}


def later() -> str:
    return format_ts(datetime.now(UTC) + timedelta(hours=1))


@pytest.fixture
def parked(ava: AvaClient, profile: TargetProfile) -> Iterator[dict[str, Any]]:
    """A job of the main tenant that stays queued while the test runs, cancelled afterwards."""
    record = ava.start(profile.need("ava.workers.complete.id"), scheduled_at=later())
    yield record
    ava.cancel(record["id"])  # cleanup only: whatever it answers, the test has judged already


@req("ava.access.secret")
@pytest.mark.parametrize("operation", sorted(EVERY_ROUTE))
@pytest.mark.parametrize("secret", [None, "", "wrong-secret-0000"], ids=["none", "empty", "wrong"])
def test_every_route_needs_the_internal_secret(
    ava_as: MakeClient, profile: TargetProfile, operation: str, secret: str | None
) -> None:
    client = ava_as("main", secret=secret)
    response = EVERY_ROUTE[operation](client, profile)
    ava_error_envelope(response, 401, "unauthorized")
    no_leak(response, str(profile.need("ava.secret")))


def refused(response: httpx.Response) -> int:
    """A caller without a usable identity: FACTS.md lists unauthorized 401 and forbidden 403, and
    the documents do not say which a missing or unknown header gets, so either is accepted."""
    if response.status_code == 403:
        ava_error_envelope(response, 403, "forbidden")
    else:
        ava_error_envelope(response, 401, "unauthorized")
    return response.status_code


IDENTITY_GAPS: dict[str, dict[str, str | None]] = {
    "no-tenant": {"tenant_id": None},
    "no-user": {"user_id": None},
    "unknown-tenant": {"tenant_id": "ten_no_such_tenant_0000"},
}


@req("ava.access.identity")
@pytest.mark.parametrize("gap", sorted(IDENTITY_GAPS))
def test_every_route_needs_a_known_tenant_and_a_user(
    ava_as: MakeClient, profile: TargetProfile, gap: str
) -> None:
    client = ava_as("main", **IDENTITY_GAPS[gap])
    answers = {op: refused(call(client, profile)) for op, call in EVERY_ROUTE.items()}
    # Whichever status the target chose, one gap is one answer on every route.
    assert len(set(answers.values())) == 1, f"{gap} is answered differently per route: {answers}"


@req("ava.access.identity-401")
@pytest.mark.parametrize("operation", sorted(EVERY_ROUTE))
@pytest.mark.parametrize("gap", sorted(IDENTITY_GAPS))
def test_the_reference_answers_a_missing_identity_401(
    ava_as: MakeClient, profile: TargetProfile, operation: str, gap: str
) -> None:
    response = EVERY_ROUTE[operation](ava_as("main", **IDENTITY_GAPS[gap]), profile)
    ava_error_envelope(response, 401, "unauthorized")


@req("ava.access.write-role")
def test_a_missing_role_is_refused(ava_as: MakeClient, profile: TargetProfile) -> None:
    client = ava_as("main", role=None)
    answers = {op: refused(call(client, profile)) for op, call in EVERY_ROUTE.items()}
    assert len(set(answers.values())) == 1, f"a missing role is answered per route: {answers}"


WRITES = ("cancelJob", "triggerJob")


@req("ava.access.write-role")
@pytest.mark.parametrize("operation", WRITES)
@pytest.mark.parametrize("role", ["galactic-emperor", "TENANT-SYSTEM-ADMIN"])
def test_an_unknown_role_cannot_write(
    ava_as: MakeClient, profile: TargetProfile, operation: str, role: str
) -> None:
    # Writes need tenant-system-admin "or higher" (FACTS.md); a role nobody ranked is not higher.
    response = EVERY_ROUTE[operation](ava_as("main", role=role), profile)
    ava_error_envelope(response, 403, "forbidden")


@req("ava.access.unknown-role-403")
@pytest.mark.parametrize("operation", sorted(EVERY_ROUTE))
@pytest.mark.parametrize("role", [None, "galactic-emperor", "TENANT-SYSTEM-ADMIN"])
def test_the_reference_forbids_an_unknown_or_missing_role_everywhere(
    ava_as: MakeClient, profile: TargetProfile, operation: str, role: str | None
) -> None:
    response = EVERY_ROUTE[operation](ava_as("main", role=role), profile)
    ava_error_envelope(response, 403, "forbidden")


def roles(profile: TargetProfile, kind: str) -> list[str]:
    found = profile.get(f"ava.roles.{kind}")
    if not found:
        pytest.skip(f"the profile lists no ava.roles.{kind}")
    return [str(r) for r in found]


@req("ava.access.write-role")
def test_roles_below_tenant_system_admin_cannot_write(
    ava_as: MakeClient, profile: TargetProfile, parked: dict[str, Any]
) -> None:
    for role in roles(profile, "readers"):
        reader = ava_as("main", role=role)
        worker_id = profile.need("ava.workers.complete.id")
        ava_error_envelope(reader.trigger({"worker_id": worker_id}), 403, "forbidden")
        ava_error_envelope(reader.cancel(parked["id"]), 403, "forbidden")
        assert ava_as("main").job(parked["id"])["status"] == "queued", f"{role} cancelled a job"


@req("ava.access.write-role")
def test_tenant_system_admin_and_higher_can_write(
    ava_as: MakeClient, profile: TargetProfile
) -> None:
    for role in roles(profile, "writers"):
        writer = ava_as("main", role=role)
        record = writer.start(profile.need("ava.workers.complete.id"), scheduled_at=later())
        writer.stop(record["id"], f"cancel as {role}")
        final = writer.wait_for(
            record["id"], {"cancelled"}, float(profile.get("ava.job_timeout_s", 30))
        )
        assert final["status"] == "cancelled", (role, final)


@req("ava.access.read-any-role")
def test_every_role_can_read(
    ava_as: MakeClient, profile: TargetProfile, parked: dict[str, Any]
) -> None:
    for role in roles(profile, "readers") + roles(profile, "writers"):
        client = ava_as("main", role=role)
        assert client.job(parked["id"])["id"] == parked["id"], role
        # Filtered to the parked job's worker and status: a long list may come in many pages.
        listed = client.jobs(worker_id=parked["worker_id"], status="queued")
        assert parked["id"] in {j["id"] for j in listed}, role
        status_is(client.get_logs(parked["id"]), 200)


@req("ava.access.tenant-isolation")
def test_another_tenants_job_is_out_of_reach(
    ava_as: MakeClient, profile: TargetProfile, parked: dict[str, Any]
) -> None:
    other = ava_as("other")
    job_id = parked["id"]
    answers = []
    for response in (other.get_job(job_id), other.get_logs(job_id), other.cancel(job_id)):
        # Not documented: not found (hiding that it exists) or forbidden; never the job itself.
        if response.status_code == 403:
            ava_error_envelope(response, 403, "forbidden")
        else:
            ava_error_envelope(response, 404, "resource_not_found")
        no_leak(response, parked["worker_id"], parked["tenant_id"])
        answers.append(response.status_code)
    assert len(set(answers)) == 1, f"get, logs and cancel answer {answers}: one choice, please"
    assert job_id not in {j["id"] for j in other.jobs()}
    assert job_id not in {j["id"] for j in other.jobs(worker_id=parked["worker_id"])}
    assert ava_as("main").job(job_id)["status"] == "queued", "another tenant cancelled the job"


@req("ava.access.other-tenant-404")
def test_the_reference_answers_another_tenants_job_404(
    ava_as: MakeClient, profile: TargetProfile, parked: dict[str, Any]
) -> None:
    other = ava_as("other")
    job_id = parked["id"]
    for response in (other.get_job(job_id), other.get_logs(job_id), other.cancel(job_id)):
        ava_error_envelope(response, 404, "resource_not_found")
