"""The verdict a run ends with, and the exit status that carries it.

Unit tests fold outcomes onto a small catalog (pass, partial, fail, teardown error, untested,
informational decisions, incomplete); subprocess runs check the plugin end to end: tiny suites
of their own (teardown errors, deadlines, messages, masking, decisions), then the real suite
against a started reference server with a partial profile (incomplete, exit 6) and the full one.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from conformance.plugin import EXIT_INCOMPLETE
from conformance.profile import TargetProfile, needed_keys, needs_tag
from conformance.report import TestOutcome, build_report, not_checked, write_html
from conformance.requirements import (
    Authority,
    Catalog,
    ConformanceClass,
    Level,
    Requirement,
    load_catalog,
)
from conformance.server import ReferenceServer
from tests.conformance.suite_run import pytest_run

REPO = Path(__file__).resolve().parents[2]
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"

# --- build_report --------------------------------------------------------------------------------

CLASS = ConformanceClass("auvy-x", "auvy", "AUVY x")
SPEC: list[tuple[str, Level, Authority]] = [
    ("auvy.x.doc", "MUST", "document"),
    ("auvy.x.facts", "MUST", "facts"),
    ("auvy.x.should", "SHOULD", "document"),
    ("auvy.x.choice", "MUST", "decision"),
]
DOC, FACTS, SHOULD, CHOICE = (rid for rid, _, _ in SPEC)


def catalog() -> Catalog:
    return Catalog(
        classes={CLASS.id: CLASS},
        requirements={
            rid: Requirement(
                rid,
                level,
                CLASS.id,
                "FACTS.md" if authority == "facts" else "doc.txt",
                f"The sentence behind {rid}.",
                note="our choice" if authority == "decision" else "",
                authority=authority,
            )
            for rid, level, authority in SPEC
        },
    )


def run(nodeid: str, outcome: str, *reqs: str, message: str = "") -> TestOutcome:
    return TestOutcome.from_dict(
        {
            "nodeid": nodeid,
            "outcome": outcome,
            "requirements": list(reqs),
            "duration_s": 0.1,
            "message": message,
            "needs": list(needed_keys(message)),
        }
    )


def fold(
    outcomes: list[TestOutcome], *, enforce: bool = True, req: tuple[str, ...] = ()
) -> dict[str, object]:
    return build_report(
        catalog(),
        outcomes,
        target="http://t",
        apis=["auvy"],
        started_at="s",
        finished_at="f",
        req_prefixes=req,
        enforce_decisions=enforce,
    )


def entries(report: Mapping[str, object]) -> dict[str, dict[str, object]]:
    listed = report["requirements"]
    assert isinstance(listed, list)
    return {e["id"]: e for e in listed}


def all_pass(*skip: str) -> list[TestOutcome]:
    return [run(f"t::{rid}", "passed", rid) for rid, _, _ in SPEC if rid not in skip]


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        (["passed", "passed"], "pass"),
        (["passed", "skipped"], "partial"),
        (["skipped", "skipped"], "skip"),
        (["passed", "error"], "fail"),  # a teardown error is an error of the test
        (["skipped", "failed"], "fail"),
        ([], "untested"),
    ],
)
def test_a_requirement_passes_only_when_every_test_of_it_ran_and_passed(
    outcomes: list[str], status: str
) -> None:
    report = fold([run(f"t::{i}", o, DOC) for i, o in enumerate(outcomes)] + all_pass(DOC))
    assert entries(report)[DOC]["status"] == status


def test_conformant_only_when_every_must_passed() -> None:
    report = fold(all_pass())
    assert report["verdict"] == "conformant"
    assert not_checked(report) == []


def test_a_failed_must_is_not_conformant_even_when_others_are_unchecked() -> None:
    report = fold([run("t::a", "failed", DOC), run("t::b", "skipped", FACTS)])
    assert report["verdict"] == "not conformant"


@pytest.mark.parametrize("outcome", ["skipped", "partial", "untested"])
def test_an_unchecked_must_makes_the_verdict_incomplete(outcome: str) -> None:
    reason = f"the profile has no auvy.keys.main {needs_tag(('auvy.keys.main',))}"
    extra = {
        "skipped": [run("t::s", "skipped", FACTS, message=reason)],
        "partial": [
            run("t::p", "passed", FACTS),
            run("t::s", "skipped", FACTS, message=reason),
        ],
        "untested": [],
    }[outcome]
    report = fold(all_pass(FACTS) + extra)
    assert report["verdict"] == "incomplete"
    [entry] = not_checked(report)
    assert entry["id"] == FACTS
    assert entry["status"] == ("skip" if outcome == "skipped" else outcome)
    assert entry["reason"]
    assert entry["needs"] == ([] if outcome == "untested" else ["auvy.keys.main"])


def test_should_failures_and_skips_never_decide_the_verdict() -> None:
    report = fold([*all_pass(SHOULD), run("t::s", "failed", SHOULD)])
    assert report["verdict"] == "conformant"
    assert fold(all_pass(SHOULD))["verdict"] == "conformant"


def test_decisions_count_when_enforced_and_are_informational_otherwise() -> None:
    outcomes = [*all_pass(CHOICE), run("t::c", "failed", CHOICE)]

    enforced = fold(outcomes, enforce=True)
    assert enforced["verdict"] == "not conformant"
    assert entries(enforced)[CHOICE]["informational"] is False

    informed = fold(outcomes, enforce=False)
    assert informed["verdict"] == "conformant"
    assert informed["decisions"] == "inform"
    entry = entries(informed)[CHOICE]
    assert (entry["status"], entry["informational"], entry["authority"]) == (
        "fail",
        True,
        "decision",
    )
    summary = informed["summary"]
    assert isinstance(summary, dict)
    assert summary["informational"]["fail"] == 1
    assert summary["by_level"]["MUST"]["fail"] == 0
    # An untested decision does not make a foreign target's verdict incomplete either.
    assert fold(all_pass(CHOICE), enforce=False)["verdict"] == "conformant"
    assert fold(all_pass(CHOICE), enforce=True)["verdict"] == "incomplete"


def test_every_requirement_shows_its_authority() -> None:
    authority = {rid: e["authority"] for rid, e in entries(fold([])).items()}
    assert authority == {rid: a for rid, _, a in SPEC}


def test_req_narrows_the_scope_of_the_verdict() -> None:
    report = fold([run("t::d", "passed", DOC)], req=("auvy.x.doc",))
    assert list(entries(report)) == [DOC]
    assert report["verdict"] == "conformant"
    assert report["req"] == ["auvy.x.doc"]


def test_a_scope_with_nothing_in_it_is_not_conformant() -> None:
    assert fold([], req=("auvy.nothing",))["verdict"] == "incomplete"


def test_html_says_incomplete_and_names_the_keys_that_would_enable_the_checks(
    tmp_path: Path,
) -> None:
    reason = f"no key {needs_tag(('auvy.keys.main', 'auvy.trace_id'))}"
    outcomes = [
        *all_pass(FACTS),
        run("t::s", "skipped", FACTS, message=reason),
        run("t::f", "failed", SHOULD, message="expected HTTP 400: got 200"),
    ]
    path = tmp_path / "r.html"
    write_html(fold(outcomes, enforce=False), path)
    page = path.read_text(encoding="utf-8")
    assert '<span class="verdict incomplete">incomplete</span>' in page
    assert '<section id="not-checked">' in page
    assert "<code>auvy.keys.main</code>, <code>auvy.trace_id</code>" in page
    assert '<span class="badge facts">facts</span>' in page
    assert '<section id="informational">' in page
    # The tests table shows the check's message itself.
    assert "<pre>expected HTTP 400: got 200</pre>" in page


def test_the_skip_tag_round_trips() -> None:
    assert needed_keys(f"why {needs_tag(('a.b',))}") == ("a.b",)
    assert needed_keys(f"why {needs_tag(('a.b', 'c'))}") == ("a.b", "c")
    assert needed_keys("an ordinary skip") == ()
    with pytest.raises(pytest.skip.Exception) as info:
        TargetProfile({}).need("ava.workers.long.id")
    assert needed_keys(str(info.value.msg)) == ("ava.workers.long.id",)


# --- the plugin, on tiny suites ------------------------------------------------------------------


def ids_of(authority: Authority, level: Level = "MUST", api: str = "auvy") -> list[str]:
    """Real catalog ids (the plugin checks markers against the packaged catalog)."""
    return [
        r.id
        for r in load_catalog().for_api(api).requirements.values()
        if r.authority == authority and r.level == level
    ]


def tiny_suite(tmp_path: Path, body: str, profile: str = "") -> tuple[Path, Path]:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text('pytest_plugins = ["conformance.plugin"]\n')
    (suite / "test_x.py").write_text(textwrap.dedent(body))
    target_profile = tmp_path / "profile.toml"
    target_profile.write_text('[auvy]\nbase_path = "/auvy"\n' + textwrap.dedent(profile))
    return suite, target_profile


def tiny_run(
    tmp_path: Path, suite: Path, profile: Path, *args: str, xdist: bool = False
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    reports = tmp_path / "reports"
    result = pytest_run(
        str(suite),
        "--target",
        "http://127.0.0.1:9",
        "--profile",
        str(profile),
        "--api",
        "auvy",
        f"--report-dir={reports}",
        *args,
        cwd=tmp_path,
        xdist=xdist,
    )
    path = reports / "conformance.json"
    assert path.exists(), result.stdout[-3000:] + result.stderr[-2000:]
    return result, json.loads(path.read_text(encoding="utf-8"))


def test_a_teardown_error_fails_the_requirement_and_the_message_is_the_checks_own(
    tmp_path: Path,
) -> None:
    one, two, three = ids_of("document")[:3]
    suite, profile = tiny_suite(
        tmp_path,
        f"""
        import pytest
        from conformance.checks import ConformanceFailure

        @pytest.fixture
        def leaky():
            yield
            raise RuntimeError("could not delete the job")

        @pytest.mark.req("{one}")
        def test_teardown(leaky):
            pass

        @pytest.mark.req("{two}")
        def test_claim():
            raise ConformanceFailure("expected HTTP 201", "got 500 with secret-token-42")

        @pytest.mark.req("{three}")
        def test_bug():
            {{}}["missing"]
        """,
        profile='[auvy.keys]\nmain = "secret-token-42"\n',
    )
    result, report = tiny_run(tmp_path, suite, profile, "--req", one, "--req", two, "--req", three)
    assert result.returncode == 1, result.stdout[-3000:]
    statuses = {rid: e["status"] for rid, e in entries(report).items()}
    assert statuses == {one: "fail", two: "fail", three: "fail"}
    tests = {t["nodeid"].rsplit("::", 1)[1]: t for t in report["tests"]}  # type: ignore[attr-defined]
    assert tests["test_teardown"]["outcome"] == "error"
    assert tests["test_teardown"]["message"].startswith(
        "teardown: RuntimeError: could not delete the job (at "
    )
    # Masking is masking.py's business; here only that the message went through it.
    assert tests["test_claim"]["message"].startswith("expected HTTP 201: got 500 with secr")
    assert "secret-token-42" not in json.dumps(report)
    assert tests["test_bug"]["message"].startswith("KeyError: 'missing' (at ")
    assert tests["test_bug"]["message"].endswith("test_x.py:20)")  # the raising line
    assert "Traceback" not in tests["test_bug"]["message"]
    assert tests["test_bug"]["traceback"]
    assert report["verdict"] == "not conformant"
    assert "verdict: not conformant" in result.stdout


SLOW_SUITE = """
import time
import pytest

