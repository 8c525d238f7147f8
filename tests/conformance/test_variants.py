"""The suite accepts every allowed answer: the reference server is started as another conformant
implementation (each preset of mock_server.variants: other choices where the documents leave one,
other wire framings, latency, slow jobs), the WHOLE suite is run against it as a foreign target,
and the run must be conformant. With tests/conformance/test_faults.py (every fault is caught)
this is the proof that the verdict is worth trusting on a deployment that is not ours.

Decision requirements are informational against a `--target`: a variant is free to decide
otherwise (the "choices" preset does so on purpose), so their failures are printed, not failed.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.server import ReferenceServer
from conformance.webhooks import HOOK_PATH
from mock_server.variants import PRESETS
from tests.conformance.suite_run import pytest_run

REPO = Path(__file__).resolve().parents[2]
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"
REFERENCE_PROFILE = REPO / "fixtures" / "reference.toml"

# The presets, grouped into server starts: each group is itself a conformant implementation (its
# presets set different switches), so one whole-suite run proves every preset in it, and three
# runs instead of five keep the gate short. Grouped by cost: the CPU-bound framings with the
# choices, the time-bound presets apart, where more inner workers than cores wait in parallel.
RUNS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("choices", "wire"), 2),
    (("wire-cr", "slow"), 8),
    (("latency", "strait-live"), 8),
)
# A whole run took 70-180 s on a busy 2-core machine; far beyond that something hangs.
RUN_TIMEOUT_S = 900


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def target_profile(tmp_path: Path, webhook_port: int) -> Path:
    """fixtures/reference.toml with a fixed webhook port: against a --target the suite cannot
    tell the server where to call back, so the server is started with that URL and the webhook
    checks run instead of skipping (a skip would leave the verdict incomplete)."""
    text = REFERENCE_PROFILE.read_text(encoding="utf-8")
    text, listens = re.subn(
        r'^listen\s*=\s*"[^"]*"',
        f'listen = "127.0.0.1:{webhook_port}"',
        text,
        flags=re.MULTILINE,
    )
    assert listens == 1, "fixtures/reference.toml no longer has one ava.webhooks listen line"
    # Relative to the profile's own directory, which the copy is not in.
    text = re.sub(
        r'^server_profile\s*=\s*"[^"]*"',
        f"server_profile = {json.dumps(str(CI_PROFILE))}",
        text,
        flags=re.MULTILINE,
    )
    path = tmp_path / "target.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_suite(
    target: str, profile: Path, report_dir: Path, workers: int
) -> subprocess.CompletedProcess[str]:
    return pytest_run(
        "conformance",
        "-q",
        "-n",
        str(workers),
        "--target",
        target,
        "--profile",
        str(profile),
        f"--report-dir={report_dir}",
        xdist=True,
        timeout=RUN_TIMEOUT_S,
    )


def problems_of(report: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(what fails the run, what is only informational), one line each with its message."""
    informational = {r["id"] for r in report["requirements"] if r.get("informational")}
    failing: list[str] = []
    noted: list[str] = []
    for requirement in report["requirements"]:
        if requirement["status"] not in ("fail", "partial"):
            continue
        first = (requirement.get("failures") or [{}])[0]
        line = f"{requirement['id']} [{requirement['status']}]: {first.get('message', '')[:400]}"
        (noted if requirement["id"] in informational else failing).append(line)
    for test in report["tests"]:
        if test["outcome"] not in ("failed", "error"):
            continue
        # A test marked only with informational requirements may fail without failing the run.
        if set(test["requirements"]) <= informational and test["requirements"]:
            continue
        failing.append(f"{test['nodeid']} [{test['outcome']}]: {test.get('message', '')[:400]}")
    return failing, noted


def test_every_preset_runs_once_and_no_group_sets_one_switch_twice() -> None:
    grouped = [preset for presets, _ in RUNS for preset in presets]
    assert sorted(grouped) == sorted(PRESETS), "a preset the gate never runs, or runs twice"
    for presets, _ in RUNS:
        switches = [
            (area, key) for preset in presets for area, table in PRESETS[preset].items()
            for key in table
        ]  # fmt: skip
        assert len(switches) == len(set(switches)), f"{presets} set one switch twice"


@pytest.mark.parametrize(("presets", "workers"), RUNS, ids=["+".join(p) for p, _ in RUNS])
def test_the_whole_suite_passes_against_a_variant(
    presets: tuple[str, ...], workers: int, tmp_path: Path
) -> None:
    port = free_port()
    profile = target_profile(tmp_path, port)
    hook = f"http://127.0.0.1:{port}{HOOK_PATH}"
    began = time.monotonic()
    args = (*(arg for preset in presets for arg in ("--variant", preset)), "--ava-webhook", hook)
    name = " + ".join(presets)
    with ReferenceServer(CI_PROFILE, extra_args=args) as server:
        result = run_suite(server.url, profile, tmp_path / "reports", workers)
    took = time.monotonic() - began
    report_path = tmp_path / "reports" / "conformance.json"
    assert report_path.exists(), (
        f"no report after {took:.0f}s (exit {result.returncode}):\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-2000:]}"
    )
    report = json.loads(report_path.read_text())
    failing, noted = problems_of(report)
    # Shown with -s or on failure: how long the gate spends here, and what the variant decided
    # otherwise than the reference.
    print(f"variant {name}: {took:.0f}s, verdict {report['verdict']}")
    for line in noted:
        print(f"  informational: {line}")
    detail = "\n".join(failing) or result.stdout[-3000:]
    assert not failing, f"the suite rejects the conformant variant {name!r}:\n{detail}"
    assert report["verdict"] == "conformant", f"verdict {report['verdict']!r}:\n{detail}"
    assert result.returncode == 0, f"exit {result.returncode}:\n{detail}"
    tests = report["summary"]["tests"]
    assert tests["total"] > 0 and tests["passed"] > 0, tests
