"""JSON and HTML reports: test outcomes folded onto the requirement catalog.

The JSON report is the machine-readable result (CI gates on it with ``must_failures``); the HTML
report is built from that same JSON, never from live objects, so a report copied off a CI runner
can be re-rendered and what a person reads is exactly what the machine judged.

A requirement's status comes from all of its tests: ``pass`` only when every one of them ran and
passed, ``fail`` when any failed or errored (in setup, call or teardown), ``partial`` when some
passed and the rest skipped, ``skip`` when all skipped, ``untested`` when none ran. The verdict is
``conformant`` only when every MUST in scope passed, ``not conformant`` when any failed, and
``incomplete`` otherwise: a MUST that was skipped, partly checked or not checked at all is not a
pass. Decision requirements (the reference server's own choices where the documents are silent)
count only when decisions are enforced; otherwise they are reported as informational.
"""

from __future__ import annotations

import html
import json
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Final, Literal, get_args

from conformance.requirements import AUTHORITIES, LEVELS, Catalog, Requirement

__all__ = [
    "HTML_BODY_LIMIT",
    "OUTCOMES",
    "SCHEMA_VERSION",
    "STATUSES",
    "VERDICTS",
    "Exchange",
    "Outcome",
    "Status",
    "TestOutcome",
    "Verdict",
    "build_report",
    "in_scope",
    "must_failures",
    "not_checked",
    "write_html",
    "write_json",
]

Outcome = Literal["passed", "failed", "skipped", "error"]
Status = Literal["pass", "fail", "partial", "skip", "untested"]
Verdict = Literal["conformant", "not conformant", "incomplete"]
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
VERDICTS: Final[tuple[Verdict, ...]] = get_args(Verdict)
# 2: statuses gained `partial`, the verdict `incomplete`; requirements carry their authority.
SCHEMA_VERSION: Final = 2
HTML_BODY_LIMIT: Final = 4_000
MESSAGE_LIMIT: Final = 2_000

# curl computes these from the URL and the body it sends; a recorded value goes stale as soon as
# someone edits the line to try a variation, and a recorded Accept-Encoding makes curl print
# compressed bytes to the terminal.
_CURL_SKIPPED_HEADERS: Final = frozenset(
    {"content-length", "host", "connection", "transfer-encoding", "accept-encoding"}
)


