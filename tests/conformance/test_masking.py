"""No credential reaches a report: the masker's rules one by one, then the whole run end to end
against a reference server with faults that make credential and share-token checks fail, behind a
proxy that sees every token the traffic carried."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.clients.http import Recorder, mask_exchange
from conformance.masking import MASK, Masker, masked, run_masker, seed_run_masker
from conformance.report import Exchange
from conformance.server import ReferenceServer

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "fixtures" / "reference.toml"
SAMPLE = REPO / "fixtures" / "profile.sample.toml"
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"

JWT = (
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfeCIsImV4cCI6NDEwMjQ0NDgwMH0."
    "c2lnbmF0dXJlX29mX3RoZV90b2tlbg"
)
STRAIT_KEY = "strait_" + "0123456789abcdef" * 4


def reference_secrets() -> set[str]:
    """The reference profile's secrets, found independently of the masker: every string under
    a key or table whose name says it holds a credential."""
    found: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, secret or re.search(r"key|secret|token|jwt|password", key) is not None)
        elif isinstance(node, list):
            for value in node:
                walk(value, secret)
        elif isinstance(node, str) and secret:
            found.add(node)

    walk(tomllib.loads(REFERENCE.read_text(encoding="utf-8")), False)
    return found


# --- the rules ------------------------------------------------------------------------------------


def test_every_secret_of_the_reference_profile_is_known() -> None:
    secrets = reference_secrets()
    masker = Masker.from_profile(tomllib.loads(REFERENCE.read_text(encoding="utf-8")))
    assert secrets <= masker.secrets
    data = tomllib.loads(REFERENCE.read_text(encoding="utf-8"))
    expected = {
        *data["auvy"]["keys"].values(),
        data["auvy"]["public"]["user_jwt"],
        data["auvy"]["public"]["expired_jwt"],
        data["auvy"]["public"]["receptors"]["main"]["token"],
        data["auvy"]["public"]["receptors"]["main"]["revoked_token"],
        data["auvy"]["fuzz"]["key"],
        data["auvy"]["fuzz"]["share_token"],
        data["ava"]["secret"],
        data["ava"]["webhooks"]["secret"],
        data["strait"]["key"],
        data["strait"]["other"]["key"],
        data["strait"]["dlqlab"]["key"],
    }
    assert expected <= masker.secrets
    # Ids, slugs and names are not secrets: masking them would make reports unreadable.
    assert not {"acme", "proj_acme", "ten_acme", "wkr_acme_complete"} & masker.secrets


def test_the_sample_profile_secret_slots_are_all_found() -> None:
    data = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))
    found = Masker.from_profile(data).secrets
    assert "<x-internal-secret of the deployment>" in found
    assert "<its active share token>" in found
    assert "<read-write API key of the main workspace>" in found


def test_a_masked_secret_keeps_a_short_prefix() -> None:
    assert masked("shr_acme_support_valid_7Hq2mK9xQ") == "shr_ac" + MASK
    assert masked("Bearer auvy_test_acme_rw") == "Bearer auvy_" + MASK
    assert masked("abcdefgh") == "ab" + MASK
    assert masked("ab" + MASK) == "ab" + MASK  # masking twice changes nothing


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("/v1/public/jobs/j/stream?t=shr_fresh_token_1&workspace=acme", "shr_fresh_token_1"),
        ("/x?workspace=acme&token=tok_abcdefgh", "tok_abcdefgh"),
        ("/x?share_token=shr_abcdefgh#frag", "shr_abcdefgh"),
        ("/x?api_key=k_abcdefghij", "k_abcdefghij"),
        ("/x?key=k_abcdefghij", "k_abcdefghij"),
        ('{"share_token": "shr_in_json_9"}', "shr_in_json_9"),
        ('{"token":"shr_compact_77"}', "shr_compact_77"),
        ('{"secret": "whsec_new_one"}', "whsec_new_one"),
        ('{"api_key": "ak_123456789"}', "ak_123456789"),
        ('{"password": "hunter2hunter2"}', "hunter2hunter2"),
        ("{'token': 'shr_in_a_repr_1'}", "shr_in_a_repr_1"),
        ("{'x-internal-secret': 'internal_value_1'}", "internal_value_1"),
        ("curl -H 'Authorization: Bearer opaque_credential_1'", "opaque_credential_1"),
        ("x-api-key: apikey_value_12\n", "apikey_value_12"),
        ("Set-Cookie: session=cookie_value_123; Path=/", "session=cookie_value_123; Path=/"),
        (f"the jwt {JWT} expired", JWT),
        (f"key {STRAIT_KEY} rejected", STRAIT_KEY),
    ],
)
def test_what_looks_like_a_secret_is_masked_and_learned(text: str, secret: str) -> None:
    masker = Masker()
    assert secret not in masker.text(text)
    masker.learn(text)
    # Learned: masked later wherever it appears, even where nothing marks it as a secret.
    core = secret.split(";")[0].split("=")[-1]
    assert core not in masker.text(f"/v1/public/{core}/stream")


def test_ordinary_values_under_secret_looking_fields_are_not_learned() -> None:
    masker = Masker()
    masker.learn('{"key": "status", "token": "abc"}')
    assert masker.secrets == set()
    assert masker.text("status") == "status"


def test_a_secret_containing_another_is_masked_whole() -> None:
    masker = Masker(["auvy_test_acme", "auvy_test_acme_limited"])
    assert masker.text("key auvy_test_acme_limited") == "key auvy_t" + MASK


def test_credential_headers_are_masked_whatever_their_value() -> None:
    headers = Masker().headers(
        {
            "Authorization": "Bearer opaque",
            "X-Internal-Secret": "s3cr3t-value",
            "Cookie": "a=b",
            "Proxy-Authorization": "Basic dXNlcjpwYXNz",
            "X-Request-Id": "req_1",
        }
    )
    assert headers == {
        "Authorization": "Bearer op" + MASK,
        "X-Internal-Secret": "s3cr" + MASK,
        "Cookie": "a" + MASK,
        "Proxy-Authorization": "Basic dXNl" + MASK,
        "X-Request-Id": "req_1",
    }


def test_the_recorder_masks_every_part_and_learns_new_tokens() -> None:
    masker = Masker(["auvy_test_acme_rw"])
    recorder = Recorder(masker=masker)
    recorder.add(
        Exchange(
            method="POST",
            url="http://t/auvy/v1/receptors/r/share?t=shr_old_token_1",
            request_headers={"authorization": "Bearer auvy_test_acme_rw"},
            request_body='{"note": "auvy_test_acme_rw"}',
            status=201,
            response_headers={"set-cookie": "sid=cookie_session_1"},
            response_body='{"share_token": "shr_brand_new_token_1"}',
        )
    )
    shown = json.dumps(recorder.exchanges[-1].to_dict())
    for secret in ("auvy_test_acme_rw", "shr_old_token_1", "shr_brand_new_token_1", "cookie_s"):
        assert secret not in shown
    # The new token is known from now on, e.g. in a later failure message.
    assert "shr_brand_new_token_1" not in masker.text("GET /v1/public/shr_brand_new_token_1")
    again = mask_exchange(recorder.exchanges[-1], masker)
    assert again == recorder.exchanges[-1]


def test_the_run_masker_is_one_per_process_and_seeded_from_the_profile() -> None:
    assert run_masker() is run_masker()
    seed_run_masker({"strait": {"key": STRAIT_KEY}})
    assert STRAIT_KEY in run_masker().secrets


# --- end to end -----------------------------------------------------------------------------------

FAULTS = ("share-scope-widened", "revoked-token-works", "workspace-blind", "ava-cancel-terminal-ok")
REQUIREMENTS = (
    "auvy.public.token",
    "auvy.errors.other-workspace-404",
    "ava.jobs.cancel.terminal-409",
    "ava.access.secret",
    "strait.access",
)

SUITE_PATHS = [
    "conformance/auvy/test_public.py",
    "conformance/auvy/test_shares.py",
    "conformance/auvy/test_errors.py",
    "conformance/ava",
    "conformance/strait/test_access.py",
]


class Spy(ThreadingHTTPServer):
    """A pass-through proxy that keeps every request line, header and body it carries."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _SpyHandler)
        self.upstream = upstream
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.http = httpx.Client(timeout=httpx.Timeout(30.0))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def keep(self, text: str) -> None:
        with self.lock:
            self.seen.append(text)


