"""Registers the conformance plugin and the per-API client fixtures, and masks secrets out of
every test report before any output sees it."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from .clients.auvy import AuvyClient
from .clients.ava import AvaClient
from .clients.http import DEFAULT_STREAM_TIMEOUT_S, ApiClient, Recorder
from .clients.strait import StraitClient
from .masking import run_masker, seed_run_masker
from .profile import TargetProfile
from .spec_check import ResponseSpec
from .webhooks import ReceiverClient

pytest_plugins = ["conformance.plugin"]


def _state(config: pytest.Config) -> Any:
    # Imported here: importing the plugin module before pytest registers it (pytest_plugins)
    # would bypass assertion rewriting, which pytest warns about.
    from .plugin import STATE

    return config.stash.get(STATE, None)


@pytest.fixture(scope="session")
def decisions(pytestconfig: pytest.Config) -> bool:
    """Whether the reference server's own decisions (`x-reference-only`) are enforced."""
    return bool(getattr(_state(pytestconfig), "enforce_decisions", True))


def _spec(api: str, decisions: bool) -> ResponseSpec:
    return ResponseSpec.for_api(api, decisions=decisions)


def _stream_timeout(profile: TargetProfile, api: str) -> float:
    """`<api>.stream_timeout_s`; by default long enough for a stream read to a terminal event to
    outlast the job (or run) it follows."""
    explicit = profile.get(f"{api}.stream_timeout_s")
    if explicit is not None:
        return float(explicit)
    job = profile.get(f"{api}.run_timeout_s" if api == "strait" else f"{api}.job_timeout_s")
    return max(DEFAULT_STREAM_TIMEOUT_S, float(job or 0))


@pytest.fixture(scope="session", autouse=True)
def _masked_profile(profile: TargetProfile) -> None:
    """Teach the run's masker the profile's secrets before any test records anything."""
    seed_run_masker(profile)


