"""`python -m mock_server`: serve the reference server for frontend work or as a CI stand-in."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

import uvicorn

from .app import create_app
from .faults import FAULTS
from .profile import DEFAULT_PROFILE, ProfileError, ServerProfile
from .seed import SeedError
from .world import APIS


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
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument(
        "--fd", type=int, help=argparse.SUPPRESS
    )  # a socket handed over by a test harness
    return p.parse_args(argv)


def banner(base: str, profile: ServerProfile, api: str | None) -> str:
    from .seed import describe_auvy

    lines = [f"mock_server listening on {base}", f"  profile: {profile.source}"]
    if api is None:
        lines += [f"  {name}: {base}/{name}" for name in APIS]
    else:
        lines.append(f"  {api}: {base}")
    lines.append(f"  control: {base}/_mock  (health, reset, clock, forced outcomes)")
    lines += describe_auvy(profile.auvy.seed)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        profile = ServerProfile.load(args.profile)
        app = create_app(
            profile,
            apis=[args.api] if args.api else APIS,
            root_api=args.api,
            faults=args.fault,
        )
    except (ProfileError, SeedError, ValueError) as exc:
        print(f"mock_server: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sock: socket.socket | None = None
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
    else:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((args.host, args.port))
        except OSError as exc:
            print(f"mock_server: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 2
    host, port = sock.getsockname()[:2]
    print(banner(f"http://{host}:{port}", profile, args.api), flush=True)
    for name in args.fault:
        print(f"  FAULT {name}: {FAULTS[name].description}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=args.access_log, lifespan="on")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