class _SpyHandler(BaseHTTPRequestHandler):
    server: Spy

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        self.server.keep(
            f"{self.command} {self.path}\n{self.headers}\n{body.decode('utf-8', 'replace')}"
        )
        request = self.server.http.build_request(
            self.command, self.server.upstream + self.path, headers=headers, content=body
        )
        response = self.server.http.send(request, stream=True)
        try:
            self.send_response(response.status_code)
            for name, value in response.headers.multi_items():
                if name.lower() not in (
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "content-encoding",
                ):
                    self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            kept = []
            for chunk in response.iter_bytes():
                kept.append(chunk)
                self.wfile.write(chunk)
                self.wfile.flush()
            self.server.keep(f"{response.headers}\n{b''.join(kept).decode('utf-8', 'replace')}")
        except OSError:
            pass  # the suite dropped the connection (it does, to test resumption)
        finally:
            response.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def spy_on_faulty_server() -> Iterator[Spy]:
    extra = tuple(arg for fault in FAULTS for arg in ("--fault", fault))
    with ReferenceServer(CI_PROFILE, extra_args=extra) as server:
        spy = Spy(server.url)
        thread = threading.Thread(target=spy.serve_forever, daemon=True)
        thread.start()
        try:
            yield spy
        finally:
            spy.shutdown()
            spy.server_close()
            spy.http.close()
            thread.join(10)


