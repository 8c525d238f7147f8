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
    "print('done', flush=True)\n"
    "time.sleep(60)\n"
)
# A parent whose child does the work, as uvicorn's supervisor and its workers.
PARENT = "\n".join(
    [
        "import subprocess, sys",
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


def test_the_servers_workers_and_the_load_generator_are_each_measured() -> None:
    server = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        with metered(server.pid) as cpu:
            deadline = time.monotonic() + 10
            while not descendants(server.pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            worker = descendants(server.pid)
            assert worker, "the server's child did not start within 10 s"
            # The load generator: a child of this process, waited for.
            subprocess.run([sys.executable, "-c", BUSY_THEN_IDLE.replace("60", "0")], check=True)
            # Until the worker has done its work, within a deadline.
            while (cpu_s(worker[0]) or 0) < 0.2 and time.monotonic() < deadline:
                time.sleep(0.02)
        figures = cpu()
        assert figures is not None
        assert len(figures["server"]) == 1, "the idle parent is left out, the busy child kept"
        assert 0 < figures["server"][0] <= 1.5
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
