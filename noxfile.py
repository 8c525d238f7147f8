"""Sessions: `nox -s conformance` (the main job), `nox -s tests` (everything CI gates on),
`nox -s mock` (the reference server for frontend work)."""

from __future__ import annotations

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
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("python", "-m", "pytest", "tests", "-n", "2", *session.posargs)
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
def mock(session: nox.Session) -> None:
    """Serve the reference server: nox -s mock -- [--port 8080] [--api auvy] [--profile FILE]."""
    session.install("-e", ".")
    session.run("python", "-m", "mock_server", *session.posargs)