def tokens_in(traffic: list[str]) -> set[str]:
    """Every credential the traffic carried: share tokens and keys by their forms, and the values
    of token-ish JSON fields and query parameters."""
    found: set[str] = set()
    for text in traffic:
        found |= set(re.findall(r"\bshr_[A-Za-z0-9_-]{6,}", text))
        found |= set(re.findall(r"\bstrait_[0-9a-f]{64}\b", text))
        found |= set(re.findall(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*", text))
        found |= set(
            re.findall(r"\"(?:share_token|token|secret|api_key)\"\s*:\s*\"([^\"]{8,})\"", text)
        )
        found |= set(re.findall(r"[?&](?:t|token|share_token|api_key)=([^&\s]{8,})", text))
        found |= set(
            re.findall(r"(?i)^(?:authorization: Bearer |x-internal-secret: )(\S+)$", text, re.M)
        )
    return found


@pytest.mark.parametrize(
    "workers",
    [("-p", "no:xdist"), ("-n", "2")],
    ids=["one-process", "xdist"],  # with xdist, workers learn tokens; the controller writes
)
def test_no_secret_reaches_any_report(
    spy_on_faulty_server: Spy, tmp_path: Path, workers: tuple[str, str]
) -> None:
    # The other project's key is the main key: Strait's isolation checks fail, and their
    # recorded exchanges carry Strait keys.
    data = REFERENCE.read_text(encoding="utf-8")
    main_key = tomllib.loads(data)["strait"]["key"]
    other_key = tomllib.loads(data)["strait"]["other"]["key"]
    profile = tmp_path / "target.toml"
    profile.write_text(data.replace(other_key, main_key), encoding="utf-8")
    reports = tmp_path / "reports"
    args = [
        sys.executable, "-m", "pytest", *SUITE_PATHS, "-q", *workers, "-p", "no:randomly",
        "--target", spy_on_faulty_server.url, "--profile", str(profile),
        f"--report-dir={reports}", "--junitxml", str(reports / "junit.xml"),
        "--decisions", "enforce",
    ]  # fmt: skip
    for requirement in REQUIREMENTS:
        args += ["--req", requirement]
    run = subprocess.run(
        args,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert (reports / "conformance.json").exists(), (
        f"the run wrote no report:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    )
    report = json.loads((reports / "conformance.json").read_text(encoding="utf-8"))
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    # The control: the faults made credential and token checks fail, with exchanges recorded.
    for broken in (
        "auvy.public.token.scoped",
        "auvy.public.token.revocable",
        "ava.jobs.cancel.terminal-409",
        "strait.access.other-project-404",
    ):
        assert statuses.get(broken) == "fail", (
            f"{broken}: {statuses.get(broken)}\n{run.stdout[-3000:]}"
        )
    outputs = {
        name: (reports / name).read_text(encoding="utf-8")
        for name in ("junit.xml", "conformance.json", "conformance.html")
    }
    outputs["terminal"] = run.stdout + run.stderr
    assert "Bearer strait" in outputs["conformance.json"], "no Strait exchange was recorded"
    traffic_tokens = tokens_in(spy_on_faulty_server.seen)
    assert traffic_tokens & set(re.findall(r"shr_\w+", data)), "the spy saw no share token"
    # Deliberately wrong credentials of the suite's own making (in its source, or built there
    # and shown as test ids) are public already; every other token the traffic carried counts.
    public = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "conformance").rglob("*.py"))
    public += "\n".join(re.findall(r'<testcase [^>]*name="([^"]*)"', outputs["junit.xml"]))
    new_tokens = {t for t in traffic_tokens - reference_secrets() if t not in public}
    secrets = reference_secrets() | new_tokens
    assert len(secrets) > 20
    leaks = {name: sorted(s for s in secrets if s in text) for name, text in outputs.items()}
    assert not any(leaks.values()), (
        f"secrets in reports: {leaks}; tokens new in the run: {sorted(new_tokens)}"
    )
