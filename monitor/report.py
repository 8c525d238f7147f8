"""The monitor's reports: the suite's junit.xml, conformance.json and conformance.html, built
from what the traffic showed and marked as such (`"mode": "monitor"`).

Scope: the requirements the monitor can observe (`checks.MONITORED`) of the selected APIs. Each
is `pass` (exercised by the traffic, and it held every time), `fail` (the violations, with the
exchanges that showed them, credentials masked) or `unobserved` (nothing in the traffic exercised
it). The verdict follows the suite's rule: `not conformant` when a MUST failed, else
`incomplete`, since observed traffic proves nothing about what it never did, unless every MUST
in scope was observed and held (`conformant` then means: of what the monitor checks).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance import report as suite_report
from conformance.requirements import Catalog

from .checks import MONITORED
from .ledger import Ledger

MODE = "monitor"


def in_scope(apis: Sequence[str]) -> list[str]:
    return [req for api in apis for req in MONITORED[api]]


def build(
    ledger: Ledger,
    catalog: Catalog,
    *,
    upstream: str,
    apis: Sequence[str],
    started_at: str,
    finished_at: str,
    decisions: bool,
    stats: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    outcomes: list[suite_report.TestOutcome] = []
    scope = in_scope(apis)
    for req in scope:
        if not ledger.observed[req]:
            continue
        violations = ledger.violations.get(req, [])
        held = ledger.observed[req] - ledger.failed[req]
        if violations:
            for number, violation in enumerate(violations, start=1):
                outcomes.append(
                    suite_report.TestOutcome(
                        nodeid=f"monitor::{req}::violation-{number}",
                        outcome="failed",
                        requirements=(req,),
                        duration_s=0.0,
                        message=f"{violation.at} {violation.full_message()}",
                        exchanges=violation.exchanges,
                    )
                )
        else:
            outcomes.append(
                suite_report.TestOutcome(
                    nodeid=f"monitor::{req}",
                    outcome="passed",
                    requirements=(req,),
                    duration_s=0.0,
                    message=f"held in {held} observation(s)",
                )
            )
    data: dict[str, Any] = suite_report.build_report(
        catalog,
        outcomes,
        target=upstream,
        apis=apis,
        started_at=started_at,
        finished_at=finished_at,
        req_prefixes=scope,
        enforce_decisions=decisions,
    )
    for requirement in data["requirements"]:
        rid = requirement["id"]
        requirement["observations"] = ledger.observed[rid]
        requirement["violations"] = ledger.failed[rid]
        if requirement["status"] == "untested":
            requirement["status"] = "unobserved"
    for entry in data["not_checked"]:
        if entry["status"] == "untested":
            entry["status"] = "unobserved"
            entry["reason"] = "the traffic never exercised it"
    data["mode"] = MODE
    data["monitor"] = {
        "exchanges": ledger.exchanges,
        "note": "observed traffic: pass = exercised and held every time; "
        "unobserved = nothing in the traffic exercised it",
        **(stats or {}),
    }
    return data


def must_failures(data: Mapping[str, Any]) -> list[str]:
    return suite_report.must_failures(data)


def write(data: dict[str, Any], report_dir: Path) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    suite_report.write_json(data, report_dir / "conformance.json")
    html_path = report_dir / "conformance.html"
    suite_report.write_html(data, html_path)
    page = html_path.read_text(encoding="utf-8")
    banner = (
        "<h1>Conformance report: observed traffic</h1>\n"
        "<p><strong>Mode:</strong> monitor (a passive proxy: requirements are judged on the "
        "traffic it forwarded; <em>unobserved</em> means nothing exercised it, the tables count "
        "those as untested). Exchanges seen: "
        f"{int(data['monitor']['exchanges'])}.</p>\n"
    )
    page = page.replace("<h1>Conformance report</h1>\n", banner, 1)
    page = page.replace("<title>Conformance report:", "<title>Observed conformance:", 1)
    html_path.write_text(page, encoding="utf-8")
    write_junit(data, report_dir / "junit.xml")


def write_junit(data: Mapping[str, Any], path: Path) -> None:
    """One testcase per requirement in scope: failed with each violation, skipped when
    unobserved; a `requirements` property names its id, as the suite's junit.xml does."""
    requirements = data["requirements"]
    suite = ET.Element(
        "testsuite",
        name="conformance-monitor",
        tests=str(len(requirements)),
        failures=str(sum(1 for r in requirements if r["status"] == "fail")),
        skipped=str(sum(1 for r in requirements if r["status"] == "unobserved")),
        errors="0",
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="mode", value=MODE)
    ET.SubElement(props, "property", name="target", value=str(data["target"]))
    for requirement in requirements:
        case = ET.SubElement(
            suite, "testcase", classname=f"monitor.{requirement['class']}", name=requirement["id"]
        )
        case_props = ET.SubElement(case, "properties")
        ET.SubElement(case_props, "property", name="requirements", value=requirement["id"])
        ET.SubElement(case_props, "property", name="level", value=requirement["level"])
        if requirement.get("informational"):
            ET.SubElement(case_props, "property", name="informational", value="true")
        if requirement["status"] == "fail":
            for failure in requirement["failures"]:
                element = ET.SubElement(case, "failure", message=failure["message"][:500])
                element.text = failure["message"] + "\n\n" + "\n".join(failure["curl"])
        elif requirement["status"] == "unobserved":
            ET.SubElement(case, "skipped", message="unobserved: the traffic never exercised it")
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
