"""Masking credentials out of everything a run writes: exchanges, messages, reports.

Reports are shared (CI artifacts, attached to tickets), so no credential of the profile, and no
share token or key a test obtained during the run, may appear in them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "…"


class Masker:
    """Replaces each known secret by its first characters and an ellipsis."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = {s for s in secrets if len(s) >= 4}

    def add(self, secret: str) -> None:
        if len(secret) >= 4:
            self.secrets.add(secret)

    def text(self, value: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in value:
                value = value.replace(secret, secret[:4] + MASK)
        return value

    @classmethod
    def from_profile(cls, profile: Any) -> Masker:
        found: list[str] = []
        _strings(getattr(profile, "data", {}), found)
        return cls(found)


def _strings(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and _secret_name(str(key)):
                out.append(value)
            else:
                _strings(value, out)
    elif isinstance(node, list):
        for value in node:
            _strings(value, out)


def _secret_name(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in ("key", "secret", "token", "password", "jwt"))