@pytest.mark.req("{slow}")
def test_slow():
    try:
        time.sleep(30)
    except Exception:  # a check's own retry loop must not swallow its deadline
        time.sleep(30)

@pytest.mark.req("{fast}")
def test_after():
    pass
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["serial", "xdist"])
def test_a_test_past_its_deadline_fails_naming_its_requirements_and_the_run_goes_on(
    tmp_path: Path, xdist: bool
) -> None:
    slow, fast = ids_of("document")[:2]
    suite, profile = tiny_suite(
        tmp_path,
        SLOW_SUITE.format(slow=slow, fast=fast),
        profile="[suite]\ntest_timeout_s = 1\n",
    )
    args = ("-n", "2") if xdist else ()
    result, report = tiny_run(
        tmp_path, suite, profile, "--req", slow, "--req", fast, *args, xdist=xdist
    )
    tests = {t["nodeid"].rsplit("::", 1)[1]: t for t in report["tests"]}  # type: ignore[attr-defined]
    assert tests["test_slow"]["outcome"] == "failed", result.stdout[-3000:]
    message = tests["test_slow"]["message"]
    assert "deadline of 1 s" in message
    assert slow in message
    assert "no request recorded" in message
    assert tests["test_slow"]["duration_s"] < 10
    assert tests["test_after"]["outcome"] == "passed"
    assert result.returncode == 1