@pytest.hookimpl(trylast=True)  # after the plugin has loaded the profile
def pytest_configure(config: pytest.Config) -> None:
    # Also in the xdist controller, which writes the reports but runs no fixture.
    state = _state(config)
    if state is not None:
        seed_run_masker(state.profile)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The outermost wrapper, so it sees what every other hook added: failure text, captured
    output and user properties are masked where they are made (in the xdist worker that learned
    the run's tokens), before junit.xml, the JSON/HTML reports or the terminal see them."""
    report = yield
    mask_report(report)
    return report


def mask_report(report: pytest.TestReport) -> None:
    masker = run_masker()
    if report.longrepr is not None:
        text = report.longreprtext if not isinstance(report.longrepr, tuple) else ""
        if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
            path, line, reason = report.longrepr
            report.longrepr = (path, line, masker.text(str(reason)))
        elif masker.text(text) != text:
            # Only a report that shows a secret loses its structured traceback.
            report.longrepr = masker.text(text)
    report.sections = [(title, masker.text(body)) for title, body in report.sections]
    report.user_properties = [
        (name, masker.text(value) if isinstance(value, str) else value)
        for name, value in report.user_properties
    ]


@pytest.fixture
def auvy_as(
    target: str, profile: TargetProfile, recorder: Recorder, decisions: bool
) -> Iterator[Callable[[str | None], AuvyClient]]:
    """A client authenticated with the profile's key `auvy.keys.<name>` (None: no credentials)."""
    made: list[ApiClient] = []
    base = target + profile.base_path("auvy")
    timeout = float(profile.get("auvy.request_timeout_s", 15.0))

    def make(name: str | None) -> AuvyClient:
        headers = {}
        if name is not None:
            headers["Authorization"] = f"Bearer {profile.need(f'auvy.keys.{name}')}"
        api = ApiClient(
            base,
            _spec("auvy", decisions),
            recorder,
            headers=headers,
            timeout_s=timeout,
            stream_timeout_s=_stream_timeout(profile, "auvy"),
        )
        made.append(api)
        return AuvyClient(api, poll_interval_s=profile.poll_interval_s("auvy"))

    yield make
    for api in made:
        api.close()


@pytest.fixture
def auvy(auvy_as: Callable[[str | None], AuvyClient]) -> AuvyClient:
    """The main workspace's read-write client."""
    return auvy_as("main")


AVA_HEADERS = {
    "secret": "x-internal-secret",
    "tenant_id": "x-tenant-id",
    "user_id": "x-user-id",
    "role": "x-platform-role",
}


@pytest.fixture
def ava_as(
    target: str, profile: TargetProfile, recorder: Recorder, decisions: bool
) -> Iterator[Callable[..., AvaClient]]:
    """A client sending the identity `ava.identities.<name>` (None: no identity headers) and the
    profile's secret; keyword arguments (secret, tenant_id, user_id, role) replace one header,
    None leaving it out."""
    made: list[ApiClient] = []
    base = target + profile.base_path("ava")
    timeout = float(profile.get("ava.request_timeout_s", 15.0))

    def make(identity: str | None = "main", **override: str | None) -> AvaClient:
        unknown = set(override) - set(AVA_HEADERS)
        if unknown:
            raise TypeError(f"ava_as: unknown header field(s) {sorted(unknown)}")
        fields: dict[str, str | None] = {"secret": profile.need("ava.secret")}
        if identity is not None:
            for key in ("tenant_id", "user_id", "role"):
                fields[key] = str(profile.need(f"ava.identities.{identity}.{key}"))
        fields.update(override)
        headers = {AVA_HEADERS[k]: v for k, v in fields.items() if v is not None}
        api = ApiClient(
            base,
            _spec("ava", decisions),
            recorder,
            headers=headers,
            timeout_s=timeout,
            stream_timeout_s=_stream_timeout(profile, "ava"),
        )
        made.append(api)
        return AvaClient(api, poll_interval_s=profile.poll_interval_s("ava"))

    yield make
    for api in made:
        api.close()


@pytest.fixture
def ava(ava_as: Callable[..., AvaClient]) -> AvaClient:
    """The main tenant's client, with a role that may write."""
    return ava_as("main")


@pytest.fixture(scope="session")
def ava_receiver(pytestconfig: pytest.Config, profile: TargetProfile) -> Iterator[ReceiverClient]:
    """The run's webhook receiver; skips (with the reason) when the target cannot call it."""
    state = _state(pytestconfig)
    if state.receiver_url is None:
        pytest.skip(state.receiver_skip)
    client = ReceiverClient(state.receiver_url, str(profile.need("ava.webhooks.secret")))
    yield client
    client.close()


@pytest.fixture
def strait_as(
    target: str, profile: TargetProfile, recorder: Recorder, decisions: bool
) -> Iterator[Callable[[str | None], StraitClient]]:
    """A client with the key of `strait` ("main"), `strait.other` or `strait.dlqlab`, scoped to
    that key's project; None sends no credentials."""
    made: list[ApiClient] = []
    base = target + profile.base_path("strait")
    timeout = float(profile.get("strait.request_timeout_s", 15.0))
    run_timeout = float(profile.get("strait.run_timeout_s", 60.0))

    def make(name: str | None = "main") -> StraitClient:
        prefix = "strait" if name in ("main", None) else f"strait.{name}"
        headers = {}
        if name is not None:
            headers["Authorization"] = f"Bearer {profile.need(f'{prefix}.key')}"
        api = ApiClient(
            base,
            _spec("strait", decisions),
            recorder,
            headers=headers,
            timeout_s=timeout,
            stream_timeout_s=_stream_timeout(profile, "strait"),
        )
        made.append(api)
        project = str(profile.need(f"{prefix}.project_id"))
        return StraitClient(
            api, project, timeout_s=run_timeout, poll_s=profile.poll_interval_s("strait")
        )

    yield make
    for api in made:
        api.close()


@pytest.fixture
def strait(strait_as: Callable[[str | None], StraitClient]) -> StraitClient:
    """The main project's client."""
    return strait_as("main")


@pytest.fixture
def strait_job(profile: TargetProfile) -> Callable[[str], str]:
    """The id of the main project's job `strait.jobs.<name>`; skips when the profile lacks it."""

    def job(name: str) -> str:
        return str(profile.need(f"strait.jobs.{name}"))

    return job
