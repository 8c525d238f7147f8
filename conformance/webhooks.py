"""A webhook receiver for the suite: accepts AVA's signed events on 127.0.0.1 and says what came.

The plugin starts one receiver per run, in the controller (like the reference server), and hands
its URL to the xdist workers; tests ask it over HTTP (`GET /received?job_id=...`) what it was
sent. Every delivery is checked as a real receiver would check it (FACTS.md): the
`X-HLD-Signature-256` header must be `sha256=<hex HMAC-SHA256 of the raw body>` with the shared
secret, and the event's `created_at` must be at most 5 minutes old. A delivery that fails either
check is answered 400 and recorded with what was wrong.

The document promises only that "the event payload includes the full job record including output
and error"; where the record sits (`data`, `job`, the body itself, ...) and which field names the
event (`type`, `event`, ...) are a sender's choice. The receiver therefore finds the record as the
object that looks like one (an `id`, a `worker_id` and a `status`), wherever it is, and the event's
name as the first of the usual name fields, or any top-level string naming an `ava.` event.

To see retries, a job's input may ask the receiver to refuse its first deliveries:
`{"conformance_webhook": {"reject": 2}}` makes it answer 503 to the first two deliveries of that
job's event, then 200. The full job record is in the event, input included, so this works against
any deployment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .checks import ConformanceFailure
from .profile import TargetProfile

SIGNATURE_HEADER = "X-HLD-Signature-256"
WINDOW_S = 300.0  # "receivers reject events older than 5 minutes"
MAX_BODY = 5 * 1024 * 1024
HOOK_PATH = "/hooks"
_TYPE_KEYS = ("type", "event", "event_type", "name", "topic")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Received:
    received_at: float
    path: str
    event_id: str | None
    event_type: str | None
    job_id: str | None
    signature_ok: bool
    fresh: bool
    answered: int
    problem: str | None
    event: Any  # the parsed body, or None when it was not JSON
    record: Any  # the job record found in it, or None
    record_at: str | None  # where: "" for the body itself, else the dotted path to it


class WebhookReceiver:
    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.secret = secret
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._rejected: Counter[str] = Counter()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to ask what was received (loopback even when listening on every interface)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def hook_url(self) -> str:
        return self.url + HOOK_PATH

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413, {"error": "body too large"})
                    return
                body = self.rfile.read(length)
                status, record = receiver.accept(
                    self.path, self.headers.get(SIGNATURE_HEADER), body
                )
                self._answer(status, {"ok": status == 200, "problem": record.problem})

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/received":
                    self._answer(404, {"error": "GET /received?job_id=..."})
                    return
                job_id = parse_qs(parts.query).get("job_id", [None])[0]
                found = [asdict(r) for r in receiver.received(job_id)]
                self._answer(200, {"deliveries": found})

            def _answer(self, status: int, payload: Any) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the suite's output is the report, not an access log

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def accept(self, path: str, header: str | None, body: bytes) -> tuple[int, Received]:
        event: Any = None
        problem: str | None = None
        signature_ok = header is not None and hmac.compare_digest(
            header.encode(), signature(self.secret, body).encode()
        )
        try:
            event = json.loads(body)
        except ValueError:
            problem = "the body is not JSON"
        fresh = False
        record_at, job = find_record(event)
        data = job if isinstance(job, dict) else {}
        if isinstance(event, dict):
            fresh = _fresh(event.get("created_at"))
        if not signature_ok:
            problem = f"{SIGNATURE_HEADER} is missing or does not match the body"
        elif problem is None and not fresh:
            problem = "created_at is missing, not a date-time, or older than 5 minutes"
        # A body that is the record itself has no id of its own (its id is the job's).
        event_id = None
        if isinstance(event, dict) and record_at != "":
            event_id = _str(event.get("id")) or _str(event.get("event_id"))
        status = 200 if problem is None else 400
        if status == 200:
            key = event_id or f"{data.get('id')}:{event_type(event)}"
            wanted = _reject_count(data.get("input"))
            with self._lock:
                if self._rejected[key] < wanted:
                    self._rejected[key] += 1
                    status = 503
        record = Received(
            received_at=time.time(),
            path=path,
            event_id=event_id,
            event_type=event_type(event),
            job_id=_str(data.get("id")),
            signature_ok=signature_ok,
            fresh=fresh,
            answered=status,
            problem=problem,
            event=event,
            record=job,
            record_at=record_at,
        )
        with self._lock:
            self._received.append(record)
        return status, record

    def received(self, job_id: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self._received if job_id is None or r.job_id == job_id]


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and all(k in value for k in ("id", "worker_id", "status"))


def find_record(event: Any, depth: int = 2) -> tuple[str | None, dict[str, Any] | None]:
    """The job record in an event body, and the dotted path to it ("" for the body itself)."""
    if _is_record(event):
        return "", event
    if depth == 0 or not isinstance(event, dict):
        return None, None
    for key, value in event.items():
        path, found = find_record(value, depth - 1)
        if found is not None:
            return (f"{key}.{path}" if path else str(key)), found
    return None, None


def event_type(event: Any) -> str | None:
    """What the event calls itself: a usual name field, or a top-level `ava.` string."""
    if not isinstance(event, dict):
        return None
    for key in _TYPE_KEYS:
        value = event.get(key)
        if isinstance(value, str) and value.startswith("ava."):
            return value
    for value in event.values():
        if isinstance(value, str) and value.startswith("ava."):
            return value
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _reject_count(job_input: Any) -> int:
    if not isinstance(job_input, dict):
        return 0
    spec = job_input.get("conformance_webhook")
    value = spec.get("reject") if isinstance(spec, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _fresh(created_at: Any) -> bool:
    if not isinstance(created_at, str):
        return False
    try:
        ts = datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    age = time.time() - ts
    # A minute of clock skew the other way is tolerated; older than the window is not.
    return -60.0 <= age <= WINDOW_S


# -- wiring for a run ----------------------------------------------------------------------------


def plan(profile: TargetProfile, *, starting_server: bool) -> tuple[tuple[str, int] | None, str]:
    """Where to listen for this run, or why the webhook checks must skip."""
    listen = profile.get("ava.webhooks.listen")
    if listen is None or profile.get("ava.webhooks.secret") is None:
        return None, "the profile has no ava.webhooks (listen, secret): callbacks are not checked"
    host, _, port_text = str(listen).rpartition(":")
    if not host or not port_text.isdigit():
        return None, f"ava.webhooks.listen {listen!r} is not host:port"
    port = int(port_text)
    if port == 0 and not starting_server:
        return None, (
            "ava.webhooks.listen has port 0, so the target cannot know where to call back: "
            "set the fixed host:port the deployment was configured to call"
        )
    return (host, port), ""


class ReceiverClient:
    """What a test (in any xdist worker) uses to ask the run's receiver what arrived."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url.rstrip("/")
        self.secret = secret
        # One client for every poll: the receiver is plain HTTP, and a client per request would
        # load the CA bundle each time, which took longer than the wait between polls.
        self.http = httpx.Client(timeout=5.0, verify=False)

    def close(self) -> None:
        self.http.close()

    def deliveries(self, job_id: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.url}/received", params={"job_id": job_id})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["deliveries"]
        return found

    def wait_for(
        self,
        job_id: str,
        *,
        accepted: int = 1,
        timeout_s: float = 10.0,
        event_types: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Every delivery for the job named one of `event_types` (default: any), once
        `accepted` of them were answered 200. A sender may announce more than the documented
        events (started, cancelled, ...): those are left out, never an error."""
        deadline = time.monotonic() + timeout_s
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = [
                d
                for d in self.deliveries(job_id)
                if event_types is None or d["event_type"] in event_types
            ]
            if sum(1 for d in found if d["answered"] == 200) >= accepted:
                return found
            if any(d["answered"] == 400 for d in found):
                break  # a bad signature or a stale event will not get better by waiting
            time.sleep(0.02)
        wanted = f" ({' or '.join(sorted(event_types))})" if event_types else ""
        raise ConformanceFailure(
            f"no accepted webhook{wanted} for job {job_id} within {timeout_s:.0f}s",
            "; ".join(f"{d['event_type']} answered {d['answered']}: {d['problem']}" for d in found)
            or "nothing arrived",
        )