def test_a_bad_deadline_in_the_profile_is_a_usage_error(tmp_path: Path) -> None:
    [one] = ids_of("document")[:1]
    suite, profile = tiny_suite(
        tmp_path,
        f'import pytest\n\n@pytest.mark.req("{one}")\ndef test_x():\n    pass\n',
        profile="[suite]\ntest_timeout_s = 0\n",
    )
    result = pytest_run(
        str(suite), "--target", "http://127.0.0.1:9", "--profile", str(profile), cwd=tmp_path
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "test_timeout_s must be a positive number" in result.stderr


def test_a_marker_mixing_a_decision_with_a_document_requirement_is_rejected(
    tmp_path: Path,
) -> None:
    decision, document = ids_of("decision")[0], ids_of("document")[0]
    suite, profile = tiny_suite(
        tmp_path,
        f'import pytest\n\n@pytest.mark.req("{decision}", "{document}")\ndef test_x():\n    pass\n',
    )
    result = pytest_run(
        str(suite), "--target", "http://127.0.0.1:9", "--profile", str(profile), cwd=tmp_path
    )
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert "mixes decision requirements" in result.stdout + result.stderr


def test_decisions_fail_only_when_enforced(tmp_path: Path) -> None:
    decision = ids_of("decision")[0]
    suite, profile = tiny_suite(
        tmp_path,
        f'import pytest\n\n@pytest.mark.req("{decision}")\ndef test_x():\n'
        "    assert 201 == 202, 'the reference answers 201'\n",
    )
    informed, report = tiny_run(tmp_path, suite, profile, "--req", decision)
    assert report["decisions"] == "inform"  # --target: a foreign deployment by default
    assert entries(report)[decision]["informational"] is True
    assert report["verdict"] == "incomplete"  # nothing binding was in scope
    assert informed.returncode == EXIT_INCOMPLETE
    assert "chose differently" in informed.stdout

    enforced, report = tiny_run(
        tmp_path, suite, profile, "--req", decision, "--decisions", "enforce"
    )
    assert report["verdict"] == "not conformant"
    assert enforced.returncode == 1
    message = report["tests"][0]["message"]  # type: ignore[index]
    assert message.startswith("the reference answers 201"), message


def test_help_documents_the_incomplete_exit_status(tmp_path: Path) -> None:
    suite, _ = tiny_suite(tmp_path, "")
    result = pytest_run(str(suite), "--help", cwd=tmp_path)
    assert "--allow-incomplete" in result.stdout
    assert f"exits with status {EXIT_INCOMPLETE}" in " ".join(result.stdout.split())
    assert "--decisions={enforce,inform}" in result.stdout


# --- the real suite against a started reference server -------------------------------------------


@pytest.fixture(scope="module")
def server() -> object:
    with ReferenceServer(CI_PROFILE) as running:
        yield running


PARTIAL_AVA = """
[ava]
base_path = "/ava"
secret = "ava_test_internal_secret"

[ava.identities.main]
tenant_id = "ten_acme"
user_id = "usr_acme_ops"
role = "tenant-system-admin"
"""


def real_run(
    server: ReferenceServer, tmp_path: Path, profile: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    reports = tmp_path / "reports"
    result = pytest_run(
        "conformance",
        "--target",
        server.url,
        "--profile",
        str(profile),
        f"--report-dir={reports}",
        "--junitxml",
        str(tmp_path / "junit.xml"),
        *args,
    )
    path = reports / "conformance.json"
    assert path.exists(), result.stdout[-3000:] + result.stderr[-2000:]
    return result, json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("allow", [False, True], ids=["strict", "allow-incomplete"])
def test_a_partial_profile_gives_an_incomplete_verdict_naming_the_keys(
    server: ReferenceServer, tmp_path: Path, allow: bool
) -> None:
    profile = tmp_path / "partial.toml"
    profile.write_text(PARTIAL_AVA)
    args = ["--api", "ava", "--req", "ava.jobs.cancel"] + (["--allow-incomplete"] if allow else [])
    result, report = real_run(server, tmp_path, profile, *args)
    assert report["verdict"] == "incomplete", result.stdout[-3000:]
    assert result.returncode == (0 if allow else EXIT_INCOMPLETE), result.stdout[-3000:]
    needs = {k for entry in not_checked(report) for k in entry["needs"]}  # type: ignore[attr-defined]
    assert any(k.startswith("ava.workers.") for k in needs), not_checked(report)
    assert "MUST requirements not checked" in result.stdout
    assert "add to the profile: ava.workers." in result.stdout
    page = (tmp_path / "reports" / "conformance.html").read_text(encoding="utf-8")
    assert '<span class="verdict incomplete">incomplete</span>' in page
    assert "<code>ava.workers." in page


def test_the_full_reference_profile_on_a_small_scope_is_conformant(
    server: ReferenceServer, tmp_path: Path
) -> None:
    from conformance.profile import REFERENCE_PROFILE

    result, report = real_run(
        server,
        tmp_path,
        REFERENCE_PROFILE,
        "--api",
        "ava",
        "--req",
        "ava.jobs.cancel",
        "--decisions",
        "enforce",
    )
    assert report["verdict"] == "conformant", result.stdout[-3000:]
    assert result.returncode == 0
    assert {e["status"] for e in entries(report).values()} == {"pass"}
