"""`--workers N`: uvicorn worker processes on one listening socket, each with its own app.

The supervisor (uvicorn's `Multiprocess`, which also restarts a worker that dies) spawns fresh
interpreters; each calls `app_from_env`, which re-reads the command line from the environment and
builds the app exactly as a single-process server would, joined to the shared store.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import socket

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

ENV = "MOCK_SERVER_WORKER_ARGV"


def app_from_env() -> Starlette:
    from ..__main__ import build_app, parse_args, shared_store

    args = parse_args(json.loads(os.environ[ENV]))
    app, _ = build_app(args, store=shared_store(args))
    return app


def serve(argv: list[str], args: argparse.Namespace, sock: socket.socket) -> None:
    os.environ[ENV] = json.dumps(argv)
    config = uvicorn.Config(
        f"{__name__}:app_from_env",
        factory=True,
        workers=args.workers,
        log_level="warning",
        access_log=args.access_log,
        lifespan="on",
        loop=args.loop,
        http=args.http,
    )
    if "target" in inspect.signature(Multiprocess).parameters:
        # Older uvicorn took the server's run method as the target.
        target = uvicorn.Server(config).run
        Multiprocess(config, target=target, sockets=[sock]).run()  # type: ignore[call-arg,unused-ignore]
    else:
        Multiprocess(config, sockets=[sock]).run()
