"""Strait variants: where the documents leave a choice open, the answer the reference does not give."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StraitVariant:
    """Every default is the reference server's own choice."""

    def check(self) -> str | None:
        return None


# The "choices" preset: every switch of this module set to the other allowed answer.
OTHER_CHOICES: dict[str, Any] = {}
