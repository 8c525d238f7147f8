"""The pytest side of the conformance runner.

- Options: --target, --api, --profile, --report-dir.
- With no --target, starts the bundled reference server on a free loopback port (once, in the
  controller when running under xdist, and hands its URL to the workers).
- Every test declares `@pytest.mark.req("<id>", ...)`; unknown ids stop the run at collection.
- Writes reports/junit.xml, reports/conformance.json and reports/conformance.html, and makes the
  exit status depend on MUST requirements only: a SHOULD or MAY failure is reported, not fatal.
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .clients.http import Recorder
from .profile import REFERENCE_PROFILE, ProfileError, TargetProfile
from .property.depth import DEPTHS, Depth, DepthError, resolve_depth
from .report import (
    Exchange,
    TestOutcome,
    build_report,
    must_failures,
    write_html,
    write_json,
)
from .requirements import Catalog, CatalogError, load_catalog
from .server import ReferenceServer, ReferenceServerError
from .webhooks import WebhookReceiver
from .webhooks import plan as plan_receiver

APIS = ("auvy", "ava", "strait")
REPO = Path(__file__).resolve().parent.parent
RECORDER = pytest.StashKey[Recorder]()
STATE = pytest.StashKey["RunState"]()


class RunState:
    def __init__(self, catalog: Catalog, profile: TargetProfile, apis: tuple[str, ...]) -> None:
        self.catalog = catalog
        self.profile = profile
        self.apis = apis
        self.target = ""
        self.server: ReferenceServer | None = None
        # AVA's webhook receiver: run by the controller, its URL handed to workers.
        self.receiver: WebhookReceiver | None = None
        self.receiver_url: str | None = None
        self.receiver_skip = "no webhook receiver runs"
        self.outcomes: dict[str, TestOutcome] = {}
        self.started_at = _now()
        # The property suites: how hard they push, and the seed that replays them.
        self.depth: Depth = DEPTHS["quick"]
        self.seed = 0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance")
    group.addoption(
        "--target",
        default=None,
        help="base URL of the deployment to check; omitted: start the bundled reference server",
    )
    group.addoption(
        "--api",
        action="append",
        choices=APIS,
        default=None,
        help="only check this API (repeatable); default: every API the profile describes",
    )
    group.addoption(
        "--profile",
        default=None,
        help=f"target profile TOML (default: {REFERENCE_PROFILE.relative_to(REPO)})",
    )
    group.addoption(
        "--req",
        action="append",
        default=None,
        metavar="ID",
        help="only the checks of this requirement id or id prefix (repeatable): auvy.stream",
    )
    group.addoption(
        "--require-coverage",
        action="store_true",
        help="fail the run when a catalogued requirement of the selected APIs has no test",
    )
    group.addoption(
        "--depth",
        choices=tuple(DEPTHS),
        default=None,
        help="property suites: quick (default, CI) or deep (release gate); "
        "or [property] depth in the profile",
    )
    group.addoption(
        "--seed",
        type=int,
        default=None,
        help="property suites: replay the run with this seed (printed in the header)",
    )
    group.addoption(
        "--report-dir",
        default=str(REPO / "reports"),
        help="where the reports go (default reports/)",
    )


# Pytest rewrites the asserts of every module of a distribution that ships a pytest plugin, and
# caches the result only where it may write bytecode (not under PYTHONDONTWRITEBYTECODE): then
# each xdist worker re-parses and rewrites the hundreds of modules of these two libraries, seconds
# of CPU per process, for asserts that are the libraries' own invariants, not checks of the suite.
UNREWRITTEN_LIBRARIES = frozenset({"hypothesis", "schemathesis"})


def _leave_libraries_unrewritten(config: pytest.Config) -> None:
    """Unmark the libraries before the test modules import them. This reaches into pytest's
    rewrite hook; should its internals change, nothing breaks, the run is only slower."""
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    cache = getattr(hook, "_marked_for_rewrite_cache", None)
    if isinstance(marked, set) and isinstance(cache, dict):
        marked.difference_update(UNREWRITTEN_LIBRARIES)
        cache.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): catalog requirement ids this test checks")
    _leave_libraries_unrewritten(config)
    worker = hasattr(config, "workerinput")
    report_dir = Path(config.getoption("--report-dir"))
    if not worker and not config.getoption("xmlpath", None):
        report_dir.mkdir(parents=True, exist_ok=True)
        config.option.xmlpath = str(report_dir / "junit.xml")
    try:
        catalog = load_catalog()
        profile = TargetProfile.load(Path(config.getoption("--profile") or REFERENCE_PROFILE))
    except (CatalogError, ProfileError) as exc:
        raise pytest.UsageError(str(exc)) from None
    requested = config.getoption("--api")
    apis = tuple(requested) if requested else tuple(a for a in APIS if a in profile.data)
    state = RunState(catalog, profile, apis)
    config.stash[STATE] = state
    try:
        state.depth = resolve_depth(config.getoption("--depth"), profile.get("property.depth"))
    except DepthError as exc:
        raise pytest.UsageError(f"{profile.path}: [property] {exc}") from None
    seed = config.getoption("--seed")
    state.seed = seed if seed is not None else random.randrange(2**32)
    target = config.getoption("--target")
    if worker:
        workerinput = getattr(config, "workerinput", {})
        target = target or workerinput.get("conformance_target")
        state.seed = int(workerinput.get("conformance_seed", state.seed))
        state.receiver_url = workerinput.get("ava_webhook_receiver")
        state.receiver_skip = workerinput.get("ava_webhook_skip", state.receiver_skip)
    elif not config.getoption("--collect-only", False):
        extra = _start_receiver(state, starting_server=target is None)
        if target is None:
            state.server = ReferenceServer(profile.server_profile(), extra_args=extra)
            # Waited for in pytest_runtestloop: meanwhile xdist's workers start, or (without
            # xdist) the tests are collected, instead of both waiting for the server's start-up.
            target = state.server.launch()
    elif target is None:
        target = "http://127.0.0.1:9"  # collection needs no server
    if target is None:
        raise pytest.UsageError("no --target and no reference server")
    state.target = target.rstrip("/")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(), "conformance-xdist")


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    state = session.config.stash.get(STATE, None)
    if state is not None and state.server is not None:
        try:
            state.server.wait_ready()
        except ReferenceServerError as exc:
            raise pytest.UsageError(str(exc)) from None
    return (yield)


def _start_receiver(state: RunState, *, starting_server: bool) -> tuple[str, ...]:
    """Start the webhook receiver when AVA is checked and the target can call it; returns the
    reference server's extra arguments (its --ava-webhook URL) when the suite starts it."""
    if "ava" not in state.apis:
        return ()
    where, reason = plan_receiver(state.profile, starting_server=starting_server)
    if where is None:
        state.receiver_skip = reason
        return ()
    receiver = WebhookReceiver(str(state.profile.get("ava.webhooks.secret")), *where)
    try:
        state.receiver_url = receiver.start()
    except OSError as exc:
        state.receiver_skip = f"the webhook receiver cannot listen on {where[0]}:{where[1]}: {exc}"
        return ()
    state.receiver = receiver
    return ("--ava-webhook", receiver.hook_url) if starting_server else ()


