"""Sessions: `nox -s conformance` (the main job), `nox -s tests` (everything CI gates on),
`nox -s mock` (the reference server for frontend work), `nox -s monitor` (the conformance
monitor, a checking reverse proxy), `nox -s bench` (benchmarks),
`nox -s redis` (the Redis store with several workers)."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]

REPORTS = "reports"


@nox.session
def conformance(session: nox.Session) -> None:
    """Run every conformance suite; with no --target, against the bundled reference server.

    nox -s conformance -- --target https://api.example.com --profile my-profile.toml [--api auvy]
    """
    session.install("-e", ".[conformance]")
    session.run("python", "-m", "pytest", "conformance", "-p", "no:randomly", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Lint, type-check, unit tests and spec validation, then the conformance suite against the
    reference server (in parallel, as CI would run it)."""
    session.install("-e", ".[dev]")
    ensure_chromium(session)
    ensure_redis_server(session)
    ensure_haproxy(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run(
        "python", "-m", "pytest", "tests", "-n", "2", "-m", "not redis_suite", *session.posargs
    )
    session.run(
        "python",
        "-m",
        "pytest",
        "conformance",
        "-n",
        "2",
        "--require-coverage",
        f"--report-dir={REPORTS}",
    )


@nox.session
def redis(session: nox.Session) -> None:
    """The Redis store's tests, including the whole conformance suite against two workers
    sharing one redis-server, and through haproxy against two separate server processes (minutes
    long, so outside the tests gate)."""
    session.install("-e", ".[dev]")
    ensure_redis_server(session)
    ensure_haproxy(session)
    session.run("python", "-m", "pytest", "tests/redis", *session.posargs)


def ensure_redis_server(session: nox.Session, users: str = "tests/redis") -> None:
    """tests/redis and the benchmark's Redis scenario run a real redis-server (Debian's
    package)."""
    present = shutil.which("redis-server") is not None
    ensure_debian_package(session, "redis-server", present, users)


def ensure_haproxy(session: nox.Session) -> None:
    """The several-hosts tests (tests/redis/test_hosts*.py) balance two server processes with a
    real haproxy (Debian's package, in /usr/sbin)."""
    present = shutil.which("haproxy") is not None or os.path.exists("/usr/sbin/haproxy")
    ensure_debian_package(session, "haproxy", present, "the several-hosts tests")


def ensure_chromium(session: nox.Session) -> None:
    """The browser tests drive Debian's Chromium (never a Playwright download)."""
    present = os.path.exists("/usr/bin/chromium") or shutil.which("chromium") is not None
    ensure_debian_package(session, "chromium", present, "the browser tests")


def ensure_debian_package(session: nox.Session, package: str, present: bool, users: str) -> None:
    """Install `package` when missing and we may (root with apt-get); otherwise warn, and the
    tests that need it skip with the reason."""
    if present:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        session.warn(f"{package} is missing and cannot be installed here: {users} will skip")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", "-qq", external=True, env=env, success_codes=[0, 100])
    session.run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        package,
        external=True,
        env=env,
        success_codes=[0, 100],
    )


@nox.session
def mock(session: nox.Session) -> None:
    """Serve the reference server: nox -s mock -- [--port 8080] [--api auvy] [--profile FILE]."""
    session.install("-e", ".")
    session.run("python", "-m", "mock_server", *session.posargs)


@nox.session
def monitor(session: nox.Session) -> None:
    """The conformance monitor: a reverse proxy checking real traffic against the catalog.

    nox -s monitor -- --upstream https://staging.example.com --listen 127.0.0.1:9000
        [--api auvy] [--profile FILE] [--report-dir DIR]
    """
    # The conformance extra: the monitor reuses the suite's profile, catalog and checks.
    session.install("-e", ".[conformance]")
    session.run("python", "-m", "monitor", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Bounded benchmarks of the reference server, each figure beside its baseline taken in the
    same run: reports/bench.json and reports/bench.md. Not part of `tests`: figures are reported,
    never asserted.

    nox -s bench -- [--quick] [--only throughput] [--loop asyncio] [--http h11]
    """
    session.install("-e", ".[bench,redis]")  # the redis scenario runs the Redis store
    ensure_redis_server(session, "the benchmark's redis scenario")
    session.run("python", "-m", "bench", f"--report-dir={REPORTS}", *session.posargs)
