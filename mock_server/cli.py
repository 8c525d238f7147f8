"""The command line of `python -m mock_server`: serve the reference server for frontend work or as
a CI stand-in.

With `--workers N` each worker process builds its app with `app_from_env` (named to uvicorn by
`APP_FACTORY`), which reads the command line back from the environment (mock_server.store.workers).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from . import scenarios
from .app import create_app
from .faults import FAULTS
from .profile import (
    DEFAULT_PROFILE,
    PACES,
    ProfileError,
    ServerProfile,
    with_pace,
    with_variants,
)
from .seed import SeedError
from .variants import PRESETS as VARIANTS
from .world import APIS

# The factory each worker process calls (`--workers` above 1).
APP_FACTORY = "mock_server.cli:app_from_env"
# uvicorn's default, which its workers set again when they listen.
LISTEN_BACKLOG = 2048


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m mock_server",
        description="Stateful reference server for the AUVY, AVA and Strait job APIs.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument(
        "--profile",
        type=Path,
        default=DEFAULT_PROFILE,
        help="server profile TOML (default fixtures/server/dev.toml)",
    )
    p.add_argument(
        "--api",
        choices=APIS,
        help="serve this one API at the root instead of every API under its prefix",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=sorted(FAULTS),
        metavar="NAME",
        help="break one documented behaviour on purpose (repeatable): " + ", ".join(sorted(FAULTS)),
    )
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        choices=sorted(VARIANTS),
        metavar="NAME",
        help="behave as another conformant implementation (repeatable; over the profile's "
        "[variant] table): " + ", ".join(sorted(VARIANTS)) + ". wire, wire-cr and latency "
        "change only the framing (gzip/deflate, CRLF/CR line ends, tiny chunks, extra fields, "
        "pretty JSON, latency), slow makes jobs take seconds, strait-live answers Strait with "
        "the live system's shapes (fixtures/server/strait-live.toml); "
        "fixtures/server/wire-dev.toml shows a [variant.wire] table",
    )
    p.add_argument(
        "--ava-webhook",
        action="append",
        default=[],
        metavar="URL",
        help="also POST AVA webhook events to this URL (repeatable), signed with the profile's "
        "[ava] webhook_secret",
    )
    p.add_argument(
        "--pace",
        choices=sorted(PACES),
        help="how fast every seeded job moves, overriding the profile: instant (CI), human "
        "(a progress bar visibly moves: the dev profile's), slow (demos)",
    )
    p.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME|FILE",
        help="load a scenario preset at start (repeatable): "
        + ", ".join(p.stem for p in scenarios.bundled())
        + ", or a path to a .toml of the same shape",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--store",
        metavar="URL",
        help="where the world lives: memory (the default: this process) or "
        "redis://HOST:PORT/DB[?prefix=NAME:], shared by every worker and host using it",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (default 1); more than 1 needs --store redis://...",
    )
    p.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (default auto: uvloop when installed)",
    )
    p.add_argument(
        "--http",
        choices=("auto", "h11", "httptools"),
        default="auto",
        help="HTTP/1.1 parser (default auto: httptools when installed)",
    )
    p.add_argument(
        "--fd", type=int, help=argparse.SUPPRESS
    )  # a socket handed over by a test harness
    return p.parse_args(argv)


def check_server_options(args: argparse.Namespace) -> str | None:
    """Why the uvicorn settings asked for cannot be served, or None."""
    if args.workers < 1:
        return f"--workers {args.workers}: at least 1"
    if args.workers > 1 and shared_store(args) is None:
        return (
            f"--workers {args.workers} needs a shared store: with the in-memory one each worker "
            "would hold its own jobs and streams. Add --store redis://HOST:PORT/DB"
        )
    for option, module in (("loop", "uvloop"), ("http", "httptools")):
        if getattr(args, option) == module and importlib.util.find_spec(module) is None:
            return f"--{option} {module}: {module} is not installed (pip install {module})"
    return None


def shared_store(args: argparse.Namespace) -> str | None:
    store: str | None = args.store
    return None if store in (None, "memory") else store


def build_app(
    args: argparse.Namespace, *, store: str | None
) -> tuple[Starlette, list[dict[str, Any]]]:
    """The app and the scenarios loaded into it; what main() serves and each worker builds."""
    profile = ServerProfile.load(args.profile)
    if args.pace is not None:
        profile = with_pace(profile, args.pace)
    if args.variant:
        profile = with_variants(profile, args.variant)
    app = create_app(
        profile,
        apis=[args.api] if args.api else APIS,
        root_api=args.api,
        faults=args.fault,
        ava_webhooks=args.ava_webhook,
        store=store,
    )
    loaded = [
        scenarios.apply(app.state.world, scenarios.load(scenarios.find(name)))
        for name in args.scenario
    ]
    return app, loaded


def app_from_env() -> Starlette:
    """A worker's app (`--workers` above 1): the command line `serve` put in the environment,
    built as a single-process server would, joined to the shared store."""
    from .store.workers import ENV

    args = parse_args(json.loads(os.environ[ENV]))
    app, _ = build_app(args, store=shared_store(args))
    return app


def banner(base: str, profile: ServerProfile, api: str | None) -> str:
    from .seed import describe_auvy, describe_ava, describe_strait

    lines = [f"mock_server listening on {base}", f"  profile: {profile.source}"]
    served = [(name, f"{base}/{name}") for name in APIS] if api is None else [(api, base)]
    for name, url in served:
        lines.append(f"  {name}: {url}")
        lines.append(f"    docs {url}/docs  openapi {url}/openapi.json (or .yaml)")
    if api is None:
        lines.append(
            f"  docs: {base}/docs  (every API; index of the documents: {base}/openapi.json)"
        )
    lines.append(f"  control: {base}/_mock  (health, reset, clock, forced outcomes, scenarios)")
    lines.append(f"  inspector: {base}/_mock/inspector/")
    lines += describe_auvy(profile.auvy.seed)
    lines += describe_ava(profile.ava.seed)
    for hook in profile.ava.webhooks:
        lines.append(f"    webhook -> {hook.url}")
    lines += describe_strait(profile.strait.seed)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_server_options(args)
    if problem is not None:
        print(f"mock_server: {problem}", file=sys.stderr)
        return 2
    store = shared_store(args)
    try:
        # With several workers each builds its own app (mock_server.store.workers); this one
        # only checks the options and fills the banner.
        app, loaded = build_app(args, store=store if args.workers == 1 else None)
    except (ProfileError, SeedError, ValueError) as exc:
        print(f"mock_server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sock: socket.socket | None = None
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        try:
            sock = listening_socket(args.host, args.port, workers=args.workers)
        except OSError as exc:
            print(f"mock_server: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 2
    host, port = sock.getsockname()[:2]
    # The world's profile includes the --ava-webhook endpoints.
    print(banner(f"http://{host}:{port}", app.state.world.profile, args.api), flush=True)
    for name in args.fault:
        print(f"  FAULT {name}: {FAULTS[name].description}", flush=True)
    if args.pace is not None:
        print(f"  pace: {args.pace}", flush=True)
    for line in app.state.world.profile.variant.describe():
        print(f"  VARIANT {line}", flush=True)
    for result in loaded:
        started = sum(len(ids) for ids in result["created"].values())
        print(f"  scenario {result['scenario']}: {result['title']} ({started} started)", flush=True)
    if store is not None:
        print(f"  store: {store} ({args.workers} worker(s))", flush=True)
    if args.workers > 1:
        # Imported only here: mock_server.store is for --store redis://... alone.
        from .store.workers import serve

        serve(APP_FACTORY, argv if argv is not None else sys.argv[1:], args, sock)
        return 0
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=args.access_log,
        lifespan="on",
        loop=args.loop,
        http=args.http,
    )
    server = uvicorn.Server(config)
    # What exists now (modules, compiled specs and validators, the seed world) lives as long as
    # the process, and creates no cyclic garbage (a reset frees the seed world by reference
    # counting). Frozen, it is never walked again by a full collection, which created jobs
    # trigger every few thousand: each walk took 100 ms and more on a loaded 2-core machine.
    gc.freeze()
    server.run(sockets=[sock])
    return 0


def listening_socket(host: str, port: int, *, workers: int = 1) -> socket.socket:
    """A bound TCP socket for uvicorn. Its protocol is named (IPPROTO_TCP, not 0): asyncio sets
    TCP_NODELAY only on connections of such a socket, and without it a keep-alive client (curl,
    requests) waits a delayed ACK, about 40 ms, for the body of every response after the first.
    For several workers it listens at once (holding the port, and keeping connections until a
    worker is up) and lets each worker bind a socket of its own beside it (store/workers.py)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    if workers > 1:
        from .store.workers import reuse_port

        reuse_port(sock)
        sock.listen(LISTEN_BACKLOG)
    return sock
