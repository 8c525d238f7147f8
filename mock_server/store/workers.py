"""`--workers N`: uvicorn worker processes on one listening socket, each with its own app.

The supervisor (uvicorn's `Multiprocess`, which also restarts a worker that dies) spawns fresh
interpreters; each calls the app factory it was given (the CLI's `mock_server.cli:app_from_env`),
which re-reads the command line from `ENV` and builds the app exactly as a single-process server
would, joined to the shared store. Nothing here imports the CLI.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

ENV = "MOCK_SERVER_WORKER_ARGV"


def serve(factory: str, argv: list[str], args: argparse.Namespace, sock: socket.socket) -> None:
    """Serve `factory` ("module:function", building one worker's app from the command line in
    `ENV`) in `args.workers` processes on `sock`."""
    os.environ[ENV] = json.dumps(argv)
    config = uvicorn.Config(
        factory,
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
