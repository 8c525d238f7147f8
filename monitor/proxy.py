"""The reverse proxy: forwards every request unchanged to the upstream and streams the response
back as it arrives (an event stream event by event), recording each exchange for the checks.

Nothing is added to or removed from the traffic but the hop-by-hop headers (RFC 9110 7.6.1:
Connection and the headers it names, Keep-Alive, Proxy-*, TE, Trailer, Transfer-Encoding,
Upgrade) and Host, which names the upstream. The request body is read whole before forwarding
(the APIs' bodies are small JSON documents); the response is forwarded chunk by chunk, with its
content coding untouched (it is undone only for reading). The monitor's own pages live under
`/_monitor/`, which is therefore not forwarded.
"""

from __future__ import annotations

import asyncio
import html
import json
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.types import Message, Receive, Scope, Send

from conformance.masking import Masker
from conformance.requirements import Catalog

from .checks import Checker, Snapshot
from .exchange import BODY_CAP, Exchange
from .ledger import Ledger, Violation
from .report import in_scope
from .routes import Route, Router
from .sse import Decoder, EventReader
from .state import Jobs
from .tenants import Tenants
from .upstream import Pool, Response, UpstreamError

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
PREFIX = "/_monitor"
# --probe: where a job's status is read, and the request headers that say who asks.
PROBE_PATHS = {
    "auvy": "/v1/jobs/{}/status",
    "ava": "/v1/ava/jobs/{}",
    "strait": "/v1/runs/{}",
}
PROBE_HEADERS = frozenset(
    {"authorization", "x-internal-secret", "x-tenant-id", "x-user-id", "x-platform-role"}
)
PROBE_TIMEOUT_S = 10.0


Headers = list[tuple[bytes, bytes]]


def forwardable(headers: Headers, *, drop_host: bool) -> Headers:
    named = {
        token.strip().lower().encode()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.decode("latin-1").split(",")
    }
    out = []
    for name, value in headers:
        lower = name.lower()
        if lower.decode("latin-1") in HOP_BY_HOP or lower in named:
            continue
        if drop_host and lower == b"host":
            continue
        out.append((name, value))
    return out


