from __future__ import annotations

import html
import json
import pickle
import re
import shlex
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.report import (
    HTML_BODY_LIMIT,
    Exchange,
    TestOutcome,
    build_report,
    must_failures,
    write_html,
    write_json,
)
from conformance.requirements import Catalog, CatalogError, ConformanceClass, Level, Requirement

CLASSES = [
    ConformanceClass("auvy-jobs-control", "auvy", "AUVY jobs: cancel, resume and input"),
    ConformanceClass("auvy-jobs-status", "auvy", "AUVY jobs: status", "Polling."),
    ConformanceClass("strait-runs-core", "strait", "Strait runs"),
]
REQUIREMENTS: list[tuple[str, Level, str]] = [
    ("auvy.jobs.cancel.terminal-400", "MUST", "auvy-jobs-control"),
    ("auvy.jobs.cancel.ok", "MUST", "auvy-jobs-control"),
    ("auvy.jobs.input.shape-400", "SHOULD", "auvy-jobs-control"),
    ("auvy.jobs.resume.ok", "MAY", "auvy-jobs-control"),
    ("auvy.jobs.status.fields", "MUST", "auvy-jobs-status"),
    ("strait.runs.list", "MUST", "strait-runs-core"),
]


def make_catalog() -> Catalog:
    return Catalog(
        classes={c.id: c for c in CLASSES},
        requirements={
            rid: Requirement(
                id=rid,
                level=level,
                conformance_class=cls,
                source="doc.txt",
                quote=f"Quote for {rid}.",
                note="a note" if rid.endswith("ok") else "",
            )
            for rid, level, cls in REQUIREMENTS
        },
    )


def exchange(**changes: object) -> Exchange:
    fields: dict[str, object] = {
        "method": "POST",
        "url": "http://localhost:8000/auvy/v1/jobs/j-1/cancel",
        "request_headers": {"Authorization": "Bearer t0k", "Content-Type": "application/json"},
        "request_body": '{"reason": "it\'s done"}',
        "status": 200,
        "response_headers": {"content-type": "application/json"},
        "response_body": '{"ok": true}',
    }
    fields.update(changes)
    return Exchange.from_dict(fields)


def outcome(
    nodeid: str, result: str, *reqs: str, message: str = "", exchanges: tuple[Exchange, ...] = ()
) -> TestOutcome:
    return TestOutcome.from_dict(
        {
            "nodeid": nodeid,
            "outcome": result,
            "requirements": list(reqs),
            "duration_s": 0.25,
            "message": message,
            "exchanges": [e.to_dict() for e in exchanges],
        }
    )


def report_for(outcomes: list[TestOutcome], apis: tuple[str, ...] = ("auvy",)) -> dict[str, object]:
    return build_report(
        make_catalog(),
        outcomes,
        target="http://localhost:8000",
        apis=apis,
        started_at="2025-01-01T00:00:00Z",
        finished_at="2025-01-01T00:01:00Z",
    )


def requirement_entries(report: Mapping[str, object]) -> dict[str, dict[str, object]]:
    entries = report["requirements"]
    assert isinstance(entries, list)
    return {e["id"]: e for e in entries}


def statuses(report: Mapping[str, object]) -> dict[str, object]:
    return {rid: e["status"] for rid, e in requirement_entries(report).items()}


# --- status rules --------------------------------------------------------------------------------

CANCEL = "auvy.jobs.cancel.terminal-400"


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (["failed"], "fail"),
        (["error"], "fail"),
        (["passed", "failed"], "fail"),
        (["passed", "error", "skipped"], "fail"),
        (["passed"], "pass"),
        (["passed", "skipped"], "partial"),
        (["skipped"], "skip"),
        (["skipped", "skipped"], "skip"),
        ([], "untested"),
    ],
)
def test_status_rule(results: list[str], expected: str) -> None:
    outcomes = [outcome(f"t.py::test_{i}", r, CANCEL) for i, r in enumerate(results)]
    assert statuses(report_for(outcomes))[CANCEL] == expected


