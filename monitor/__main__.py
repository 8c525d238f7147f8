"""`python -m monitor --upstream URL --listen 127.0.0.1:9000 [--api auvy] [--profile FILE]
[--report-dir DIR]`: the conformance monitor (see monitor/__init__.py and the README).

Point clients at the listen address instead of the upstream. Ctrl-C or SIGTERM stops it: it
writes junit.xml, conformance.json and conformance.html to the report directory and exits 1 if a
MUST requirement was violated, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from conformance.profile import REFERENCE_PROFILE, ProfileError, TargetProfile
from conformance.requirements import APIS, load_catalog

from . import report
from .proxy import Monitor
from .state import JOB_CAP


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m monitor", description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, help="the deployment's base URL")
    p.add_argument("--listen", default="127.0.0.1:9000", help="HOST:PORT to serve on")
    p.add_argument("--fd", type=int, help="serve on this already-bound socket (tests)")
    p.add_argument("--api", action="append", choices=APIS, help="only this API (repeatable)")
    p.add_argument(
        "--profile",
        type=Path,
        default=REFERENCE_PROFILE,
        help="the target profile: base paths, and which keys belong to which workspace/project",
    )
    p.add_argument(
        "--report-dir", type=Path, default=Path("reports"), help="where reports go on exit"
    )
    p.add_argument("--job-cap", type=int, default=JOB_CAP, help="jobs kept in memory (LRU)")
    p.add_argument(
        "--probe",
        action="store_true",
        help="re-read a job's status once (with the same credentials) when a status rule "
        "breaks, and note the answer; without it the monitor sends nothing of its own",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        profile = TargetProfile.load(args.profile)
    except ProfileError as error:
        print(f"monitor: {error}", file=sys.stderr)
        return 4
    apis = args.api or [api for api in APIS if api in profile.data] or list(APIS)
    catalog = load_catalog()
    monitor = Monitor(
        args.upstream,
        profile=profile.data,
        apis=list(dict.fromkeys(apis)),
        catalog=catalog,
        job_cap=args.job_cap,
        probe=args.probe,
    )
    sockets: list[socket.socket] | None = None
    if args.fd is not None:
        # A TCP socket as such: uvicorn's own `fd` takes it for a Unix socket, and asyncio
        # then leaves Nagle's algorithm on (40 ms stalls with delayed ACKs).
        sock = socket.socket(fileno=args.fd)
        sockets = [sock]
        config = uvicorn.Config(monitor, log_level="warning", lifespan="on")
        host, port = sock.getsockname()[:2]
        where = f"http://{host}:{port}"
    else:
        host, _, port = args.listen.rpartition(":")
        config = uvicorn.Config(
            monitor, host=host or "127.0.0.1", port=int(port), log_level="warning", lifespan="on"
        )
        where = f"http://{host or '127.0.0.1'}:{port}"
    config.timeout_graceful_shutdown = 3
    server = uvicorn.Server(config)
    print(
        f"conformance monitor: {where} -> {args.upstream} ({', '.join(monitor.apis)}); "
        f"live page at {where}/_monitor/ ; reports to {args.report_dir} on exit",
        flush=True,
    )
    # uvicorn handles SIGINT and SIGTERM while it serves, then re-raises the signal under the
    # handler it found: for SIGTERM that must not be the default one, which would kill the
    # process before the reports are written.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server, monitor, sockets))
    data = report.build(
        monitor.ledger,
        catalog,
        upstream=args.upstream,
        apis=monitor.apis,
        started_at=monitor.started_at,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        decisions=monitor.decisions,
        stats={
            "jobs_evicted": monitor.jobs.evicted,
            "check_errors": monitor.check_errors,
            "probes_sent": monitor.probes_sent,
        },
    )
    report.write(data, args.report_dir)
    failed = report.must_failures(data)
    print(f"conformance monitor: {data['verdict']} ({ledger_line(data)})", flush=True)
    if failed:
        print("MUST requirements violated: " + ", ".join(failed), flush=True)
        return 1
    return 0


def ledger_line(data: dict[str, object]) -> str:
    counts: dict[str, int] = {}
    for requirement in data["requirements"]:  # type: ignore[attr-defined]
        counts[requirement["status"]] = counts.get(requirement["status"], 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


async def _serve(
    server: uvicorn.Server, monitor: Monitor, sockets: list[socket.socket] | None
) -> None:
    try:
        await server.serve(sockets=sockets)
    finally:
        await monitor.aclose()


if __name__ == "__main__":
    sys.exit(main())
