"""Wire-level variants: what HTTP and SSE allow a server to do differently on the wire."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WireVariant:
    """Every default is the reference server's own behaviour."""

    def check(self) -> str | None:
        return None


PRESETS: dict[str, dict[str, Any]] = {}
