"""Deliberate violations, for proving that the conformance suite catches them.

`python -m mock_server --fault NAME` wraps the app in `FaultMiddleware`, which breaks one
documented behaviour on the wire while the model underneath stays correct. The project's own tests
start the server with each fault, run the suite, and check that the run fails naming the
requirement (`tests/conformance/test_faults.py`). Frontend developers can use them too, to see how
a UI copes with a misbehaving backend.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .apis.base import scope_bearer_token
from .model.receptors import Receptors


@dataclass(frozen=True)
class Fault:
    name: str
    breaks: str  # the requirement id it violates
    description: str


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "cancel-terminal-ok",
            "auvy.jobs.cancel.terminal-400",
            "cancel of a completed or failed job answers 200 instead of 400",
        ),
        Fault(
            "after-inclusive",
            "auvy.stream.after-exclusive",
            "the stream also sends the entry whose id equals `after`",
        ),
        Fault(
            "resume-drops-first",
            "auvy.stream.resume-after-disconnect",
            "a stream read with `after` silently skips its first entry",
        ),
        Fault(
            "stream-without-ids",
            "auvy.stream.wire-format",
            "event-stream entries lose their `id:` lines",
        ),
        Fault("no-keepalive", "auvy.stream.keepalive", "`: ping` comments are never sent"),
        Fault(
            "stream-stays-open",
            "auvy.stream.ends-after-terminal",
            "the response stays open for 20 s after the terminal entry",
        ),
        Fault(
            "workspace-blind",
            "auvy.errors.other-workspace-404",
            "every valid key acts as the first key of the seed world",
        ),
        Fault(
            "list-ignores-status",
            "auvy.jobs.list.filters",
            "GET /v1/jobs ignores its status filter",
        ),
        Fault(
            "untyped-errors",
            "auvy.errors.typed-codes",
            'error bodies are {"error": message} without a code',
        ),
        Fault(
            "input-accepts-anything",
            "auvy.jobs.input.other-shapes-400",
            "job input that should be rejected answers 200 and changes nothing",
        ),
        Fault(
            "ava-cancel-terminal-ok",
            "ava.jobs.cancel.terminal-409",
            "AVA cancel of a completed, failed or cancelled job answers 200 instead of 409",
        ),
        Fault(
            "ava-priority-ignored",
            "ava.jobs.priority.order",
            "AVA triggers lose their priority, so every job queues at 5 and leaves FIFO",
        ),
        Fault(
            "share-scope-widened",
            "auvy.public.token.scoped",
            "any active share token opens every receptor named in a public path",
        ),
        Fault(
            "strait-cancel-terminal-ok",
            "strait.cancel.terminal-400",
            "Strait cancel of a finished run answers 200 with the run instead of 400",
        ),
        Fault(
            "ava-tenant-blind",
            "ava.access.tenant-isolation",
            "every AVA request acts for the seed world's first tenant, whatever x-tenant-id says",
        ),
        Fault(
            "ava-logs-limit-ignored",
            "ava.jobs.logs.max-limit",
            "AVA logs ignore `limit`: every read returns the default 100 lines",
        ),
        Fault(
            "strait-list-ignores-status",
            "strait.list.status",
            "GET /v1/runs ignores its status filter",
        ),
        Fault(
            "strait-project-blind",
            "strait.access.other-project-404",
            "every valid Strait key acts as the first key of the seed world (its project)",
        ),
        Fault(
            "revoked-token-works",
            "auvy.public.token.revocable",
            "revoked and rotated-out share tokens keep working",
        ),
    )
}


def _predecessor(ident: str) -> str | None:
    m = re.fullmatch(r"([0-9]+)-([0-9]+)", ident)
    if m is None:
        return None
    ms, seq = int(m[1]), int(m[2])
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{2**64 - 1}" if ms > 0 else None


def _rewrite_query(
    scope: Scope, change: Callable[[list[tuple[str, str]]], list[tuple[str, str]]]
) -> Scope:
    from urllib.parse import parse_qsl, urlencode

    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return {**scope, "query_string": urlencode(change(pairs)).encode("latin-1")}


class FaultMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        faults: Iterable[str],
        *,
        first_key: str | None = None,
        first_tenant: str | None = None,
        strait_keys: Mapping[str, object] | None = None,
        receptors: Receptors | None = None,
    ) -> None:
        unknown = sorted(set(faults) - set(FAULTS))
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(sorted(FAULTS))}")
        self.app = app
        self.faults = frozenset(faults)
        self.first_key = first_key
        self.first_tenant = first_tenant
        # The model's own key table, read at request time (a reset refills it in place).
        self.strait_keys: Mapping[str, object] = strait_keys if strait_keys is not None else {}
        self.receptors = receptors

    def on(self, name: str) -> bool:
        return name in self.faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_mock"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        streaming = path.endswith("/stream")
        has_after = b"after=" in scope.get("query_string", b"")
        if self.on("after-inclusive") and streaming:
            scope = _rewrite_query(
                scope, lambda q: [(k, _predecessor(v) or v if k == "after" else v) for k, v in q]
            )
        if self.receptors is not None and "/v1/public/" in path:
            scope = _rewrite_query(scope, lambda q: [self._swap_share(k, v, path) for k, v in q])
        if (
            self.on("list-ignores-status")
            and path.endswith("/v1/jobs")
            and scope["method"] == "GET"
        ):
            scope = _rewrite_query(scope, lambda q: [(k, v) for k, v in q if k != "status"])
        if self.on("ava-logs-limit-ignored") and "/v1/ava/jobs/" in path and path.endswith("/logs"):
            scope = _rewrite_query(scope, lambda q: [(k, v) for k, v in q if k != "limit"])
        if (
            self.on("strait-list-ignores-status")
            and path.endswith("/v1/runs")
            and scope["method"] == "GET"
        ):
            scope = _rewrite_query(scope, lambda q: [(k, v) for k, v in q if k != "status"])
        if self.on("workspace-blind") and self.first_key and "/auvy/" in path:
            scope = _with_header(scope, b"authorization", b"Bearer " + self.first_key.encode())
        if self.on("strait-project-blind") and "/strait/" in path:
            # Only a key the model knows: an unknown or malformed one still gets its 401.
            first = next(iter(self.strait_keys), None)
            if first is not None and scope_bearer_token(scope) in self.strait_keys:
                scope = _with_header(scope, b"authorization", b"Bearer " + first.encode())
        if self.on("ava-tenant-blind") and self.first_tenant and "/v1/ava/" in path:
            scope = _with_header(scope, b"x-tenant-id", self.first_tenant.encode())
        swallow_400 = (
            (self.on("cancel-terminal-ok") and path.endswith("/cancel"))
            or (self.on("input-accepts-anything") and path.endswith("/input"))
            or (
                # DELETE /v1/runs/{runID}; the run is then read back as if it had been canceled.
                self.on("strait-cancel-terminal-ok")
                and scope["method"] == "DELETE"
                and re.search(r"/v1/runs/[^/]+$", path) is not None
            )
        )
        ava = "/v1/ava/jobs" in path
        swallow_409 = self.on("ava-cancel-terminal-ok") and ava and path.endswith("/cancel")
        if self.on("ava-priority-ignored") and ava and scope["method"] == "POST":
            receive = _without_priority(receive)
        state: dict[str, Any] = {"status": 200, "dropped": False, "buffer": b""}

        async def send_faulty(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                if (swallow_400 and message["status"] == 400) or (
                    swallow_409 and message["status"] == 409
                ):
                    state["hold"] = message
                    return
                if self.on("untyped-errors") and message["status"] >= 400:
                    state["hold"] = message
                    return
                await send(message)
                return
            if "hold" in state:
                state["buffer"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                start, body = state.pop("hold"), state["buffer"]
                if (start["status"] == 400 and swallow_400) or (
                    start["status"] == 409 and swallow_409
                ):
                    start, body = await self._status_instead(pristine, start)
                elif self.on("untyped-errors"):
                    body = json.dumps({"error": json.loads(body).get("message", "error")}).encode()
                headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if streaming and state["status"] == 200:
                message = self._filter_stream(message, has_after, state)
                if not message.get("more_body") and self.on("stream-stays-open"):
                    await send({**message, "more_body": True})
                    await asyncio.sleep(20)
                    await send({"type": "http.response.body", "body": b""})
                    return
            await send(message)

        # Routing writes the mount into the scope it is given (root_path, path_params); the
        # status request of `_status_instead` must start from the scope as it arrived.
        pristine = dict(scope)
        await self.app(scope, receive, send_faulty)

    def _swap_share(self, key: str, value: str, path: str) -> tuple[str, str]:
        """Replace a share token with one the model will accept, as a too-lenient server would."""
        assert self.receptors is not None
        share = self.receptors.shares.get(value)
        if key != "t" or share is None:
            return key, value
        target = share.receptor_id
        if self.on("share-scope-widened") and share.status == "active":
            named = self._named_receptor(path)
            target = named if named is not None else target
        elif not (self.on("revoked-token-works") and share.status != "active"):
            return key, value
        active = self.receptors.active_share(target)
        return key, active.token if active is not None else value

    def _named_receptor(self, path: str) -> str | None:
        assert self.receptors is not None
        m = re.search(r"/v1/public/receptors/(?:by-id/([^/]+)|([^/]+)/([^/]+))", path)
        if m is None:
            return None
        if m[1]:
            return m[1] if m[1] in self.receptors.receptors else None
        for receptor in self.receptors.receptors.values():
            if receptor.slug == m[3] and self.receptors.workspace_slug(receptor) == m[2]:
                return receptor.id
        return None

    def _filter_stream(self, message: Message, has_after: bool, state: dict[str, Any]) -> Message:
        body: bytes = message.get("body", b"")
        if not body:
            return message
        frames = body.split(b"\n\n")
        kept: list[bytes] = []
        for frame in frames:
            if not frame:
                kept.append(frame)
                continue
            if self.on("no-keepalive") and frame.startswith(b":"):
                continue
            has_id = b"\nid: " in b"\n" + frame
            if self.on("resume-drops-first") and has_after and not state["dropped"] and has_id:
                state["dropped"] = True
                continue
            if self.on("stream-without-ids"):
                lines = frame.split(b"\n")
                frame = b"\n".join(line for line in lines if not line.startswith(b"id:"))
            kept.append(frame)
        return {**message, "body": b"\n\n".join(kept)}

    async def _status_instead(self, scope: Scope, start: Message) -> tuple[Message, bytes]:
        """Answer 200 with the job's current status, as if the refused request had worked."""
        path: str = scope["path"]
        if "/v1/ava/jobs/" in path:
            status_path = path.removesuffix("/cancel")  # AVA's poll is GET /v1/ava/jobs/{id}
        else:
            status_path = re.sub(r"/(cancel|input)$", "/status", path)
        inner: Scope = {**scope, "method": "GET", "path": status_path, "query_string": b""}
        parts: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def collect(message: Message) -> None:
            parts.append(message)

        await self.app(inner, receive, collect)
        first = next(p for p in parts if p["type"] == "http.response.start")
        body = b"".join(p.get("body", b"") for p in parts if p["type"] == "http.response.body")
        return {**first}, body


def _with_header(scope: Scope, name: bytes, value: bytes) -> Scope:
    """The scope with header `name` (when the request sent it) replaced by `value`."""
    headers: list[tuple[bytes, bytes]] = list(scope["headers"])
    if not any(k == name for k, _ in headers):
        return scope
    return {**scope, "headers": [(k, value if k == name else v) for k, v in headers]}


def _without_priority(receive: Receive) -> Receive:
    """Replay the request body with `priority` removed (the body is read whole first)."""
    state: dict[str, Any] = {"done": False}

    async def replay() -> Message:
        if state["done"]:
            return await receive()
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        state["done"] = True
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and "priority" in body:
            del body["priority"]
            raw = json.dumps(body).encode()
        return {"type": "http.request", "body": raw, "more_body": False}

    return replay
