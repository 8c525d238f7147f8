"""The pytest side of the conformance runner.

- Options: --target, --api, --profile, --req, --report-dir, --decisions, --allow-incomplete.
- With no --target, starts the bundled reference server on a free loopback port (once, in the
  controller when running under xdist, and hands its URL to the workers).
- Every test declares `@pytest.mark.req("<id>", ...)`; unknown ids stop the run at collection, and
  so does a marker mixing decision requirements with document or facts ones.
- Every test has a deadline (`[suite] test_timeout_s` of the profile, default 300 s) over its
  setup, call and teardown; a test past it fails naming its requirements and the last request.
- Writes reports/junit.xml, reports/conformance.json and reports/conformance.html.

The verdict and the exit status (only MUST requirements in scope count; SHOULD and MAY failures
are reported, never fatal; decision requirements count only under `--decisions enforce`):

- 0: conformant, every MUST in scope passed (or incomplete with --allow-incomplete);
- 1: not conformant, a MUST failed (also: --require-coverage found a requirement with no test);
- 6: incomplete, no MUST failed but some were skipped, partly skipped or not run at all;
- pytest's own statuses otherwise (2 interrupted, 3 internal error, 4 usage error).
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from collections.abc import Generator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Final

import pytest

from . import deviations
from .checks import ConformanceFailure
from .clients.http import Recorder
from .masking import Masker
from .profile import (
    REFERENCE_PROFILE,
    ProfileError,
    TargetProfile,
    needed_keys,
    without_needs_tag,
)
from .property.depth import DEPTHS, Depth, DepthError, resolve_depth
from .report import (
    Exchange,
    Outcome,
    TestOutcome,
    build_report,
    must_failures,
    not_checked,
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
# The exit status of an incomplete verdict: distinct from 1 (a MUST failed) and from pytest's own
# statuses (0-5), so CI can tell "the target is broken" from "the profile checks too little".
EXIT_INCOMPLETE: Final = 6
EXIT_STATUS = {"conformant": 0, "not conformant": 1, "incomplete": EXIT_INCOMPLETE}
# What a report keeps of a failure's traceback: enough to find the line, not a page of frames.
TRACEBACK_LIMIT: Final = 6000
# Past its deadline a test's setup or call is interrupted; its teardown still gets this long to
# release what it holds (jobs, streams), so one slow test does not leak into the next.
TEARDOWN_GRACE_S: Final = 30.0
DEADLINE_START = pytest.StashKey[float]()
DECISIONS = ("enforce", "inform")


class RunState:
    def __init__(self, catalog: Catalog, profile: TargetProfile, apis: tuple[str, ...]) -> None:
        self.catalog = catalog
        self.profile = profile
        self.apis = apis
        # Decision requirements (the reference server's own choices) fail a run only when this
        # is set: by default when the suite checks its own bundled server.
        self.enforce_decisions = True
        self.req_prefixes: tuple[str, ...] = ()
        self.test_timeout_s = profile.test_timeout_s()
        self.masker = Masker.from_profile(profile)
        # Every phase report of every test, by node id, as the controller receives them.
        self.phase_reports: dict[str, list[pytest.TestReport]] = {}
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
        "--decisions",
        choices=DECISIONS,
        default=None,
        help="enforce: the reference server's own choices (decision requirements) count in the "
        "verdict; inform: they are reported, never fatal. Default: enforce without --target, "
        "inform with --target",
    )
    group.addoption(
        "--allow-incomplete",
        action="store_true",
        help=f"exit 0 when the verdict is incomplete (MUSTs skipped or not run); without it an "
        f"incomplete verdict exits with status {EXIT_INCOMPLETE}",
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
        requested = config.getoption("--api")
        apis = tuple(requested) if requested else tuple(a for a in APIS if a in profile.data)
        state = RunState(catalog, profile, apis)
    except (CatalogError, ProfileError) as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[STATE] = state
    state.req_prefixes = tuple(config.getoption("--req") or ())
    decisions = config.getoption("--decisions")
    state.enforce_decisions = (
        decisions == "enforce" if decisions else config.getoption("--target") is None
    )
    if not worker:
        config.pluginmanager.register(ReportCollector(state), "conformance-reports")
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
        state.enforce_decisions = bool(
            workerinput.get("conformance_enforce_decisions", state.enforce_decisions)
        )
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
        node.workerinput["conformance_enforce_decisions"] = state.enforce_decisions
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
        f"decisions: {'enforce' if state.enforce_decisions else 'inform'}; "
        f"per-test deadline: {state.test_timeout_s:g} s",
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
        decision: list[str] = []
        other: list[str] = []
        for req_id in ids:
            try:
                (decision if state.catalog.get(req_id).is_decision else other).append(req_id)
            except CatalogError as exc:
                problems.append(f"{item.nodeid}: {exc}")
        if decision and other:
            # The test's one outcome cannot be informational and binding at once.
            problems.append(
                f"{item.nodeid}: mixes decision requirements ({', '.join(decision)}) with "
                f"document/facts ones ({', '.join(other)}); split the reference's own choice "
                "into a test of its own"
            )
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


# --- per-test deadline ---------------------------------------------------------------------------


class TestDeadlineExceeded(BaseException):
    """Raised in a test by the deadline alarm. A BaseException, so a check's own `except
    Exception` (a retry loop, say) cannot swallow it and run on past its deadline."""

    __test__ = False


def _in_flight(item: pytest.Item) -> str:
    rec = item.stash.get(RECORDER, None)
    if rec is None:
        return "no request recorded"
    # A recorder that tracks the request under way says so; otherwise the last completed one is
    # the best lead (the hang is in what came after it).
    current = getattr(rec, "in_flight", None)
    if current:
        return f"request in flight: {current}"
    if rec.exchanges:
        last = rec.exchanges[-1]
        status = "no response" if last.status is None else last.status
        return f"last completed request: {last.method} {last.url} -> {status}"
    return "no request recorded"


def _deadline_message(item: pytest.Item, phase: str, deadline_s: float) -> str:
    ids = ", ".join(requirements_of(item)) or "none"
    return (
        f"test exceeded its deadline of {deadline_s:g} s ([suite] test_timeout_s) in {phase}; "
        f"requirements: {ids}; {_in_flight(item)}"
    )


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _with_deadline(item: pytest.Item, phase: str) -> Generator[None, None, None]:
    """Run one phase of `item` under what is left of its deadline (setitimer + SIGALRM)."""
    state = item.config.stash.get(STATE, None)
    if state is None or not _can_alarm():
        yield
        return
    deadline_s = state.test_timeout_s
    started = item.stash.setdefault(DEADLINE_START, time.monotonic())
    remaining = started + deadline_s - time.monotonic()
    if phase == "teardown":
        remaining = max(remaining, min(TEARDOWN_GRACE_S, deadline_s))
    elif remaining <= 0:
        raise TestDeadlineExceeded(_deadline_message(item, phase, deadline_s))

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise TestDeadlineExceeded(_deadline_message(item, phase, deadline_s))

    previous = signal.signal(signal.SIGALRM, alarm)
    # The interval re-raises every second should a bare `except BaseException` swallow it.
    signal.setitimer(signal.ITIMER_REAL, remaining, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[DEADLINE_START] = time.monotonic()
    yield from _with_deadline(item, "setup")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield from _with_deadline(item, "call")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield from _with_deadline(item, "teardown")


# --- what each phase report carries --------------------------------------------------------------


def failure_message(excinfo: pytest.ExceptionInfo[BaseException], item: pytest.Item) -> str:
    """What a person can act on: the check's own words, not the tail of a traceback."""
    exc = excinfo.value
    if isinstance(exc, ConformanceFailure):
        return f"{exc.title}: {exc.detail}" if exc.detail else exc.title
    if isinstance(exc, TestDeadlineExceeded):
        return str(exc)
    if isinstance(exc, AssertionError):
        text = str(exc).strip()
        return text or f"assertion failed at {_location(excinfo, item)}"
    text = str(exc).strip()
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return f"{what} (at {_location(excinfo, item)})"


def _location(excinfo: pytest.ExceptionInfo[BaseException], item: pytest.Item) -> str:
    """The deepest frame in the test's own file, else the deepest frame of the suite."""
    item_path = str(getattr(item, "path", ""))
    ours = [e for e in excinfo.traceback if str(e.path) == item_path]
    suite = [e for e in excinfo.traceback if str(e.path).startswith(str(REPO))]
    entries = ours or suite or list(excinfo.traceback)
    if not entries:
        return item.nodeid
    entry = entries[-1]
    try:
        where = Path(entry.path).resolve().relative_to(REPO)
    except ValueError:
        where = Path(entry.path)
    return f"{where}:{entry.lineno + 1}"


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
    else:
        reason = str(report.longrepr or "")
    return reason.removeprefix("Skipped: ")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.passed and report.when != "call":
        return report
    ids = requirements_of(item)
    # The item's one list, shared by its phase reports; junit.xml writes it once, at teardown.
    if "requirements" not in dict(report.user_properties):
        report.user_properties.append(("requirements", " ".join(ids)))
    # A plain attribute: xdist ships a report's whole __dict__ to the controller as JSON.
    extra: dict[str, object] = {"requirements": list(ids)}
    if report.failed and call.excinfo is not None:
        extra["message"] = failure_message(call.excinfo, item)
        extra["traceback"] = report.longreprtext[-TRACEBACK_LIMIT:]
        rec = item.stash.get(RECORDER, None)
        if rec is not None and rec.exchanges:
            exchanges = [e.to_dict() for e in rec.exchanges[-10:]]
            extra["exchanges"] = exchanges
            props = [p for p in report.user_properties if p[0] != "conformance_exchanges"]
            props.append(("conformance_exchanges", json.dumps(exchanges)))
            report.user_properties[:] = props
    elif report.skipped:
        extra["message"] = _skip_reason(report)
    report.conformance = extra  # type: ignore[attr-defined]
    return report


class ReportCollector:
    """Keeps every phase report in the controller (xdist hands the workers' reports to it)."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.phase_reports.setdefault(report.nodeid, []).append(report)


def _merge(nodeid: str, reports: list[pytest.TestReport], masker: Masker) -> TestOutcome | None:
    """One outcome from a test's setup, call and teardown reports. A failure in any phase counts
    (a teardown error after a passing call is an error of the test, not a pass)."""
    requirements: tuple[str, ...] = ()
    failures: list[tuple[str, Mapping[str, Any]]] = []
    skipped: Mapping[str, Any] | None = None
    passed_call = False
    for rep in reports:
        extra = getattr(rep, "conformance", None)
        if not isinstance(extra, Mapping):
            extra = {}
        ids = extra.get("requirements") or str(dict(rep.user_properties).get("requirements", ""))
        if ids and not requirements:
            requirements = tuple(ids.split() if isinstance(ids, str) else ids)
        if rep.failed:
            failures.append((rep.when, extra or {"message": rep.longreprtext[-TRACEBACK_LIMIT:]}))
        elif rep.skipped and skipped is None:
            skipped = extra or {"message": _skip_reason(rep)}
        elif rep.when == "call" and rep.passed:
            passed_call = True
    if not requirements:
        return None
    duration = sum(r.duration for r in reports)
    if failures:
        outcome: Outcome = "failed" if any(when == "call" for when, _ in failures) else "error"
        messages = [
            (str(extra.get("message", "")) if when == "call" else f"{when}: {extra.get('message')}")
            for when, extra in failures
        ]
        exchanges: list[Mapping[str, Any]] = []
        for _, extra in failures:
            exchanges = list(extra.get("exchanges") or exchanges)
        return TestOutcome(
            nodeid=nodeid,
            outcome=outcome,
            requirements=requirements,
            duration_s=duration,
            message=masker.text("\n".join(messages)),
            exchanges=tuple(_masked_exchange(e, masker) for e in exchanges),
            traceback=masker.text(
                "\n".join(str(extra.get("traceback", "")) for _, extra in failures).strip()
            ),
        )
    if skipped is not None:
        reason = str(skipped.get("message", ""))
        return TestOutcome(
            nodeid=nodeid,
            outcome="skipped",
            requirements=requirements,
            duration_s=duration,
            message=masker.text(without_needs_tag(deviations.without_tag(reason))),
            needs=needed_keys(reason),
            deviation=deviations.is_deviation(reason),
        )
    if passed_call:
        return TestOutcome(
            nodeid=nodeid, outcome="passed", requirements=requirements, duration_s=duration
        )
    return None


def _masked_exchange(data: Mapping[str, Any], masker: Masker) -> Exchange:
    exchange = Exchange.from_dict(data)
    return replace(
        exchange,
        url=masker.text(exchange.url),
        request_headers={k: masker.text(v) for k, v in exchange.request_headers.items()},
        request_body=masker.text(exchange.request_body),
        response_headers={k: masker.text(v) for k, v in exchange.response_headers.items()},
        response_body=masker.text(exchange.response_body),
    )


def collected_outcomes(state: RunState) -> list[TestOutcome]:
    merged = (_merge(n, reps, state.masker) for n, reps in state.phase_reports.items())
    return [o for o in merged if o is not None]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if hasattr(config, "workerinput") or exitstatus in (
        pytest.ExitCode.USAGE_ERROR,
        pytest.ExitCode.INTERNAL_ERROR,
    ):
        # A run stopped before checking anything (the reference server did not start, say)
        # must not leave a report that reads as a verdict.
        return
    state = config.stash[STATE]
    outcomes = collected_outcomes(state)
    if not outcomes and config.getoption("--collect-only", False):
        return
    report = build_report(
        state.catalog,
        outcomes,
        target=state.target,
        apis=state.apis,
        started_at=state.started_at,
        finished_at=_now(),
        req_prefixes=state.req_prefixes,
        enforce_decisions=state.enforce_decisions,
    )
    out = Path(config.getoption("--report-dir"))
    out.mkdir(parents=True, exist_ok=True)
    write_json(report, out / "conformance.json")
    write_html(report, out / "conformance.html")
    config.stash[SUMMARY] = report
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return  # an interrupted run keeps saying so, whatever its partial report reads
    verdict = str(report["verdict"])
    status = EXIT_STATUS[verdict]
    if verdict == "incomplete" and config.getoption("--allow-incomplete"):
        status = 0
    if config.getoption("--require-coverage") and not state.req_prefixes:
        untested = [
            str(r["id"])
            for r in report["requirements"]  # type: ignore[attr-defined]
            if r["status"] == "untested"
        ]
        if untested:
            config.stash[UNTESTED] = untested
            status = 1
    session.exitstatus = status


SUMMARY = pytest.StashKey[dict[str, object]]()
UNTESTED = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    report = config.stash.get(SUMMARY, None)
    if report is None:
        return
    out = Path(config.getoption("--report-dir"))
    verdict = str(report["verdict"])
    line = terminalreporter.line
    terminalreporter.section("conformance")
    colour = {"conformant": "green", "not conformant": "red"}.get(verdict, "yellow")
    line(f"verdict: {verdict}", **{colour: True, "bold": True})
    if report.get("req"):
        line(f"scope: --req {' '.join(str(r) for r in report['req'])}")  # type: ignore[attr-defined]
    failed_must = must_failures(report)
    if failed_must:
        line("failed MUST requirements:")
        for req_id in failed_must:
            line(f"  {req_id}")
    unchecked = not_checked(report)
    if unchecked:
        line(f"MUST requirements not checked ({len(unchecked)}):")
        not_run = [str(e["id"]) for e in unchecked if e["status"] == "untested"]
        for entry in unchecked:
            if entry["status"] == "untested":
                continue
            needs = [str(k) for k in entry.get("needs", [])]  # type: ignore[attr-defined]
            hint = f"; add to the profile: {', '.join(needs)}" if needs else ""
            line(f"  {entry['id']}: {entry['status']}, {entry['reason']}{hint}")
            skips = entry.get("skips", [])
            for reason in list(dict.fromkeys(str(s["reason"]) for s in skips))[:3]:  # type: ignore[attr-defined]
                line(f"      skipped: {reason}")
        if not_run:
            line(f"  no test ran ({len(not_run)}; deselected, or none exists):")
            for req_id in not_run:
                line(f"    {req_id}")
    recorded: list[Mapping[str, object]] = list(report.get("deviations") or [])  # type: ignore[call-overload]
    if recorded:
        line(f"recorded deviations (the live system's answers the spec records): {len(recorded)}")
        for entry in recorded:
            line(f"  {entry['id']}: {entry['what']}")
    info = [r for r in report["requirements"] if r.get("informational")]  # type: ignore[attr-defined]
    if info:
        by_status: dict[str, int] = {}
        for r in info:
            by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
        counted = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
        line(
            f"reference decisions (informational, never fatal under --decisions inform): {counted}"
        )
        for r in info:
            if r["status"] == "fail":
                line(f"  the target chose differently: {r['id']}")
    summary = report["summary"]
    line(f"counts: {json.dumps(summary['totals'])}")  # type: ignore[index]
    untested = config.stash.get(UNTESTED, [])
    if untested:
        line("requirements without any test (--require-coverage):", red=True)
        for req_id in untested:
            line(f"  {req_id}")
    if verdict == "incomplete":
        if config.getoption("--allow-incomplete"):
            line("incomplete verdict allowed (--allow-incomplete): exit status 0")
        else:
            line(
                f"exit status {EXIT_INCOMPLETE}: incomplete; extend the profile, or pass "
                "--allow-incomplete to accept a partial check"
            )
    line(f"reports: {out / 'conformance.html'}, {out / 'conformance.json'}")