def test_requirement_entry_lists_tests_failures_and_skips() -> None:
    failing = exchange(status=400, response_body='{"code": "VALIDATION_ERROR"}')
    report = report_for(
        [
            outcome("t.py::test_a", "passed", CANCEL),
            outcome("t.py::test_b", "failed", CANCEL, message="expected 400", exchanges=(failing,)),
            outcome("t.py::test_c", "error", CANCEL, message="fixture broke"),
            outcome("t.py::test_d", "skipped", CANCEL, message="needs a paused job"),
        ]
    )

    entry = requirement_entries(report)[CANCEL]

    assert entry == {
        "id": CANCEL,
        "level": "MUST",
        "class": "auvy-jobs-control",
        "authority": "document",
        "informational": False,
        "source": "doc.txt",
        "quote": f"Quote for {CANCEL}.",
        "note": "",
        "status": "fail",
        "needs": [],
        "tests": ["t.py::test_a", "t.py::test_b", "t.py::test_c", "t.py::test_d"],
        "failures": [
            {
                "test": "t.py::test_b",
                "outcome": "failed",
                "message": "expected 400",
                "exchanges": [failing.to_dict()],
                "curl": [failing.as_curl()],
            },
            {
                "test": "t.py::test_c",
                "outcome": "error",
                "message": "fixture broke",
                "exchanges": [],
                "curl": [],
            },
        ],
        "skips": [{"test": "t.py::test_d", "reason": "needs a paused job", "needs": []}],
        "deviations": [],
    }


def test_one_test_can_cover_several_requirements() -> None:
    report = report_for([outcome("t.py::test_x", "passed", CANCEL, "auvy.jobs.status.fields")])
    assert statuses(report)[CANCEL] == "pass"
    assert statuses(report)["auvy.jobs.status.fields"] == "pass"


# --- verdict and must_failures -------------------------------------------------------------------


def every_must_passes() -> list[TestOutcome]:
    return [
        outcome(f"t.py::test_must_{rid}", "passed", rid)
        for rid, level, _ in REQUIREMENTS
        if level == "MUST" and rid.startswith("auvy.")
    ]


def test_verdict_conformant_when_only_should_and_may_fail() -> None:
    report = report_for(
        [
            outcome("t.py::test_should", "failed", "auvy.jobs.input.shape-400"),
            outcome("t.py::test_may", "error", "auvy.jobs.resume.ok"),
            *every_must_passes(),
        ]
    )
    assert report["verdict"] == "conformant"
    assert must_failures(report) == []


def test_verdict_not_conformant_when_a_must_fails() -> None:
    report = report_for(
        [
            outcome("t.py::test_1", "failed", "auvy.jobs.status.fields"),
            outcome("t.py::test_2", "error", CANCEL),
            outcome("t.py::test_3", "failed", "auvy.jobs.input.shape-400"),
        ]
    )
    assert report["verdict"] == "not conformant"
    # Catalog order, SHOULD excluded.
    assert must_failures(report) == [CANCEL, "auvy.jobs.status.fields"]


def test_nothing_tested_is_incomplete_not_conformant() -> None:
    report = report_for([])
    assert report["verdict"] == "incomplete"
    assert set(statuses(report).values()) == {"untested"}


def test_must_failures_rejects_an_unknown_schema_version() -> None:
    with pytest.raises(ValueError, match="schema_version"):
        must_failures({"schema_version": 1, "requirements": []})


# --- selection, summary, classes, tests ----------------------------------------------------------


def test_only_requirements_of_the_selected_apis_are_listed() -> None:
    outcomes = [
        outcome("t.py::test_strait", "failed", "strait.runs.list"),
        *every_must_passes(),
    ]
    report = report_for(outcomes)

    assert list(requirement_entries(report)) == [rid for rid, _, _ in REQUIREMENTS[:5]]
    # The Strait MUST failed, but Strait was not under test.
    assert report["verdict"] == "conformant"
    tests = report["tests"]
    assert isinstance(tests, list)
    assert tests[0]["nodeid"] == "t.py::test_strait"

    both = report_for(outcomes, apis=("auvy", "strait", "auvy"))
    assert both["apis"] == ["auvy", "strait"]
    assert list(requirement_entries(both)) == [rid for rid, _, _ in REQUIREMENTS]
    assert both["verdict"] == "not conformant"


