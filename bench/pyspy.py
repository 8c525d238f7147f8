"""Where the server's time goes: py-spy samples of the server process, grouped by area.

`record` runs py-spy against a running server for a few seconds (raw, collapsed-stack output);
`Profile.parse` reads that output; `Profile.areas` attributes every sample to the first area found
walking from the innermost frame outwards (a JSON encoder frame called by Starlette counts as JSON
encoding); `Profile.top_functions` gives the innermost frames with the most samples.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (area, path fragments): the first area whose fragment occurs in a frame's file name wins, frame
# by frame from the innermost one. Order matters: specific before general.
AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("JSON Schema validation (jsonschema, referencing)", ("/jsonschema/", "/referencing/")),
    ("request routing and validation (mock_server/spec.py)", ("/mock_server/spec.py",)),
    ("JSON encoding and decoding (json)", ("/json/",)),
    ("timestamps (mock_server/clock.py)", ("/mock_server/clock.py",)),
    ("SSE framing and delivery (mock_server/sse.py)", ("/mock_server/sse.py",)),
    ("the model (mock_server/model/)", ("/mock_server/model/",)),
    ("handlers and rendering (mock_server/apis/)", ("/mock_server/apis/",)),
    ("the rest of mock_server", ("/mock_server/",)),
    ("CORS middleware (starlette)", ("/starlette/middleware/cors.py",)),
    ("Starlette (middleware, routing, Request/Response)", ("/starlette/",)),
    ("uvicorn (HTTP parsing, headers, socket writes)", ("/uvicorn/", "/httptools/", "/h11/")),
    ("event loop (asyncio, uvloop)", ("/asyncio/", "/uvloop/")),
)
OTHER = "other (standard library, interpreter)"

_LINE = re.compile(r":\d+\)$")


@dataclass(frozen=True)
class Profile:
    """Collapsed stacks: each a tuple of frames, outermost first, with its sample count."""

    stacks: tuple[tuple[tuple[str, ...], int], ...]

    @classmethod
    def parse(cls, text: str) -> Profile:
        stacks = []
        for line in text.splitlines():
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = tuple(_LINE.sub(")", f) for f in stack.split(";"))
            stacks.append((frames, int(count)))
        return cls(tuple(stacks))

    @property
    def samples(self) -> int:
        return sum(n for _, n in self.stacks)

    def areas(
        self, areas: Sequence[tuple[str, tuple[str, ...]]] = AREAS
    ) -> list[tuple[str, float]]:
        """Share of samples per area, largest first."""
        counts: Counter[str] = Counter()
        for frames, n in self.stacks:
            counts[area_of(frames, areas)] += n
        total = self.samples or 1
        return [(name, n / total) for name, n in counts.most_common()]

    def top_functions(self, limit: int = 12) -> list[tuple[str, float]]:
        """Innermost frames (self time) with the largest share of samples."""
        counts: Counter[str] = Counter()
        for frames, n in self.stacks:
            counts[short(frames[-1])] += n
        total = self.samples or 1
        return [(name, n / total) for name, n in counts.most_common(limit)]


def area_of(frames: Sequence[str], areas: Sequence[tuple[str, tuple[str, ...]]] = AREAS) -> str:
    for frame in reversed(frames):
        for name, fragments in areas:
            if any(f in frame for f in fragments):
                return name
    return OTHER


def short(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py)` -> `fn (pkg/mod.py)`."""
    name, _, path = frame.partition(" (")
    path = path.rstrip(")")
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = path.split("/", 1)[-1]
            break
    else:
        if "/mock_server/" in path:
            path = "mock_server/" + path.split("/mock_server/", 1)[1]
    return f"{name} ({path})"


def available() -> str | None:
    """The py-spy executable (beside this interpreter first, as in a virtualenv), or None."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def record(pid: int, seconds: float, *, rate: int = 200) -> Profile:
    """Sample process `pid` for `seconds`; raises RuntimeError when py-spy cannot (no permission
    to trace, not installed)."""
    exe = available()
    if exe is None:
        raise RuntimeError("py-spy is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        proc = subprocess.run(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--full-filenames",
                "--output",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"py-spy failed: {(proc.stderr or proc.stdout).strip()[-500:]}")
        return Profile.parse(out.read_text())


def summary(profile: Profile, seconds: float, rate: int = 200) -> dict[str, Any]:
    expected = max(1, round(seconds * rate))
    return {
        "samples": profile.samples,
        "busy": round(min(1.0, profile.samples / expected), 3),
        "areas": [{"area": a, "share": round(s, 4)} for a, s in profile.areas()],
        "top_functions": [
            {"function": f, "share": round(s, 4)} for f, s in profile.top_functions()
        ],
    }