def _text(d: Mapping[str, object], key: str, where: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def _headers(d: Mapping[str, object], key: str, where: str) -> dict[str, str]:
    value = d.get(key)
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{where}: {key!r} must be an object of strings")
    return dict(value)


def _objects(value: object, where: str) -> list[Mapping[str, object]]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError(f"{where} must be a list of objects")
    return list(value)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings")
    return list(value)


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object")
    return value


@dataclass(frozen=True)
class Exchange:
    """One HTTP request/response a test made, recorded so a failure can be reproduced."""

    method: str
    url: str
    request_headers: Mapping[str, str]
    request_body: str
    status: int | None  # None when no response arrived (connection error, timeout)
    response_headers: Mapping[str, str]
    response_body: str

    def __post_init__(self) -> None:
        # Client header objects (multi-dicts, case-insensitive views) are neither JSON nor
        # reliably picklable; a plain copy keeps equality and serialisation predictable.
        object.__setattr__(self, "request_headers", dict(self.request_headers))
        object.__setattr__(self, "response_headers", dict(self.response_headers))

    def to_dict(self) -> dict[str, object]:
        return {
            "method": self.method,
            "url": self.url,
            "request_headers": dict(self.request_headers),
            "request_body": self.request_body,
            "status": self.status,
            "response_headers": dict(self.response_headers),
            "response_body": self.response_body,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> Exchange:
        where = "exchange"
        status = d.get("status")
        # bool is an int subclass; a True status would be a serialisation bug, not HTTP 1.
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            raise ValueError(f"{where}: 'status' must be an integer or null")
        return cls(
            method=_text(d, "method", where),
            url=_text(d, "url", where),
            request_headers=_headers(d, "request_headers", where),
            request_body=_text(d, "request_body", where),
            status=status,
            response_headers=_headers(d, "response_headers", where),
            response_body=_text(d, "response_body", where),
        )

    def as_curl(self) -> str:
        # HEAD via -X makes curl wait for a body that never comes.
        parts = ["curl", "--head"] if self.method.upper() == "HEAD" else ["curl", "-X", self.method]
        parts.append(self.url)
        for name, value in self.request_headers.items():
            if name.lower() not in _CURL_SKIPPED_HEADERS:
                parts += ["-H", f"{name}: {value}"]
        if self.request_body:
            parts += ["--data-raw", self.request_body]
        return " ".join(shlex.quote(part) for part in parts)


@dataclass(frozen=True)
class TestOutcome:
    """The result of one test, with the requirement ids its ``req`` marker names."""

    # The name starts with "Test"; without this pytest tries to collect it from test modules.
    __test__: ClassVar[bool] = False

    nodeid: str
    outcome: Outcome
    requirements: tuple[str, ...]
    duration_s: float
    message: str = ""  # the check's own failure message, or the skip reason
    exchanges: tuple[Exchange, ...] = field(default=())
    # Profile keys whose absence made the test skip: what a profile author adds to enable it.
    needs: tuple[str, ...] = ()
    # The failure's traceback (masked and capped), for whoever debugs the suite itself.
    traceback: str = ""
    # A skip that is the live system's recorded deviation (conformance.deviations), not a gap.
    deviation: bool = False

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"{self.nodeid}: unknown outcome {self.outcome!r}")

    def to_dict(self) -> dict[str, object]:
        return {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "requirements": list(self.requirements),
            "duration_s": self.duration_s,
            "message": self.message,
            "needs": list(self.needs),
            "traceback": self.traceback,
            "deviation": self.deviation,
            "exchanges": [e.to_dict() for e in self.exchanges],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> TestOutcome:
        where = "test outcome"
        outcome = _text(d, "outcome", where)
        duration = d.get("duration_s")
        if not isinstance(duration, int | float) or isinstance(duration, bool):
            raise ValueError(f"{where}: 'duration_s' must be a number")
        for known in OUTCOMES:
            if known == outcome:
                return cls(
                    nodeid=_text(d, "nodeid", where),
                    outcome=known,
                    requirements=tuple(_strings(d.get("requirements"), f"{where} requirements")),
                    duration_s=float(duration),
                    message=_text(d, "message", where) if "message" in d else "",
                    needs=tuple(_strings(d.get("needs", []), f"{where} needs")),
                    traceback=_text(d, "traceback", where) if "traceback" in d else "",
                    deviation=d.get("deviation") is True,
                    exchanges=tuple(
                        Exchange.from_dict(e)
                        for e in _objects(d.get("exchanges", []), f"{where} exchanges")
                    ),
                )
        raise ValueError(f"{where}: unknown outcome {outcome!r}")


def _status(outcomes: Sequence[TestOutcome]) -> Status:
    kinds = {o.outcome for o in outcomes}
    if kinds & {"failed", "error"}:
        return "fail"
    if kinds == {"passed"}:
        return "pass"
    if "passed" in kinds:
        return "partial"
    if kinds:
        return "skip"
    return "untested"


def in_scope(req_id: str, prefixes: Sequence[str] | None) -> bool:
    """Whether a requirement id is selected by --req prefixes (None: no narrowing)."""
    if not prefixes:
        return True
    return any(req_id == p or req_id.startswith(p.rstrip(".") + ".") for p in prefixes)


def _verdict(normative: Sequence[tuple[Requirement, Status]]) -> Verdict:
    musts = [status for req, status in normative if req.level == "MUST"]
    if "fail" in musts:
        return "not conformant"
    # Nothing in scope at all is no evidence of anything, not a vacuous pass.
    if not normative or any(status != "pass" for status in musts):
        return "incomplete"
    return "conformant"


_NOT_CHECKED_REASON: Final[Mapping[str, str]] = {
    "skip": "every test of it skipped",
    "partial": "some of its tests skipped",
    "untested": "no test of it ran",
}


def _counts(statuses: Iterable[Status]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for status in statuses:
        counts[status] += 1
    counts["total"] = sum(counts.values())
    return counts


def build_report(
    catalog: Catalog,
    outcomes: Sequence[TestOutcome],
    *,
    target: str,
    apis: Sequence[str],
    started_at: str,
    finished_at: str,
    req_prefixes: Sequence[str] | None = None,
    enforce_decisions: bool = True,
) -> dict[str, object]:
    """Fold test outcomes onto the catalog requirements in scope (JSON-ready, schema 2).

    In scope: the requirements of ``apis``, narrowed to ``req_prefixes`` when given. With
    ``enforce_decisions`` false, decision requirements are informational: listed with their
    status, never counted in the verdict or the summary by level.

    Raises CatalogError for an unknown api or for an outcome naming a requirement id the catalog
    does not hold, even one of an api not selected: a typo must not pass as "not under test".
    """
    apis = list(dict.fromkeys(apis))
    prefixes = list(dict.fromkeys(req_prefixes)) if req_prefixes else []
    by_api = [catalog.for_api(api) for api in apis]
    selected: dict[str, Requirement] = {}
    for part in by_api:
        selected.update((rid, r) for rid, r in part.requirements.items() if in_scope(rid, prefixes))

    def informational(req: Requirement) -> bool:
        return req.is_decision and not enforce_decisions

    by_requirement: dict[str, list[TestOutcome]] = {req_id: [] for req_id in selected}
    for outcome in outcomes:
        for req_id in outcome.requirements:
            catalog.get(req_id)  # raises CatalogError naming the closest known ids
            if req_id in by_requirement:
                by_requirement[req_id].append(outcome)

    requirements: list[dict[str, object]] = []
    status_of: dict[str, Status] = {}
    for req_id, req in selected.items():
        tested = by_requirement[req_id]
        status_of[req_id] = _status(tested)
        needs = list(dict.fromkeys(k for o in tested if o.outcome == "skipped" for k in o.needs))
        requirements.append(
            {
                "id": req.id,
                "level": req.level,
                "class": req.conformance_class,
                "authority": req.authority,
                "informational": informational(req),
                "source": req.source,
                "quote": req.quote,
                "note": req.note,
                "status": status_of[req_id],
                "needs": needs,
                "tests": list(dict.fromkeys(o.nodeid for o in tested)),
                "failures": [
                    {
                        "test": o.nodeid,
                        "outcome": o.outcome,
                        "message": o.message,
                        "exchanges": [e.to_dict() for e in o.exchanges],
                        "curl": [e.as_curl() for e in o.exchanges],
                    }
                    for o in tested
                    if o.outcome in ("failed", "error")
                ],
                "skips": [
                    {"test": o.nodeid, "reason": o.message, "needs": list(o.needs)}
                    for o in tested
                    if o.outcome == "skipped"
                ],
                "deviations": [
                    {"test": o.nodeid, "what": o.message} for o in tested if o.deviation
                ],
            }
        )

    normative = [r for r in selected.values() if not informational(r)]
    by_level = {
        level: _counts(status_of[r.id] for r in normative if r.level == level) for level in LEVELS
    }
    by_authority = {
        authority: _counts(status_of[r.id] for r in selected.values() if r.authority == authority)
        for authority in AUTHORITIES
    }
    test_counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
    for outcome in outcomes:
        test_counts[outcome.outcome] += 1
    test_counts_total: dict[str, int] = {**test_counts, "total": len(outcomes)}

    classes: list[dict[str, object]] = []
    for part in by_api:
        for cls in part.classes.values():
            ids = [r.id for r in selected.values() if r.conformance_class == cls.id]
            if prefixes and not ids:
                continue  # a class wholly outside --req is not part of this run's question
            classes.append(
                {
                    "id": cls.id,
                    "api": cls.api,
                    "title": cls.title,
                    "description": cls.description,
                    "requirements": ids,
                    "counts": _counts(status_of[i] for i in ids if not informational(selected[i])),
                }
            )

    verdict = _verdict([(r, status_of[r.id]) for r in normative])
    unchecked = [
        {
            "id": r.id,
            "status": status_of[r.id],
            "reason": _NOT_CHECKED_REASON[status_of[r.id]],
            "skips": [
                {"test": o.nodeid, "reason": o.message}
                for o in by_requirement[r.id]
                if o.outcome == "skipped"
            ],
            "needs": list(
                dict.fromkeys(
                    k for o in by_requirement[r.id] if o.outcome == "skipped" for k in o.needs
                )
            ),
        }
        for r in normative
        if r.level == "MUST" and status_of[r.id] in _NOT_CHECKED_REASON
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "target": target,
        "apis": apis,
        "req": prefixes,
        "decisions": "enforce" if enforce_decisions else "inform",
        "started_at": started_at,
        "finished_at": finished_at,
        "verdict": verdict,
        "summary": {
            "by_level": by_level,
            "by_authority": by_authority,
            "informational": _counts(
                status_of[r.id] for r in selected.values() if informational(r)
            ),
            "totals": _counts(status_of[r.id] for r in normative),
            "tests": test_counts_total,
        },
        "not_checked": unchecked,
        # What the target answered as the live system does where the spec records it.
        "deviations": [
            {"id": r["id"], "informational": r["informational"], **d}
            for r in requirements
            for d in r["deviations"]  # type: ignore[attr-defined]
        ],
        "classes": classes,
        "requirements": requirements,
        "tests": [o.to_dict() for o in outcomes],
    }


def write_json(report: Mapping[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _check_schema(report: Mapping[str, object]) -> None:
    if report.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"unsupported report schema_version {report.get('schema_version')!r}; "
            f"expected {SCHEMA_VERSION}"
        )


def must_failures(report: Mapping[str, object]) -> list[str]:
    """Ids of the MUST requirements whose status is fail: a non-empty list fails the run.
    Informational (decision, not enforced) requirements never count."""
    _check_schema(report)
    return [
        _text(r, "id", "requirement")
        for r in _objects(report.get("requirements"), "report requirements")
        if r.get("level") == "MUST" and r.get("status") == "fail" and not r.get("informational")
    ]


def not_checked(report: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The MUST requirements in scope that were not fully checked (what makes a verdict
    incomplete): each with its id, status, reason, skip reasons and the profile keys needed."""
    _check_schema(report)
    return _objects(report.get("not_checked", []), "report not_checked")


# --- HTML ----------------------------------------------------------------------------------------

_CSS: Final = """
:root { --pass: #1a7f37; --fail: #cf222e; --skip: #9a6700; --untested: #6e7781;
        --partial: #bc4c00;
        --line: #d0d7de; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328;
       margin: 0 auto; padding: 1.5rem; max-width: 90rem; }
h1 { margin: 0 0 .5rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid var(--line); }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: var(--soft); border: 1px solid var(--line); padding: .6rem; overflow-x: auto;
      white-space: pre-wrap; word-break: break-word; margin: .3rem 0 .8rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { border: 1px solid var(--line); padding: .35rem .5rem; text-align: left;
         vertical-align: top; }
th { background: var(--soft); }
table.summary { width: auto; } table.summary td { text-align: right; }
blockquote { margin: 0; padding-left: .6rem; border-left: 3px solid var(--line); }
ul.tests { margin: 0; padding-left: 1rem; }
.note, .reason, .meta, .more { color: #59636e; font-size: 90%; }
.verdict { display: inline-block; padding: .3rem .9rem; border-radius: 2rem; color: #fff;
           font-weight: 700; font-size: 1.2rem; }
.verdict.ok { background: var(--pass); } .verdict.bad { background: var(--fail); }
.verdict.incomplete { background: var(--partial); }
.badge { display: inline-block; min-width: 4.5rem; text-align: center; padding: 0 .4rem;
         border-radius: .8rem; color: #fff; font-size: 85%; font-weight: 600;
         text-decoration: none; }
.badge.pass, .badge.passed { background: var(--pass); }
.badge.fail, .badge.failed, .badge.error { background: var(--fail); }
.badge.skip, .badge.skipped { background: var(--skip); }
.badge.untested { background: var(--untested); }
.badge.partial { background: var(--partial); }
.badge.document { background: #0a3069; } .badge.facts { background: #116329; }
.badge.decision, .badge.informational { background: #6e7781; }
tr.informational td { color: #59636e; }
.badge.MUST { background: #0550ae; } .badge.SHOULD { background: #8250df; }
.badge.MAY { background: #6e7781; }
tr.fail td { background: #ffebe9; }
.warning { color: var(--fail); font-weight: 600; }
article.failure { border: 1px solid var(--line); border-left: 4px solid var(--fail);
                  padding: .2rem 1rem 1rem; margin: 1rem 0; }
details { margin: .4rem 0; } summary { cursor: pointer; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(word: str, href: str = "") -> str:
    if href:
        return f'<a class="badge {_e(word)}" href="{_e(href)}">{_e(word)}</a>'
    return f'<span class="badge {_e(word)}">{_e(word)}</span>'


def _capped(body: str) -> str:
    """Escaped body, truncated so one large payload cannot make the page unusable."""
    if not body:
        # Otherwise an empty body reads like a rendering glitch.
        return '<span class="more">(empty body)</span>'
    if len(body) <= HTML_BODY_LIMIT:
        return _e(body)
    more = len(body) - HTML_BODY_LIMIT
    return (
        f"{_e(body[:HTML_BODY_LIMIT])}"
        f'<span class="more">… ({more} more character{"s" if more > 1 else ""})</span>'
    )


def _header_lines(headers: Mapping[str, str]) -> str:
    return "".join(f"{_e(k)}: {_e(v)}\n" for k, v in headers.items())


def _exchange_html(number: int, exchange: Exchange) -> str:
    status = "no response" if exchange.status is None else str(exchange.status)
    return (
        f"<details open><summary>Exchange {number}: <code>{_e(exchange.method)} "
        f"{_e(exchange.url)}</code> → {_e(status)}</summary>\n"
        f"<h5>Request</h5>\n<pre>{_e(exchange.method)} {_e(exchange.url)}\n"
        f"{_header_lines(exchange.request_headers)}\n{_capped(exchange.request_body)}</pre>\n"
        f"<h5>Response</h5>\n<pre>{_e(status)}\n"
        f"{_header_lines(exchange.response_headers)}\n{_capped(exchange.response_body)}</pre>\n"
        f"<h5>Reproduce</h5>\n<pre>{_e(exchange.as_curl())}</pre>\n</details>\n"
    )


def _summary_html(summary: Mapping[str, object]) -> str:
    by_level = _mapping(summary.get("by_level"), "summary by_level")
    rows: list[tuple[str, Mapping[str, object]]] = [
        (level, _mapping(by_level.get(level), f"summary {level}")) for level in LEVELS
    ]
    rows.append(("all", _mapping(summary.get("totals"), "summary totals")))
    head = "".join(f"<th>{_e(s)}</th>" for s in (*STATUSES, "total"))
    body = "".join(
        f"<tr><th>{_e(name)}</th>"
        + "".join(f"<td>{_e(counts.get(s, 0))}</td>" for s in (*STATUSES, "total"))
        + "</tr>\n"
        for name, counts in rows
    )
    return (
        f'<table class="summary"><thead><tr><th>requirements</th>{head}</tr></thead>\n'
        f"<tbody>\n{body}</tbody></table>\n"
    )


def _tests_cell(req: Mapping[str, object], outcomes_by_nodeid: Mapping[str, list[str]]) -> str:
    nodeids = _strings(req.get("tests"), "requirement tests")
    if not nodeids:
        return '<span class="meta">no test</span>'
    reasons = {
        _text(s, "test", "skip"): _text(s, "reason", "skip")
        + (f" (needs {', '.join(_strings(s['needs'], 'skip needs'))})" if s.get("needs") else "")
        for s in _objects(req.get("skips", []), "requirement skips")
    }
    items = []
    for nodeid in nodeids:
        badges = " ".join(_badge(o) for o in dict.fromkeys(outcomes_by_nodeid.get(nodeid, [])))
        reason = (
            f'<br><span class="reason">{_e(reasons[nodeid])}</span>' if nodeid in reasons else ""
        )
        items.append(f"<li>{badges} <code>{_e(nodeid)}</code>{reason}</li>")
    return '<ul class="tests">' + "".join(items) + "</ul>"


def _class_html(
    cls: Mapping[str, object],
    requirements: Mapping[str, Mapping[str, object]],
    outcomes_by_nodeid: Mapping[str, list[str]],
) -> str:
    cls_id = _text(cls, "id", "class")
    counts = _mapping(cls.get("counts"), "class counts")
    count_text = ", ".join(f"{_e(counts.get(s, 0))} {_e(s)}" for s in STATUSES)
    description = _text(cls, "description", "class") if "description" in cls else ""
    rows = []
    for req_id in _strings(cls.get("requirements"), "class requirements"):
        req = requirements[req_id]
        status = _text(req, "status", "requirement")
        note = _text(req, "note", "requirement")
        authority = _text(req, "authority", "requirement")
        info = bool(req.get("informational"))
        row_class = f"{status} informational" if info else status
        rows.append(
            f'<tr id="req-{_e(req_id)}" class="{_e(row_class)}">'
            f"<td><code>{_e(req_id)}</code></td>"
            f"<td>{_badge(_text(req, 'level', 'requirement'))}</td>"
            f"<td>{_badge(authority)}" + (f" {_badge('informational')}" if info else "") + "</td>"
            f"<td>{_badge(status, f'#fail-{req_id}' if status == 'fail' else '')}</td>"
            f"<td><blockquote>{_e(_text(req, 'quote', 'requirement'))}</blockquote>"
            + (f'<p class="note">{_e(note)}</p>' if note else "")
            + f"</td><td>{_e(_text(req, 'source', 'requirement'))}</td>"
            f"<td>{_tests_cell(req, outcomes_by_nodeid)}</td></tr>\n"
        )
    return (
        f'<section id="class-{_e(cls_id)}">\n'
        f"<h2>{_e(_text(cls, 'title', 'class'))} <small><code>{_e(cls_id)}</code> · "
        f"{_e(_text(cls, 'api', 'class'))}</small></h2>\n"
        + (f"<p>{_e(description)}</p>\n" if description else "")
        + f'<p class="meta">{count_text}</p>\n'
        "<table><thead><tr><th>Requirement</th><th>Level</th><th>Authority</th><th>Status</th>"
        "<th>Quoted sentence</th><th>Source</th><th>Tests</th></tr></thead>\n"
        f"<tbody>\n{''.join(rows)}</tbody></table>\n</section>\n"
    )


def _failures_html(requirements: Iterable[Mapping[str, object]]) -> str:
    articles = []
    for req in requirements:
        failures = _objects(req.get("failures", []), "requirement failures")
        if not failures:
            continue
        req_id = _text(req, "id", "requirement")
        parts = [
            f'<article class="failure" id="fail-{_e(req_id)}">\n'
            f'<h3><a href="#req-{_e(req_id)}"><code>{_e(req_id)}</code></a> '
            f"{_badge(_text(req, 'level', 'requirement'))}"
            + (f" {_badge('informational')}" if req.get("informational") else "")
            + "</h3>\n"
            f"<blockquote>{_e(_text(req, 'quote', 'requirement'))}</blockquote>\n"
        ]
        for failure in failures:
            outcome = _text(failure, "outcome", "failure") if "outcome" in failure else "failed"
            parts.append(
                f"<h4>{_badge(outcome)} <code>{_e(_text(failure, 'test', 'failure'))}</code></h4>\n"
                f"<pre>{_e(_text(failure, 'message', 'failure'))}</pre>\n"
            )
            exchanges = _objects(failure.get("exchanges", []), "failure exchanges")
            parts += (
                _exchange_html(n, Exchange.from_dict(e)) for n, e in enumerate(exchanges, start=1)
            )
        articles.append("".join(parts) + "</article>\n")
    body = "".join(articles) or "<p>None.</p>\n"
    return f'<section id="failures">\n<h2>Failures</h2>\n{body}</section>\n'


def _capped_message(message: str) -> str:
    if len(message) <= MESSAGE_LIMIT:
        return _e(message)
    return f'{_e(message[:MESSAGE_LIMIT])}<span class="more">… (see the JSON report)</span>'


def _not_checked_html(entries: Sequence[Mapping[str, object]], verdict: str) -> str:
    if not entries:
        return ""
    items = []
    for entry in entries:
        req_id = _text(entry, "id", "not checked")
        needs = _strings(entry.get("needs", []), "not checked needs")
        reasons = list(
            dict.fromkeys(
                _text(s, "reason", "skip") for s in _objects(entry.get("skips", []), "skips")
            )
        )
        items.append(
            f'<li><a href="#req-{_e(req_id)}"><code>{_e(req_id)}</code></a> '
            f"{_badge(_text(entry, 'status', 'not checked'))} "
            f"{_e(_text(entry, 'reason', 'not checked'))}"
            + (
                "; add to the profile: " + ", ".join(f"<code>{_e(k)}</code>" for k in needs)
                if needs
                else ""
            )
            + "".join(f'<br><span class="reason">{_e(r)}</span>' for r in reasons)
            + "</li>\n"
        )
    lead = (
        "These MUST requirements were not fully checked, so the verdict is incomplete:"
        if verdict == "incomplete"
        else "These MUST requirements were not fully checked:"
    )
    return (
        f'<section id="not-checked">\n<h2>MUST requirements not checked ({len(entries)})</h2>\n'
        f"<p>{_e(lead)}</p>\n<ul>\n{''.join(items)}</ul>\n</section>\n"
    )


def _informational_html(requirements: Sequence[Mapping[str, object]]) -> str:
    info = [r for r in requirements if r.get("informational")]
    if not info:
        return ""
    rows = "".join(
        f'<tr><td><a href="#req-{_e(_text(r, "id", "requirement"))}">'
        f"<code>{_e(_text(r, 'id', 'requirement'))}</code></a></td>"
        f"<td>{_badge(_text(r, 'level', 'requirement'))}</td>"
        f"<td>{_badge(_text(r, 'status', 'requirement'))}</td>"
        f"<td>{_e(_text(r, 'note', 'requirement'))}</td></tr>\n"
        for r in info
    )
    return (
        '<section id="informational">\n<h2>Informational: reference decisions</h2>\n'
        "<p>Where the documents and FACTS.md are silent, the reference server makes a choice. "
        "These checks show whether the target made the same choice; they never affect the "
        "verdict.</p>\n"
        "<table><thead><tr><th>Requirement</th><th>Level</th><th>Status</th>"
        f"<th>Decision</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n</section>\n"
    )


def _deviations_html(deviations: Sequence[Mapping[str, object]]) -> str:
    if not deviations:
        return ""
    rows = "".join(
        f'<tr><td><a href="#req-{_e(_text(d, "id", "deviation"))}">'
        f"<code>{_e(_text(d, 'id', 'deviation'))}</code></a></td>"
        f"<td><code>{_e(_text(d, 'test', 'deviation'))}</code></td>"
        f"<td>{_e(_text(d, 'what', 'deviation'))}</td></tr>\n"
        for d in deviations
    )
    return (
        '<section id="deviations">\n<h2>Recorded deviations</h2>\n'
        "<p>The target answered as the live system does where FACTS.md records that it differs "
        "from the document, and the spec records the difference (<code>x-deviation</code>). "
        "Neither a pass nor a failure.</p>\n"
        "<table><thead><tr><th>Requirement</th><th>Test</th><th>What was seen</th></tr></thead>"
        f"\n<tbody>\n{rows}</tbody></table>\n</section>\n"
    )


def _all_tests_html(tests: Sequence[Mapping[str, object]]) -> str:
    rows = []
    for test in tests:
        outcome = TestOutcome.from_dict(test)
        message = outcome.message.strip()
        if outcome.needs:
            message += f"\nneeds: {', '.join(outcome.needs)}"
        cell = f"<pre>{_capped_message(message)}</pre>" if message else ""
        rows.append(
            f"<tr><td><code>{_e(outcome.nodeid)}</code></td><td>{_badge(outcome.outcome)}</td>"
            f"<td>{outcome.duration_s:.2f}s</td>"
            f"<td>{'<br>'.join(f'<code>{_e(r)}</code>' for r in outcome.requirements)}</td>"
            f"<td>{cell}</td></tr>\n"
        )
    return (
        '<section id="tests">\n<h2>All tests</h2>\n'
        f"<details><summary>{len(tests)} test{'s' if len(tests) != 1 else ''}</summary>\n"
        "<table><thead><tr><th>Test</th><th>Outcome</th><th>Duration</th>"
        "<th>Requirements</th><th>Message</th></tr></thead>\n"
        f"<tbody>\n{''.join(rows)}</tbody></table>\n</details>\n</section>\n"
    )


def write_html(report: Mapping[str, object], path: Path) -> None:
    """Render a report (as built by build_report or read back from its JSON) as one HTML file."""
    _check_schema(report)
    target = _text(report, "target", "report")
    verdict = _text(report, "verdict", "report")
    apis = _strings(report.get("apis"), "report apis")
    summary = _mapping(report.get("summary"), "report summary")
    requirement_list = _objects(report.get("requirements"), "report requirements")
    requirements = {_text(r, "id", "requirement"): r for r in requirement_list}
    tests = _objects(report.get("tests"), "report tests")
    outcomes_by_nodeid: dict[str, list[str]] = {}
    for test in tests:
        outcomes_by_nodeid.setdefault(_text(test, "nodeid", "test"), []).append(
            _text(test, "outcome", "test")
        )
    test_counts = _mapping(summary.get("tests"), "summary tests")
    must = _mapping(_mapping(summary.get("by_level"), "summary by_level").get("MUST"), "MUST")
    untested_must = must.get("untested", 0)
    # A verdict over MUSTs that were never exercised is vacuous; say so next to it.
    warning = (
        f'<p class="warning">{_e(untested_must)} MUST requirement(s) untested.</p>\n'
        if isinstance(untested_must, int) and untested_must > 0
        else ""
    )
    unchecked = not_checked(report)
    decisions = report.get("decisions", "enforce")
    verdict_class = {"conformant": "ok", "incomplete": "incomplete"}.get(verdict, "bad")
    classes = _objects(report.get("classes"), "report classes")
    nav = "".join(
        f'<li><a href="#class-{_e(_text(c, "id", "class"))}">{_e(_text(c, "title", "class"))}</a>'
        "</li>"
        for c in classes
    )
    document = (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Conformance report: {_e(target)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        "<header>\n<h1>Conformance report</h1>\n"
        f'<p><span class="verdict {verdict_class}">'
        f"{_e(verdict)}</span></p>\n{warning}"
        f"<p><strong>Target:</strong> <code>{_e(target)}</code><br>\n"
        f"<strong>APIs:</strong> {_e(', '.join(apis))}<br>\n"
        + (
            f"<strong>Requirements:</strong> {_e(', '.join(_strings(report['req'], 'req')))}<br>\n"
            if report.get("req")
            else ""
        )
        + f"<strong>Decisions:</strong> {_e(decisions)}"
        + (" (the reference server's choices are informational)" if decisions == "inform" else "")
        + "<br>\n"
        f"<strong>Run:</strong> {_e(_text(report, 'started_at', 'report'))} → "
        f"{_e(_text(report, 'finished_at', 'report'))}<br>\n"
        "<strong>Tests:</strong> "
        + ", ".join(f"{_e(test_counts.get(o, 0))} {_e(o)}" for o in (*OUTCOMES, "total"))
        + "</p>\n"
        f"{_summary_html(summary)}"
        f"<nav><ul>{nav}</ul></nav>\n</header>\n<main>\n"
        + _not_checked_html(unchecked, verdict)
        + "".join(_class_html(c, requirements, outcomes_by_nodeid) for c in classes)
        + _deviations_html(_objects(report.get("deviations", []), "report deviations"))
        + _informational_html(requirement_list)
        + _failures_html(requirement_list)
        + _all_tests_html(tests)
        + "</main>\n</body>\n</html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document, encoding="utf-8")