def test_unknown_api_is_rejected() -> None:
    with pytest.raises(CatalogError, match="unknown api 'auvi'"):
        report_for([], apis=("auvi",))


def test_unknown_requirement_id_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError) as info:
        report_for([outcome("t.py::test_typo", "passed", "auvy.jobs.cancel.terminal-404")])
    assert "auvy.jobs.cancel.terminal-404" in str(info.value)
    assert CANCEL in str(info.value)


def test_unknown_requirement_id_of_an_unselected_api_is_still_an_error() -> None:
    with pytest.raises(CatalogError, match=re.escape("strait.runs.lsit")):
        report_for([outcome("t.py::test_typo", "passed", "strait.runs.lsit")])


def test_summary_counts() -> None:
    report = report_for(
        [
            outcome("t.py::test_1", "passed", CANCEL),
            outcome("t.py::test_2", "failed", "auvy.jobs.cancel.ok"),
            outcome("t.py::test_3", "skipped", "auvy.jobs.input.shape-400"),
            outcome("t.py::test_4", "error", "auvy.jobs.resume.ok"),
            outcome("t.py::test_5", "passed"),  # no requirement: counted as a test only
        ]
    )

    zero = {"pass": 0, "fail": 0, "partial": 0, "skip": 0, "untested": 0}
    assert report["summary"] == {
        "by_level": {
            "MUST": {**zero, "pass": 1, "fail": 1, "untested": 1, "total": 3},
            "SHOULD": {**zero, "skip": 1, "total": 1},
            "MAY": {**zero, "fail": 1, "total": 1},
        },
        "by_authority": {
            "document": {**zero, "pass": 1, "fail": 2, "skip": 1, "untested": 1, "total": 5},
            "facts": {**zero, "total": 0},
            "decision": {**zero, "total": 0},
        },
        "informational": {**zero, "total": 0},
        "totals": {**zero, "pass": 1, "fail": 2, "skip": 1, "untested": 1, "total": 5},
        "tests": {"passed": 2, "failed": 1, "skipped": 1, "error": 1, "total": 5},
    }


def test_classes_list_requirements_in_catalog_order_with_counts() -> None:
    report = report_for([outcome("t.py::test_1", "failed", "auvy.jobs.cancel.ok")])

    assert report["classes"] == [
        {
            "id": "auvy-jobs-control",
            "api": "auvy",
            "title": "AUVY jobs: cancel, resume and input",
            "description": "",
            "requirements": [
                CANCEL,
                "auvy.jobs.cancel.ok",
                "auvy.jobs.input.shape-400",
                "auvy.jobs.resume.ok",
            ],
            "counts": {"pass": 0, "fail": 1, "partial": 0, "skip": 0, "untested": 3, "total": 4},
        },
        {
            "id": "auvy-jobs-status",
            "api": "auvy",
            "title": "AUVY jobs: status",
            "description": "Polling.",
            "requirements": ["auvy.jobs.status.fields"],
            "counts": {"pass": 0, "fail": 0, "partial": 0, "skip": 0, "untested": 1, "total": 1},
        },
    ]


def test_run_metadata() -> None:
    report = report_for([])
    assert report["schema_version"] == 2
    assert report["target"] == "http://localhost:8000"
    assert report["apis"] == ["auvy"]
    assert report["started_at"] == "2025-01-01T00:00:00Z"
    assert report["finished_at"] == "2025-01-01T00:01:00Z"


# --- JSON ----------------------------------------------------------------------------------------


