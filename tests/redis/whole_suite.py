"""What the whole-suite runs against several processes sharing Redis have in common
(test_workers.py: uvicorn workers; test_hosts.py: separate processes behind haproxy)."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from pathlib import Path

from tests.paced import ci_profile_at

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class WholeSuite:
    target: Path  # the suite's target profile
    server_profile: Path  # the servers' profile
    server_args: tuple[str, ...]  # what every server is started with besides


def whole_suite(tmp_path: Path) -> WholeSuite:
    hook_port = free_port()
    target = tmp_path / "target.toml"
    reference = (REPO / "fixtures" / "reference.toml").read_text(encoding="utf-8")
    # A suite pointed at a --target cannot hand the servers its webhook receiver's URL, so both
    # sides are told a fixed port instead of the reference profile's port 0; whichever process
    # sends a delivery sends it there.
    target.write_text(
        re.sub(r'(?m)^listen = ".*"$', f'listen = "127.0.0.1:{hook_port}"', reference),
        encoding="utf-8",
    )
    # Every timer tick of every running job is a commit on the world's one version: at the CI
    # profile's 10 ms steps two processes' commits collide often enough to fall behind on a
    # loaded machine (requests then time out), so these runs keep the 40 ms steps the suite was
    # written against.
    paced = ci_profile_at(tmp_path, step_ms=40, start_delay_ms=20)
    hook = f"http://127.0.0.1:{hook_port}/hooks"
    return WholeSuite(target, paced, ("--ava-webhook", hook))
