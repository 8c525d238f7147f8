"""`--workers N`: uvicorn worker processes on one port, each with its own app.

The supervisor (uvicorn's `Multiprocess`, which also restarts a worker that dies) spawns fresh
interpreters; each calls the app factory it was given (the CLI's `mock_server.cli:app_from_env`),
which re-reads the command line from `ENV` and builds the app exactly as a single-process server
would, joined to the shared store. Nothing here imports the CLI.

On Linux each worker also listens on a socket of its own, bound to the same address with
SO_REUSEPORT (when the given socket allows it: see `reuse_port`), and the kernel spreads new
connections over the sockets by a hash of their addresses. On one socket shared by all,
whichever worker wakes first accepts, and on a server at rest that is the same worker again and
again: ten connections opened at once went all to one worker in 21 bursts of 30, which left the
other idle for as long as a keep-alive client held them. The given socket listens from the
start (the CLI's and a harness's), so the port is held and connections wait in it until a
worker is up; every worker serves it, and the kernel hashes a share of connections to it too.
What SO_REUSEPORT costs: connections the kernel queued on a worker's own socket and the worker
had not accepted yet are reset when it stops (a restart, a shutdown) or dies, and while a
worker's event loop is blocked the share hashed to its socket waits for it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

ENV = "MOCK_SERVER_WORKER_ARGV"
# Where the kernel balances connections over sockets sharing a port by SO_REUSEPORT.
BALANCES = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


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
    sockets = [sock]
    if reuses_port(sock):
        sockets = _EachItsOwn(sockets)
    if "target" in inspect.signature(Multiprocess).parameters:
        # Older uvicorn took the server's run method as the target.
        target = uvicorn.Server(config).run
        Multiprocess(config, target=target, sockets=sockets).run()  # type: ignore[call-arg,unused-ignore]
    else:
        Multiprocess(config, sockets=sockets).run()


def reuse_port(sock: socket.socket) -> None:
    """Let the workers' sockets bind `sock`'s address beside it, on Linux (where the kernel
    then balances connections over them). Set once `sock` is bound, so that binding it still
    fails on a port another process holds, another server of several workers too."""
    if BALANCES:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)


def reuses_port(sock: socket.socket) -> bool:
    """Whether the workers serving `sock` each get a socket of their own beside it."""
    return (
        BALANCES
        and sock.family in (socket.AF_INET, socket.AF_INET6)
        and bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))
    )


class _EachItsOwn(list[socket.socket]):
    """The sockets uvicorn's supervisor hands every worker it spawns (pickled to the new
    process), which arrive as themselves and a fresh socket beside each, the worker's own,
    bound to the same address with SO_REUSEPORT. So every worker, restarted ones too, gets
    one without this module reaching into the supervisor."""

    def __reduce__(self) -> tuple[Any, tuple[list[socket.socket]]]:
        return (_own_sockets, (list(self),))


def _own_sockets(given: list[socket.socket]) -> list[socket.socket]:
    """Run in the worker as it unpickles `_EachItsOwn`."""
    own = []
    try:
        for sock in given:
            beside = socket.socket(sock.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            own.append(beside)
            beside.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if sock.family == socket.AF_INET6:
                v6only = sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                beside.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
            reuse_port(beside)
            beside.bind(sock.getsockname())
    except OSError:
        # The port is refused to this process: serve the given sockets alone, shared, as
        # uvicorn would (a worker that failed here would be restarted over and over).
        for beside in own:
            beside.close()
        return given
    return given + own