def full_report() -> dict[str, object]:
    return report_for(
        [
            outcome("t.py::test_1", "passed", CANCEL),
            outcome(
                "t.py::test_2[caf\u00e9]",
                "failed",
                "auvy.jobs.cancel.ok",
                message="assert 500 == 200",
                exchanges=(exchange(status=500), exchange(method="GET", request_body="")),
            ),
            outcome("t.py::test_3", "skipped", "auvy.jobs.input.shape-400", message="no job"),
            outcome("t.py::test_4", "passed"),
        ]
    )


def test_json_round_trip(tmp_path: Path) -> None:
    report = full_report()
    path = tmp_path / "nested" / "report.json"

    write_json(report, path)

    text = path.read_text(encoding="utf-8")
    assert "caf\u00e9" in text  # readable, not \u-escaped
    loaded = json.loads(text)
    assert loaded == report
    assert must_failures(loaded) == ["auvy.jobs.cancel.ok"]
    tests = loaded["tests"]
    assert [TestOutcome.from_dict(t).to_dict() for t in tests] == tests


# --- Exchange and TestOutcome serialisation ------------------------------------------------------


def test_exchange_round_trips_through_a_json_channel() -> None:
    # pytest-xdist ships report data between processes as plain JSON-like values.
    original = exchange(status=None, response_headers={}, response_body="")
    wire = json.loads(json.dumps(original.to_dict()))
    assert Exchange.from_dict(wire) == original
    assert Exchange.from_dict(wire).to_dict() == original.to_dict()


