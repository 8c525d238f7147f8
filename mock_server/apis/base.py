"""The request pipeline every API shares: match -> authenticate -> validate -> handle -> render.

Authentication runs before validation so an anonymous caller learns nothing about the shape of
requests (401 before 400). Any exception is rendered in the API's own envelope; an unexpected one
becomes a 500 envelope and is logged, never a traceback on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..errors import Envelope, InternalError, RateLimited, RequestError
from ..model.engine import Engine
from ..model.errors import ModelError
from ..spec import Operation, Spec, ValidRequest

log = logging.getLogger("mock_server")

Who = TypeVar("Who")
Handler = Callable[[ValidRequest, Any, Request], Awaitable[Response]]


class ApiApp(Generic[Who]):
    """An ASGI app serving one spec. Subclasses provide `handlers`, `envelope`, `authenticate`."""

    envelope: Envelope

    def __init__(self, spec: Spec, engine: Engine, *, max_body_bytes: int) -> None:
        self.spec = spec
        self.engine = engine
        self.max_body_bytes = max_body_bytes
        self.handlers: Mapping[str, Handler] = self.build_handlers()
        missing = sorted(set(spec.operations) - set(self.handlers))
        extra = sorted(set(self.handlers) - set(spec.operations))
        if missing or extra:
            raise RuntimeError(
                f"{spec.name}: operations without handler {missing}, "
                f"handlers without operation {extra}"
            )

    def build_handlers(self) -> Mapping[str, Handler]:
        raise NotImplementedError

    def authenticate(self, request: Request, operation: Operation) -> Who:
        raise NotImplementedError

    def limit(self, request: Request, operation: Operation) -> None:
        """Raise RateLimited when the caller is over its limit; no limits by default."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.respond(request)
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        try:
            # Time-driven work due by now happens before the request sees the state.
            self.engine.run_due()
            operation, path_values = self.spec.match(request.method, route_path(request))
            self.limit(request, operation)
            who = self.authenticate(request, operation) if operation.secured else None
            headers = request.headers
            if operation.body is not None:
                raw_body = await read_body(request)
                content_type = headers.get("content-type")
            else:
                # Only a body is judged by its type; a missing header costs a KeyError to look up.
                raw_body, content_type = b"", None
            valid = operation.validate(
                path_values,
                # Most requests have no query string: parsing an empty one is pure overhead.
                request.query_params.multi_items() if request.scope.get("query_string") else (),
                headers,
                content_type,
                raw_body,
                max_body_bytes=self.max_body_bytes,
            )
            return await self.handlers[operation.operation_id](valid, who, request)
        except (RequestError, ModelError, RateLimited) as exc:
            return self.envelope.render(exc)
        except Exception as exc:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return self.envelope.render(InternalError(str(exc)))


async def read_body(request: Request) -> bytes:
    """`request.body()` without its async generator and `aclosing`, which cost a POST more than
    reading its one message: the same bytes, the same ClientDisconnect, and kept on the request
    so a later `request.body()` returns them."""
    receive = request.receive
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body
    return body


def route_path(request: Request) -> str:
    """The path below this API's mount point (Starlette keeps the full path in scope["path"])."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def bearer_token(request: Request) -> str | None:
    return scope_bearer_token(request.scope)


def scope_bearer_token(scope: Scope) -> str | None:
    # The first Authorization header, as Starlette's Headers.get finds it, without the Mapping
    # machinery: every private route reads it twice (rate limit, then authentication).
    header = ""
    for name, value in scope["headers"]:
        if name == b"authorization":
            header = value.decode("latin-1")
            break
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def json_ready(value: Any) -> Any:
    """Identity for JSON values; a hook so handlers state where wire data leaves the model."""
    return value
