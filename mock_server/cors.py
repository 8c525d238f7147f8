"""CORS open to any origin: Starlette's middleware, with a fast path for requests without Origin.

Starlette wraps every response to add `Vary: Origin`, parsing the request's and the response's
headers to do so; for the clients that send no Origin (scripts, load tests, CI suites: most of the
traffic) that was a sixth of a request's time in the server. Those requests get the same answer
here for less: `Vary: Origin` joined to any Vary already set, nothing else. Requests with an
Origin (browsers, preflights) go through Starlette's code unchanged.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import Message, Receive, Scope, Send


class OpenCORS(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_vary_origin(message.get("headers") or [])
            await send(message)

        await self.app(scope, receive, send_with_vary)


def with_vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """What Starlette's `headers["Vary"] = ", ".join([*headers.getlist("Vary"), "Origin"])`
    makes of a raw header list: every Vary replaced by one, at the first one's place."""
    # Starlette compares raw names as they are: a Response always lowercases them.
    varies = [value for name, value in headers if name == b"vary"]
    if not varies:
        return [*headers, (b"vary", b"Origin")]
    joined = b", ".join([*varies, b"Origin"])
    out: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        if name != b"vary":
            out.append((name, value))
        elif joined:
            out.append((b"vary", joined))
            joined = b""
    return out
