"""Scenario 5: wall time of the conformance suite against the bundled reference server.

`python -m pytest conformance` as a subprocess (what `nox -s conformance` runs), sequential and
with `-n 2`, its reports written to a temporary directory so the bench leaves reports/ to it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from conformance.server import REPO

# pytest's closing line: "== 3 failed, 187 passed, 2 skipped in 25.59s ==" (or -q without ==).
_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


@dataclass(frozen=True)
class Sizes:
    # (name, extra pytest arguments, time limit in s): the limits keep the whole bench within
    # about ten minutes on two CPUs; a run stopped at its limit is reported as such, never timed.
    modes: tuple[tuple[str, tuple[str, ...], float], ...] = (
        ("sequential", (), 210.0),
        ("-n 2", ("-n", "2"), 150.0),
    )

    @classmethod
    def quick(cls) -> Sizes:
        return cls(modes=(("-n 2", ("-n", "2"), 150.0),))


def run(sizes: Sizes) -> dict[str, Any]:
    return {"runs": {name: run_suite(args, limit) for name, args, limit in sizes.modes}}


def run_suite(extra: tuple[str, ...], time_limit_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as reports:
        args = [
            sys.executable,
            "-m",
            "pytest",
            "conformance",
            "-q",
            "-p",
            "no:randomly",
            f"--report-dir={reports}",
            *extra,
        ]
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                args, cwd=REPO, capture_output=True, text=True, timeout=time_limit_s, check=False
            )
        except subprocess.TimeoutExpired:
            return {
                "command": "python -m pytest conformance -q " + " ".join(extra),
                "wall_s": None,
                "error": f"still running after {time_limit_s:.0f} s: stopped",
            }
        wall = time.perf_counter() - start
    return {
        "command": "python -m pytest conformance -q " + " ".join(extra),
        "wall_s": round(wall, 2),
        "exit_code": proc.returncode,
        "counts": counts(proc.stdout),
    }


def counts(output: str) -> dict[str, int]:
    """The outcome counts of pytest's last summary line."""
    for line in reversed(output.strip().splitlines()):
        found = _COUNT.findall(line)
        if found and " in " in line:
            return {kind.rstrip("s") if kind == "errors" else kind: int(n) for n, kind in found}
    return {}
