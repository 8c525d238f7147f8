"""The CI server profile at a slower AUVY and AVA pace, for test servers that cannot keep up.

fixtures/server/ci.toml steps AUVY and AVA jobs every 10 ms so the conformance suite waits little;
a browser rendering a 100,000-step job's events, or two workers serialising every timer tick
through the Redis store's lock, fall behind at that pace on a loaded CI machine.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"


def ci_profile_at(directory: Path, *, step_ms: int, start_delay_ms: int) -> Path:
    """A copy of the CI profile in `directory` whose AUVY and AVA sections use this pace."""
    text = CI_PROFILE.read_text(encoding="utf-8")
    seeds = (REPO / "fixtures" / "seed").as_posix()
    text = text.replace('seed = "../seed/', f'seed = "{seeds}/')
    for section in ("auvy", "ava"):
        head = f"[{section}]\n"
        start = text.index(head)
        end = text.find("\n[", start + len(head))
        stop = len(text) if end < 0 else end
        body = re.sub(r"(?m)^step_ms = \d+", f"step_ms = {step_ms}", text[start:stop])
        body = re.sub(r"(?m)^start_delay_ms = \d+", f"start_delay_ms = {start_delay_ms}", body)
        text = text[:start] + body + text[stop:]
    path = directory / f"ci-{step_ms}ms.toml"
    path.write_text(text, encoding="utf-8")
    return path