def _joined(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


class Monitor:
    """Everything one monitor run holds: the upstream client, the checks and their ledger."""

    def __init__(
        self,
        upstream: str,
        *,
        profile: Mapping[str, Any],
        apis: list[str],
        catalog: Catalog,
        decisions: bool = False,
        job_cap: int | None = None,
        probe: bool = False,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.pool = Pool(self.upstream)
        self.apis = apis
        self.catalog = catalog
        self.decisions = decisions
        bases = {api: str(profile.get(api, {}).get("base_path", "")).rstrip("/") for api in apis}
        self.bases = bases
        self.router = Router(bases)
        masker = Masker.from_profile(profile)
        self.ledger = Ledger(masker, str(self.upstream))
        self.jobs = Jobs() if job_cap is None else Jobs(job_cap)
        self.checker = Checker(Tenants(profile), self.jobs, self.ledger)
        self.probe = probe
        self._probes: set[asyncio.Task[None]] = set()
        if probe:
            self.checker.suspect = self._probe_soon
        self.started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._seq = 0
        self.check_errors = 0
        self.probes_sent = 0

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            await self.aclose()
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == PREFIX or path.startswith(PREFIX + "/"):
            await self.page(path, send)
            return
        await self.forward(scope, receive, send)

    # -- forwarding ----------------------------------------------------------------------------

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query: bytes = scope.get("query_string", b"")
        target = raw_path + (b"?" + query if query else b"")
        headers = forwardable(list(scope["headers"]), drop_host=True)
        self._seq += 1
        exchange = Exchange(
            seq=self._seq,
            method=scope["method"],
            path=scope["path"],
            query=query.decode("latin-1"),
            request_headers=_joined(list(scope["headers"])),
            request_body=bytes(body[:BODY_CAP]),
            started_at=time.monotonic(),
        )
        route = self.router.match(exchange.method, exchange.path)
        snapshot = self.checker.begin(route, exchange) if route is not None else None
        try:
            upstream = await self.pool.request(scope["method"], target, headers, bytes(body))
        except UpstreamError as error:
            exchange.error = f"upstream: {error}"
            await _send_bad_gateway(send, exchange.error)
            self._done(route, exchange, snapshot)
            return
        try:
            exchange.status = upstream.status
            raw_headers = forwardable(upstream.headers, drop_host=False)
            exchange.response_headers = _joined(raw_headers)
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status,
                    "headers": raw_headers,
                }
            )
            if route is not None and snapshot is not None:
                self._guarded(self.checker.stream_started, route, exchange)
            await self._relay(upstream, exchange, receive, send, route)
        finally:
            await upstream.aclose()
            exchange.finished_at = time.monotonic()
            self._done(route, exchange, snapshot)

    async def _relay(
        self,
        upstream: Response,
        exchange: Exchange,
        receive: Receive,
        send: Send,
        route: Route | None,
    ) -> None:
        decoder = Decoder(exchange.response_headers.get("content-encoding", ""))
        reader = EventReader() if exchange.media_type == "text/event-stream" else None
        if reader is not None:
            exchange.events = []
        kept = bytearray()

        async def pump() -> None:
            async for chunk in upstream.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                plain = decoder.feed(chunk)
                if reader is not None:
                    for event in reader.feed(plain):
                        event.at = time.monotonic()
                        exchange.add_event(event)
                        if route is not None and exchange.progress is not None:
                            self._guarded(self.checker.stream_event, route, exchange, event)
                elif len(kept) < BODY_CAP:
                    kept.extend(plain[: BODY_CAP - len(kept)])
                    if len(kept) >= BODY_CAP:
                        exchange.body_truncated = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            exchange.complete = True

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        pumping = asyncio.ensure_future(pump())
        watching = asyncio.ensure_future(disconnected())
        try:
            done, _ = await asyncio.wait({pumping, watching}, return_when=asyncio.FIRST_COMPLETED)
            if pumping not in done:
                exchange.client_closed = True
            for task in (pumping, watching):
                task.cancel()
            await asyncio.gather(pumping, watching, return_exceptions=True)
            if pumping in done and pumping.exception() is not None:
                exchange.error = f"upstream: {pumping.exception()!r}"
        finally:
            exchange.response_body = bytes(kept)
            if decoder.failed:
                exchange.body_truncated = True

    def _done(self, route: Route | None, exchange: Exchange, snapshot: Snapshot | None) -> None:
        self.ledger.exchanges += 1
        if route is None or snapshot is None:
            return
        self._guarded(self.checker.finish, route, exchange, snapshot)

    def _guarded(self, check: Callable[..., object], *args: object) -> None:
        """Run a check; a bug in one must never break the traffic (it is counted and printed,
        and /_monitor/status shows the count)."""
        try:
            check(*args)
        except Exception:
            self.check_errors += 1
            traceback.print_exc()

    # -- --probe ------------------------------------------------------------------------------

    def _probe_soon(self, api: str, job_id: str, exchange: Exchange, violation: Violation) -> None:
        task = asyncio.ensure_future(self._probe(api, job_id, exchange, violation))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, api: str, job_id: str, exchange: Exchange, violation: Violation) -> None:
        """Re-read the job's status once, with the credentials of the exchange that showed the
        violation, and note the answer on the violation (it judges nothing by itself)."""
        path = PROBE_PATHS[api].format(quote(job_id, safe=""))
        target = f"{self.bases.get(api, '')}{path}"
        headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in exchange.request_headers.items()
            if name in PROBE_HEADERS
        ]
        self.probes_sent += 1
        try:
            answer = await asyncio.wait_for(
                self.pool.request("GET", target.encode(), headers, b""), PROBE_TIMEOUT_S
            )
            try:
                body = b"".join(
                    [c async for c in answer.chunks()]  # a status is a small JSON document
                )
            finally:
                await answer.aclose()
            record: Any = json.loads(body) if body else None
            if isinstance(record, dict) and isinstance(record.get("data"), dict):
                record = record["data"]
            status = record.get("status") if isinstance(record, dict) else None
            note = f"[--probe: GET {target} then answered {answer.status}, status {status!r}]"
        except (UpstreamError, TimeoutError, ValueError) as error:
            note = f"[--probe: GET {target} failed: {error!r}]"
        violation.notes.append(self.ledger.masker.text(note))

    # -- /_monitor/ ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        scope = in_scope(self.apis)
        return {
            "mode": "monitor",
            "upstream": str(self.upstream),
            "started_at": self.started_at,
            "exchanges": self.ledger.exchanges,
            "jobs_tracked": len(self.jobs),
            "jobs_evicted": self.jobs.evicted,
            "check_errors": self.check_errors,
            "probes_sent": self.probes_sent,
            "requirements": [
                {
                    "id": req,
                    "level": self.catalog.get(req).level,
                    "authority": self.catalog.get(req).authority,
                    "observations": self.ledger.observed[req],
                    "violations": self.ledger.failed[req],
                    "status": (
                        "fail"
                        if self.ledger.failed[req]
                        else "pass"
                        if self.ledger.observed[req]
                        else "unobserved"
                    ),
                }
                for req in scope
            ],
            "recent_violations": [v.to_dict() for v in reversed(self.ledger.recent)],
        }

    async def page(self, path: str, send: Send) -> None:
        if path.rstrip("/") == f"{PREFIX}/status":
            body = json.dumps(self.status()).encode()
            content_type = b"application/json"
            status = 200
        elif path in (PREFIX, PREFIX + "/"):
            body = LIVE_PAGE.replace("{{upstream}}", html.escape(str(self.upstream))).encode()
            content_type = b"text/html; charset=utf-8"
            status = 200
        else:
            body, content_type, status = b"not found", b"text/plain", 404
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _send_bad_gateway(send: Send, why: str) -> None:
    body = json.dumps({"monitor": "the upstream did not answer", "error": why}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 502,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


LIVE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Conformance monitor</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2em .5em; }
.fail { color: #cf222e; font-weight: bold; } .pass { color: #1a7f37; }
.unobserved { color: #6e7781; }
pre { background: #f6f8fa; padding: .5em; white-space: pre-wrap; max-height: 12em; overflow: auto; }
</style></head>
<body>
<h1>Conformance monitor</h1>
<p>Upstream <code>{{upstream}}</code>. Exchanges: <span id="exchanges">0</span>.
Jobs tracked: <span id="jobs">0</span>. Updated every second from
<a href="status">/_monitor/status</a>.</p>
<h2>Violations, latest first</h2><div id="violations"><p>none yet</p></div>
<h2>Requirements</h2>
<table><thead><tr><th>requirement</th><th>level</th><th>status</th><th>observations</th>
<th>violations</th></tr></thead><tbody id="reqs"></tbody></table>
<script>
function esc(s) {
  const d = document.createElement("div"); d.textContent = String(s); return d.innerHTML;
}
async function refresh() {
  try {
    const s = await (await fetch("status", {cache: "no-store"})).json();
    document.getElementById("exchanges").textContent = s.exchanges;
    document.getElementById("jobs").textContent = s.jobs_tracked;
    document.getElementById("reqs").innerHTML = s.requirements.map(r =>
      `<tr><td>${esc(r.id)}</td><td>${esc(r.level)}</td><td class="${esc(r.status)}">` +
      `${esc(r.status)}</td><td>${r.observations}</td><td>${r.violations}</td></tr>`).join("");
    document.getElementById("violations").innerHTML = s.recent_violations.length ?
      s.recent_violations.map(v => `<div><p class="fail">${esc(v.requirement)}: ` +
        `${esc(v.message)} <small>${esc(v.at)}</small></p>` +
        v.exchanges.map(e => `<pre>${esc(e.method)} ${esc(e.url)} -> ${esc(e.status)}\\n` +
          `${esc(e.response_body.slice(0, 1000))}</pre>`).join("") + `</div>`).join("") :
      "<p>none yet</p>";
  } catch (e) { /* the monitor is restarting; try again */ }
}
refresh(); setInterval(refresh, 1000);
</script>
</body></html>
"""