def test_exchange_copies_header_mappings() -> None:
    headers = {"X-A": "1"}
    recorded = exchange(request_headers=headers)
    headers["X-A"] = "2"
    assert recorded.request_headers == {"X-A": "1"}
    assert pickle.loads(pickle.dumps(recorded)) == recorded


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"method": None}, "'method' must be a string"),
        ({"url": 3}, "'url' must be a string"),
        ({"status": "200"}, "'status' must be an integer or null"),
        ({"status": True}, "'status' must be an integer or null"),
        ({"request_headers": {"X-A": 1}}, "'request_headers' must be an object of strings"),
        ({"response_headers": ["a"]}, "'response_headers' must be an object of strings"),
        ({"response_body": b"x"}, "'response_body' must be a string"),
    ],
)
def test_exchange_from_dict_rejects_bad_shapes(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        exchange(**changes)


def test_a_recorded_deviation_is_listed_with_its_requirement() -> None:
    seen = TestOutcome(
        "t.py::test_live", "skipped", (CANCEL,), 0.1, "cancel answers 200", deviation=True
    )
    assert TestOutcome.from_dict(json.loads(json.dumps(seen.to_dict()))) == seen
    report = report_for([seen, outcome("t.py::test_gap", "skipped", CANCEL, message="no key")])
    entry = requirement_entries(report)[CANCEL]
    assert entry["deviations"] == [{"test": "t.py::test_live", "what": "cancel answers 200"}]
    assert report["deviations"] == [
        {
            "id": CANCEL,
            "informational": False,
            "test": "t.py::test_live",
            "what": "cancel answers 200",
        }
    ]
    assert report_for([outcome("t.py::test_1", "passed", CANCEL)])["deviations"] == []


def test_the_html_lists_recorded_deviations(tmp_path: Path) -> None:
    seen = TestOutcome(
        "t.py::test_live", "skipped", (CANCEL,), 0.1, "a <paused> run", deviation=True
    )
    path = tmp_path / "r.html"
    write_html(report_for([seen]), path)
    page = path.read_text()
    assert '<section id="deviations">' in page and "a &lt;paused&gt; run" in page
    write_html(report_for([outcome("t.py::test_1", "passed", CANCEL)]), path)
    assert 'id="deviations"' not in path.read_text()


def test_test_outcome_round_trip_and_validation() -> None:
    original = outcome("t.py::test_1", "failed", CANCEL, message="m", exchanges=(exchange(),))
    wire = json.loads(json.dumps(original.to_dict()))
    assert TestOutcome.from_dict(wire) == original
    with pytest.raises(ValueError, match="unknown outcome 'xfailed'"):
        TestOutcome("t.py::test_1", "xfailed", (), 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown outcome 'xpassed'"):
        TestOutcome.from_dict({**wire, "outcome": "xpassed"})
    with pytest.raises(ValueError, match="duration_s"):
        TestOutcome.from_dict({**wire, "duration_s": "1"})


# --- curl ----------------------------------------------------------------------------------------


def test_curl_line_parses_back_to_the_request() -> None:
    recorded = exchange(
        url="http://localhost:8000/auvy/v1/jobs?status=running&limit=5",
        request_headers={
            "Authorization": "Bearer t0k",
            "X-Quote": 'it\'s "quoted" $HOME `x`',
            "Content-Length": "24",
            "Host": "localhost:8000",
            "Accept-Encoding": "gzip",
        },
        request_body='{"note": "line 1\nline 2 it\'s $(rm -rf /)"}',
    )

    parts = shlex.split(recorded.as_curl())

    assert parts == [
        "curl",
        "-X",
        "POST",
        "http://localhost:8000/auvy/v1/jobs?status=running&limit=5",
        "-H",
        "Authorization: Bearer t0k",
        "-H",
        'X-Quote: it\'s "quoted" $HOME `x`',
        "--data-raw",
        '{"note": "line 1\nline 2 it\'s $(rm -rf /)"}',
    ]


def test_curl_line_without_body_or_headers() -> None:
    recorded = exchange(method="GET", request_headers={}, request_body="")
    assert shlex.split(recorded.as_curl()) == [
        "curl",
        "-X",
        "GET",
        "http://localhost:8000/auvy/v1/jobs/j-1/cancel",
    ]


def test_curl_line_for_head_does_not_wait_for_a_body() -> None:
    recorded = exchange(method="HEAD", request_headers={}, request_body="")
    assert shlex.split(recorded.as_curl())[:2] == ["curl", "--head"]


header_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


@settings(database=None, max_examples=200)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    url=header_text,
    headers=st.dictionaries(
        st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True), header_text, max_size=4
    ),
    body=header_text,
)
def test_curl_line_round_trips_any_text(
    method: str, url: str, headers: dict[str, str], body: str
) -> None:
    recorded = Exchange(method, url, headers, body, 200, {}, "")
    expected = ["curl", "-X", method, url]
    for name, value in headers.items():
        expected += ["-H", f"{name}: {value}"]
    if body:
        expected += ["--data-raw", body]
    assert shlex.split(recorded.as_curl()) == expected


# --- HTML ----------------------------------------------------------------------------------------

EVIL = "<script>alert('x')</script>"


def test_html_escapes_everything_from_test_data(tmp_path: Path) -> None:
    hostile = exchange(
        url=f"http://localhost/?q={EVIL}",
        request_headers={"X-Evil": EVIL},
        request_body=EVIL,
        status=500,
        response_headers={"X-Evil": EVIL},
        response_body=f'{{"message": "{EVIL}"}}',
    )
    report = build_report(
        Catalog(
            classes={"auvy-x": ConformanceClass("auvy-x", "auvy", f"Title {EVIL}", EVIL)},
            requirements={
                "auvy.x": Requirement("auvy.x", "MUST", "auvy-x", EVIL, EVIL, note=EVIL),
            },
        ),
        [
            outcome(f"t.py::test[{EVIL}]", "failed", "auvy.x", message=EVIL, exchanges=(hostile,)),
            outcome(f"t.py::test_skip[{EVIL}]", "skipped", "auvy.x", message=EVIL),
        ],
        target=f"http://localhost/{EVIL}",
        apis=["auvy"],
        started_at=EVIL,
        finished_at=EVIL,
    )
    path = tmp_path / "report.html"

    write_html(report, path)

    page = path.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "alert(" in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_html_shows_verdict_counts_classes_and_failures(tmp_path: Path) -> None:
    report = full_report()
    path = tmp_path / "out" / "report.html"

    write_html(report, path)

    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert '<span class="verdict bad">not conformant</span>' in page
    assert "http://localhost:8000" in page
    assert '<section id="class-auvy-jobs-control">' in page
    assert '<section id="class-auvy-jobs-status">' in page
    assert "Quote for auvy.jobs.cancel.terminal-400." in page
    # The failing requirement's badge links to its failure, which links back to the row.
    assert '<a class="badge fail" href="#fail-auvy.jobs.cancel.ok">fail</a>' in page
    assert '<article class="failure" id="fail-auvy.jobs.cancel.ok">' in page
    assert '<tr id="req-auvy.jobs.cancel.ok" class="fail">' in page
    assert "<pre>assert 500 == 200</pre>" in page
    assert "POST http://localhost:8000/auvy/v1/jobs/j-1/cancel\n" in page
    assert "Authorization: Bearer t0k\n" in page
    assert "<pre>500\ncontent-type: application/json\n" in page
    assert "no job" in page  # skip reason
    assert "1 MUST requirement(s) untested." in page
    assert html_curl(exchange(status=500)) in page
    # No external assets: the file must work when opened from a CI artifact.
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page)


