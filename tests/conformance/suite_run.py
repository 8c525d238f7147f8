"""Running pytest in a subprocess from the checkout, as a user runs the suite: the project's
own tests judge the suite by what a run prints, writes and exits with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pytest_run(
    *args: str, cwd: Path = REPO, xdist: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`python -m pytest ARGS`; without xdist unless asked, so `-n` in ARGS is the caller's
    choice, and never in random order (a failure must replay)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    plugins = ["-p", "no:randomly"] + ([] if xdist else ["-p", "no:xdist"])
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
