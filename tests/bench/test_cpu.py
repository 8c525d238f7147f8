"""Where a load run's CPU went (bench/cpu.py), read from /proc: real processes, no load."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cpu import cpu_s, descendants, metered

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

# Busy for a while, then idle until killed: alive when the meter reads it again.
BUSY_THEN_IDLE = (
    "import time\n"
    "end = time.process_time() + 0.2\n"
    "while time.process_time() < end: pass\n"
    "time.sleep(60)\n"
)
# A parent that starts its busy child once told to (a file appears), as uvicorn's supervisor
# starts a worker.
PARENT = "\n".join(
    [
        "import os, subprocess, sys, time",
        "while not os.path.exists(sys.argv[1]): time.sleep(0.01)",
        f"subprocess.Popen([sys.executable, '-c', {BUSY_THEN_IDLE!r}]).wait()",
    ]
)


def test_a_process_cpu_seconds_grow_as_it_works() -> None:
    before = cpu_s(os.getpid())
    assert before is not None
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    after = cpu_s(os.getpid())
    assert after is not None and after > before
    assert cpu_s(2**22 + 12345) is None, "no such process"


def test_a_worker_started_during_the_run_and_the_load_generator_are_measured(
    tmp_path: Path,
) -> None:
    go = tmp_path / "go"
    server = subprocess.Popen([sys.executable, "-c", PARENT, str(go)])
    try:
        with metered(server.pid) as cpu:
            go.touch()
            deadline = time.monotonic() + 10
            while not descendants(server.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            worker = descendants(server.pid)
            assert worker, "the server's child did not start within 10 s"
            # The load generator: a child of this process, waited for.
            subprocess.run([sys.executable, "-c", BUSY_THEN_IDLE.replace("60", "0")], check=True)
            while (cpu_s(worker[0]) or 0) < 0.2 and time.monotonic() < deadline:
                time.sleep(0.02)
        figures = cpu()
        assert figures is not None
        # The worker's 0.2 s of work, all done in the block, is counted though it began there.
        assert figures["server_s"] >= 0.2
        assert figures["server"] and all(0 < c <= 1.5 for c in figures["server"])
        assert figures["load"] > 0 and figures["redis"] is None
    finally:
        for pid in descendants(server.pid):
            os.kill(pid, 9)
        server.kill()
        server.wait(timeout=10)


def test_without_a_server_there_is_nothing_to_say() -> None:
    with metered(None) as cpu:
        pass
    assert cpu() is None