class XdistHooks:
    """Registered only when xdist is loaded: its hook is unknown to pytest otherwise."""

    @staticmethod
    def pytest_configure_node(node: Any) -> None:
        # Workers re-parse the command line, so the started server's URL travels here.
        state = node.config.stash[STATE]
        node.workerinput["conformance_target"] = state.target
        node.workerinput["conformance_seed"] = state.seed
        node.workerinput["ava_webhook_receiver"] = state.receiver_url
        node.workerinput["ava_webhook_skip"] = state.receiver_skip


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.server is not None:
        state.server.stop()
    if state is not None and state.receiver is not None:
        state.receiver.stop()


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[STATE]
    where = "bundled reference server" if state.server else "external deployment"
    return [
        f"conformance target: {state.target} ({where})",
        f"conformance profile: {state.profile.path}",
        f"conformance apis: {', '.join(state.apis) or 'none'}",
        f"property suites: --depth {state.depth.name} --seed {state.seed}",
    ]


def requirements_of(item: pytest.Item) -> tuple[str, ...]:
    ids: list[str] = []
    for mark in item.iter_markers("req"):
        ids.extend(str(a) for a in mark.args)
    return tuple(dict.fromkeys(ids))


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    state = config.stash[STATE]
    problems = []
    keep, drop = [], []
    for item in items:
        ids = requirements_of(item)
        if not ids:
            problems.append(f"{item.nodeid}: no @pytest.mark.req(...)")
            continue
        for req_id in ids:
            try:
                state.catalog.get(req_id)
            except CatalogError as exc:
                problems.append(f"{item.nodeid}: {exc}")
        wanted = config.getoption("--req")
        selected = wanted is None or any(
            i == w or i.startswith(w.rstrip(".") + ".") for i in ids for w in wanted
        )
        if selected and {i.split(".", 1)[0] for i in ids} & set(state.apis):
            keep.append(item)
        else:
            drop.append(item)
    if problems:
        raise pytest.UsageError("requirement markers:\n  " + "\n  ".join(problems))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture
def recorder(request: pytest.FixtureRequest) -> Recorder:
    rec = Recorder()
    request.node.stash[RECORDER] = rec
    return rec


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> str:
    return pytestconfig.stash[STATE].target


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> TargetProfile:
    return pytestconfig.stash[STATE].profile


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        report.user_properties.append(("requirements", " ".join(requirements_of(item))))
        rec = item.stash.get(RECORDER, None)
        if report.failed and rec is not None and rec.exchanges:
            payload = json.dumps([e.to_dict() for e in rec.exchanges[-10:]])
            report.user_properties.append(("conformance_exchanges", payload))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    config = getattr(report, "config", None)
    del config


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput") or exitstatus == pytest.ExitCode.USAGE_ERROR:
        # A run stopped before checking anything (the reference server did not start, say)
        # must not leave a report that reads as a verdict.
        return
    state = config.stash[STATE]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    outcomes = _outcomes_from(reporter)
    if not outcomes and config.getoption("--collect-only", False):
        return
    report = build_report(
        state.catalog,
        outcomes,
        target=state.target,
        apis=state.apis,
        started_at=state.started_at,
        finished_at=_now(),
    )
    out = Path(config.getoption("--report-dir"))
    out.mkdir(parents=True, exist_ok=True)
    write_json(report, out / "conformance.json")
    write_html(report, out / "conformance.html")
    state_summary = report["summary"]
    failed_must = must_failures(report)
    config.stash[SUMMARY] = (out, report["verdict"], failed_must, state_summary)
    if config.getoption("--require-coverage") and not config.getoption("--req"):
        untested = [
            str(r["id"])
            for r in report["requirements"]  # type: ignore[attr-defined]
            if r["status"] == "untested"
        ]
        if untested:
            config.stash[UNTESTED] = untested
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            return
    failed_tests = [o for o in outcomes if o.outcome in ("failed", "error")]
    if failed_tests and not failed_must and session.exitstatus == pytest.ExitCode.TESTS_FAILED:
        only_soft = all(
            o.requirements and all(state.catalog.get(r).level != "MUST" for r in o.requirements)
            for o in failed_tests
        )
        if only_soft:
            session.exitstatus = pytest.ExitCode.OK


SUMMARY = pytest.StashKey[tuple[Path, Any, list[str], Any]]()
UNTESTED = pytest.StashKey[list[str]]()


def _outcomes_from(reporter: Any) -> list[TestOutcome]:
    if reporter is None:
        return []
    seen: dict[str, TestOutcome] = {}
    for key in ("passed", "failed", "skipped", "error"):
        for rep in reporter.stats.get(key, []):
            if not isinstance(rep, pytest.TestReport):
                continue
            props = dict(rep.user_properties)
            reqs = tuple(str(props.get("requirements", "")).split())
            if not reqs:
                continue
            outcome = key
            if rep.when != "call" and key in ("failed", "error"):
                outcome = "error"
            message = ""
            if rep.failed:
                message = rep.longreprtext[-6000:]
            elif rep.skipped and isinstance(rep.longrepr, tuple):
                message = str(rep.longrepr[2])
            exchanges = tuple(
                Exchange.from_dict(d)
                for d in json.loads(str(props.get("conformance_exchanges", "[]")))
            )
            previous = seen.get(rep.nodeid)
            if previous is not None and previous.outcome in ("failed", "error"):
                continue
            seen[rep.nodeid] = TestOutcome(
                nodeid=rep.nodeid,
                outcome=outcome,  # type: ignore[arg-type]
                requirements=reqs,
                duration_s=rep.duration,
                message=message,
                exchanges=exchanges,
            )
    return list(seen.values())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    summary = config.stash.get(SUMMARY, None)
    if summary is None:
        return
    out, verdict, failed_must, counts = summary
    terminalreporter.section("conformance")
    terminalreporter.line(f"verdict: {verdict}")
    if failed_must:
        terminalreporter.line("failed MUST requirements:")
        for req_id in failed_must:
            terminalreporter.line(f"  {req_id}")
    terminalreporter.line(f"counts: {json.dumps(counts)}")
    untested = config.stash.get(UNTESTED, [])
    if untested:
        terminalreporter.line("requirements without any test (--require-coverage):", red=True)
        for req_id in untested:
            terminalreporter.line(f"  {req_id}")
    terminalreporter.line(f"reports: {out / 'conformance.html'}, {out / 'conformance.json'}")
