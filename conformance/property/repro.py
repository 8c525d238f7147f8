"""What a property failure tells the reader: the requirement ids, the shrunk request sequence
with a curl line per request, and the command that replays the run from its seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..report import Exchange

__all__ = ["Step", "render_failure", "render_steps", "replay_command"]

MAX_BODY_SHOWN = 300


@dataclass(frozen=True)
class Step:
    """One request of a sequence: the model's name for it and what went over the wire."""

    label: str
    exchange: Exchange | None = None  # None: a step that sent nothing (a model-only check)


def _status(exchange: Exchange) -> str:
    if exchange.status is None:
        return "no response"
    body = exchange.response_body.replace("\n", " ")
    if len(body) > MAX_BODY_SHOWN:
        body = body[:MAX_BODY_SHOWN] + "…"
    return f"{exchange.status} {body}".rstrip()


def render_steps(steps: Sequence[Step]) -> str:
    lines: list[str] = []
    for number, step in enumerate(steps, start=1):
        lines.append(f"{number}. {step.label}")
        if step.exchange is not None:
            lines.append(f"   $ {step.exchange.as_curl()}")
            lines.append(f"   -> {_status(step.exchange)}")
    return "\n".join(lines)


def replay_command(seed: int, nodeid: str, depth: str, target: str | None = None) -> str:
    where = f" --target {target}" if target else ""
    return f"pytest '{nodeid}' --seed {seed} --depth {depth}{where} -p no:xdist"


def render_failure(
    claim: str,
    requirements: Sequence[str],
    steps: Sequence[Step],
    *,
    seed: int,
    nodeid: str,
    depth: str,
) -> str:
    """The message of a failed property: what was claimed, then how to see it again."""
    parts = [
        claim,
        f"requirements: {', '.join(requirements)}",
        f"sequence ({len(steps)} step{'s' if len(steps) != 1 else ''}):",
        render_steps(steps) or "   (no requests)",
        f"replay: {replay_command(seed, nodeid, depth)}",
    ]
    return "\n".join(parts)
