"""The baseline: a bare Starlette route returning a constant JSON body, served by uvicorn with
the same settings as the reference server (loop, HTTP parser, no access log, one worker).

    python -m bench.bare --fd N [--loop auto] [--http auto] [--body NAME=FILE ...]

It answers GET and POST on /bare (a POST reads its body first, as any JSON API must), on
/bare/NAME for every `--body` (the JSON document in FILE: the benchmark gives it the reference
server's own answer to the operation it compares, so both sides encode and send the same bytes)
and GET /_mock/health, so `conformance.server.ReferenceServer` can start and stop it like the
real one.
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Endpoint = Callable[[Request], Awaitable[JSONResponse]]

# About the size and shape of a job status document, so both sides render similar JSON.
BODY = {
    "job_id": "00000000-0000-4000-8000-000000000000",
    "status": "completed",
    "progress": 100,
    "current_step": None,
    "failedReason": None,
    "result": {"summary": "Revenue grew 12%.", "steps": 5},
    "waitingFor": None,
    "created_at": "2026-01-01T00:00:00.000Z",
    "processed_at": "2026-01-01T00:00:00.020Z",
    "finished_at": "2026-01-01T00:00:00.260Z",
    "pathway_id": "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10",
    "receptor_id": None,
    "kind": "pathway",
}


def constant(body: Any) -> Endpoint:
    async def endpoint(request: Request) -> JSONResponse:
        if request.method == "POST":
            await request.body()
        return JSONResponse(body)

    return endpoint


async def health(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def create_app(bodies: Mapping[str, Any] | None = None) -> Starlette:
    routes = [Route("/bare", constant(BODY), methods=["GET", "POST"])]
    routes += [
        Route(f"/bare/{name}", constant(body), methods=["GET", "POST"])
        for name, body in (bodies or {}).items()
    ]
    return Starlette(routes=[*routes, Route("/_mock/health", health)])


def read_bodies(specs: list[str]) -> dict[str, Any]:
    """`NAME=FILE` pairs to {NAME: the JSON document in FILE}."""
    bodies = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name:
            raise SystemExit(f"--body {spec!r}: expected NAME=FILE")
        bodies[name] = json.loads(Path(path).read_text(encoding="utf-8"))
    return bodies


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bare")
    p.add_argument("--fd", type=int, required=True, help="an already bound listening socket")
    p.add_argument("--loop", default="auto", choices=("auto", "asyncio", "uvloop"))
    p.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"))
    p.add_argument("--profile", help="ignored: accepted so one launcher starts both servers")
    p.add_argument("--body", action="append", default=[], metavar="NAME=FILE")
    args = p.parse_args(argv)
    app = create_app(read_bodies(args.body))
    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        loop=args.loop,
        http=args.http,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
