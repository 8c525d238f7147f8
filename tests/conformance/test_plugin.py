"""The runner's own rules, each seen from the outside (a pytest subprocess): every check names a
known requirement, --req selects by id prefix, --require-coverage refuses untested requirements,
and a SHOULD-only failure does not fail the run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.server import ReferenceServer
from tests.conformance.suite_run import pytest_run

REPO = Path(__file__).resolve().parents[2]
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"


@pytest.fixture(scope="module")
def server() -> Iterator[ReferenceServer]:
    with ReferenceServer(CI_PROFILE) as running:
        yield running


def write_suite(tmp_path: Path, body: str) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["conformance.plugin"]\n')
    (suite / "test_x.py").write_text("import pytest\n\n" + body)
    return suite


@pytest.mark.parametrize(
    "body,complaint",
    [
        ("def test_unmarked() -> None:\n    pass\n", "no @pytest.mark.req"),
        (
            '@pytest.mark.req("auvy.jobs.cancel.terminal-4OO")\ndef test_typo() -> None:\n'
            "    pass\n",
            "auvy.jobs.cancel.terminal-400",  # the closest known id is suggested
        ),
    ],
    ids=["unmarked", "unknown-id"],
)
def test_every_check_must_name_a_known_requirement(
    tmp_path: Path, body: str, complaint: str
) -> None:
    suite = write_suite(tmp_path, body)
    result = pytest_run(
        str(suite), "--target", "http://127.0.0.1:9", f"--report-dir={tmp_path}", cwd=tmp_path
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert complaint in result.stdout + result.stderr


def test_req_selects_by_prefix_and_require_coverage_names_the_gaps(
    server: ReferenceServer, tmp_path: Path
) -> None:
    result = pytest_run(
        "conformance",
        "--target",
        server.url,
        "--req",
        "auvy.jobs.cancel",
        f"--report-dir={tmp_path}",
        "--junitxml",
        str(tmp_path / "junit.xml"),
    )
    assert result.returncode == 0, result.stdout[-2000:]
    report = json.loads((tmp_path / "conformance.json").read_text())
    assert report["tests"], "nothing ran"
    for test in report["tests"]:
        assert any(r.startswith("auvy.jobs.cancel") for r in test["requirements"]), test

    partial = pytest_run(
        "conformance",
        "--target",
        server.url,
        "--api",
        "auvy",
        "-k",
        "test_list_shape",
        "--require-coverage",
        f"--report-dir={tmp_path}",
        "--junitxml",
        str(tmp_path / "j2.xml"),
    )
    assert partial.returncode == 1, partial.stdout[-2000:]
    assert "requirements without any test" in partial.stdout
    assert "auvy.stream.keepalive" in partial.stdout


def test_a_should_failure_is_reported_but_does_not_fail_the_run(tmp_path: Path) -> None:
    with ReferenceServer(CI_PROFILE, extra_args=("--fault", "stream-stays-open")) as faulty:
        result = pytest_run(
            "conformance",
            "--target",
            faulty.url,
            "--req",
            "auvy.stream.ends-after-terminal",
            f"--report-dir={tmp_path}",
            "--junitxml",
            str(tmp_path / "junit.xml"),
        )
    report = json.loads((tmp_path / "conformance.json").read_text())
    status = {r["id"]: r["status"] for r in report["requirements"]}
    assert status["auvy.stream.ends-after-terminal"] == "fail"
    assert report["verdict"] == "conformant"  # only MUST failures decide the verdict
    assert result.returncode == 0, result.stdout[-2000:]


def test_a_reference_server_that_cannot_start_stops_the_run_with_its_output(
    tmp_path: Path,
) -> None:
    server_profile = tmp_path / "server.toml"
    server_profile.write_text("[auvy]\nstep_ms = 'fast'\n")
    target_profile = tmp_path / "target.toml"
    target_profile.write_text(
        f'[reference]\nserver_profile = "{server_profile.as_posix()}"\n\n'
        '[auvy]\nbase_path = "/auvy"\n'
    )
    suite = write_suite(
        tmp_path,
        '@pytest.mark.req("auvy.jobs.cancel.terminal-400")\ndef test_x() -> None:\n    pass\n',
    )
    result = pytest_run(
        str(suite), "--profile", str(target_profile), f"--report-dir={tmp_path}", cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "reference server exited at start-up" in output
    assert "step_ms must be a non-negative integer" in output  # what the server said
    assert not (tmp_path / "conformance.json").exists(), "a run that checked nothing left a verdict"


def test_the_live_wire_is_reported_as_recorded_deviations(tmp_path: Path) -> None:
    with ReferenceServer(CI_PROFILE, extra_args=("--variant", "strait-live")) as live:
        result = pytest_run(
            "conformance",
            "--target",
            live.url,
            "--req",
            "strait.decision",
            # A requirement the live shape meets: it passes, whatever the deviations.
            "--req",
            "strait.list.runs",
            f"--report-dir={tmp_path}",
            "--junitxml",
            str(tmp_path / "junit.xml"),
        )
    report = json.loads((tmp_path / "conformance.json").read_text())
    seen = {d["id"]: d["what"] for d in report["deviations"]}
    assert set(seen) == {
        "strait.decision.cancel-204",
        "strait.decision.pause-waiting",
        "strait.decision.list-plain-array",
    }, result.stdout[-2000:]
    assert (
        "2 of 2 lists answer {data, next_cursor, has_more}"
        in seen["strait.decision.list-plain-array"]
    )
    status = {r["id"]: r["status"] for r in report["requirements"]}
    assert {status[i] for i in seen} == {"skip"}, "a recorded deviation is neither pass nor fail"
    assert status["strait.list.runs"] == "pass" and report["verdict"] == "conformant"
    assert "recorded deviations (the live system's answers the spec records): 3" in result.stdout
    assert result.returncode == 0, result.stdout[-2000:]
