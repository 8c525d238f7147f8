"""The monitor's reports: the suite's three files, marked as observed traffic, with each
requirement pass, fail (with its exchanges) or unobserved."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.masking import Masker
from conformance.requirements import load_catalog
from monitor import report
from monitor.checks import MONITORED
from monitor.exchange import Exchange
from monitor.ledger import Ledger

KEY = "auvy_test_secret_key_123"


def ledger_with_one_of_each() -> Ledger:
    ledger = Ledger(Masker([KEY]), "http://upstream")
    ledger.held("auvy.stream.ids")
    ledger.held("auvy.stream.ids")
    exchange = Exchange(
        seq=1,
        method="POST",
        path="/auvy/v1/jobs/j/cancel",
        query="",
        request_headers={"authorization": f"Bearer {KEY}"},
        status=200,
        response_headers={"content-type": "application/json"},
        response_body=b"{}",
    )
    ledger.held("auvy.jobs.cancel.terminal-400")
    ledger.broke("auvy.jobs.cancel.terminal-400", f"cancel with {KEY} answered 200", exchange)
    return ledger


def test_statuses_are_pass_fail_or_unobserved(tmp_path: Path) -> None:
    data = report.build(
        ledger_with_one_of_each(),
        load_catalog(),
        upstream="http://upstream",
        apis=["auvy"],
        started_at="2026-12-05T08:00:00+00:00",
        finished_at="2026-12-05T08:01:00+00:00",
        decisions=False,
    )
    statuses = {r["id"]: r["status"] for r in data["requirements"]}
    assert set(statuses) == set(MONITORED["auvy"])
    assert statuses["auvy.stream.ids"] == "pass"
    assert statuses["auvy.jobs.cancel.terminal-400"] == "fail"
    assert statuses["auvy.stream.after-exclusive"] == "unobserved"
    assert data["mode"] == "monitor"
    assert data["verdict"] == "not conformant"
    assert report.must_failures(data) == ["auvy.jobs.cancel.terminal-400"]
    failed = next(r for r in data["requirements"] if r["id"] == "auvy.jobs.cancel.terminal-400")
    assert failed["observations"] == 2 and failed["violations"] == 1
    assert failed["failures"][0]["exchanges"][0]["url"].endswith("/cancel")

    report.write(data, tmp_path)
    for name in ("conformance.json", "conformance.html", "junit.xml"):
        assert KEY not in (tmp_path / name).read_text(encoding="utf-8"), name
    assert json.loads((tmp_path / "conformance.json").read_text())["mode"] == "monitor"
    assert "observed traffic" in (tmp_path / "conformance.html").read_text()
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["auvy.jobs.cancel.terminal-400"].find("failure") is not None
    assert cases["auvy.stream.after-exclusive"].find("skipped") is not None
    passed = cases["auvy.stream.ids"]
    assert passed.find("failure") is None and passed.find("skipped") is None


def test_no_violation_and_everything_observed_is_conformant_of_what_is_checked() -> None:
    ledger = Ledger(Masker(), "http://upstream")
    for requirement in MONITORED["ava"]:
        ledger.held(requirement)
    data = report.build(
        ledger,
        load_catalog(),
        upstream="http://upstream",
        apis=["ava"],
        started_at="a",
        finished_at="b",
        decisions=False,
    )
    assert data["verdict"] == "conformant"
    unobserved = report.build(
        Ledger(Masker(), "u"),
        load_catalog(),
        upstream="u",
        apis=["ava"],
        started_at="a",
        finished_at="b",
        decisions=False,
    )
    assert unobserved["verdict"] == "incomplete"
    assert {r["status"] for r in unobserved["requirements"]} == {"unobserved"}