def html_curl(recorded: Exchange) -> str:
    return html.escape(recorded.as_curl(), quote=True)


def test_html_verdict_is_green_when_conformant(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(report_for(every_must_passes()), path)
    page = path.read_text(encoding="utf-8")
    assert '<span class="verdict ok">conformant</span>' in page
    assert 'id="not-checked"' not in page
    assert "<p>None.</p>" in page  # no failures


def test_html_marks_empty_bodies(tmp_path: Path) -> None:
    recorded = exchange(method="GET", request_body="", status=None, response_body="")
    report = report_for([outcome("t.py::test_1", "error", CANCEL, exchanges=(recorded,))])
    path = tmp_path / "report.html"
    write_html(report, path)
    page = path.read_text(encoding="utf-8")
    assert page.count("(empty body)") == 2
    assert "<pre>no response\n" in page


def test_html_caps_long_bodies(tmp_path: Path) -> None:
    extra = 123
    body = "a" * HTML_BODY_LIMIT + "b" * extra
    report = report_for(
        [outcome("t.py::test_1", "failed", CANCEL, exchanges=(exchange(response_body=body),))]
    )
    path = tmp_path / "report.html"

    write_html(report, path)

    page = path.read_text(encoding="utf-8")
    assert "a" * HTML_BODY_LIMIT in page
    assert "b" not in page.split("a" * HTML_BODY_LIMIT, 1)[1].split("</span>", 1)[0]
    assert f"\u2026 ({extra} more characters)" in page
    # The JSON keeps the whole body; only the page is capped.
    assert (
        requirement_entries(report)[CANCEL]["failures"][0]["exchanges"][0][  # type: ignore[index]
            "response_body"
        ]
        == body
    )


def test_html_body_at_the_limit_is_not_capped(tmp_path: Path) -> None:
    report = report_for(
        [
            outcome(
                "t.py::test_1",
                "failed",
                CANCEL,
                exchanges=(exchange(response_body="a" * HTML_BODY_LIMIT),),
            )
        ]
    )
    path = tmp_path / "report.html"
    write_html(report, path)
    assert "more character" not in path.read_text(encoding="utf-8")


def test_html_from_json_equals_html_from_memory(tmp_path: Path) -> None:
    report = full_report()
    write_json(report, tmp_path / "report.json")
    write_html(report, tmp_path / "a.html")
    write_html(
        json.loads((tmp_path / "report.json").read_text(encoding="utf-8")), tmp_path / "b.html"
    )
    assert (tmp_path / "a.html").read_text(encoding="utf-8") == (tmp_path / "b.html").read_text(
        encoding="utf-8"
    )


def test_html_rejects_an_unknown_schema_version(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="schema_version"):
        write_html({**full_report(), "schema_version": 99}, tmp_path / "x.html")
