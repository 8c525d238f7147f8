"""Per requirement: how often traffic exercised it and held, and the exchanges that broke it."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import UTC, datetime

from conformance import report
from conformance.masking import Masker

from .exchange import Exchange

# Violations kept per requirement (later ones are counted); the live page shows the latest 100.
VIOLATIONS_CAP = 20
RECENT_CAP = 100


@dataclass(slots=True)
class Violation:
    requirement: str
    message: str
    at: str
    exchanges: tuple[report.Exchange, ...]
    # What `--probe` learned afterwards (already masked).
    notes: list[str] = field(default_factory=list)

    def full_message(self) -> str:
        return " ".join([self.message, *self.notes])

    def to_dict(self) -> dict[str, object]:
        return {
            "requirement": self.requirement,
            "message": self.full_message(),
            "at": self.at,
            "exchanges": [e.to_dict() for e in self.exchanges],
        }


class Ledger:
    def __init__(self, masker: Masker, base_url: str) -> None:
        self.masker = masker
        self.base_url = base_url.rstrip("/")
        self.observed: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.violations: dict[str, list[Violation]] = {}
        self.recent: collections.deque[Violation] = collections.deque(maxlen=RECENT_CAP)
        self.exchanges = 0

    def held(self, requirement: str) -> None:
        self.observed[requirement] += 1

    def broke(self, requirement: str, message: str, *exchanges: Exchange) -> Violation:
        self.observed[requirement] += 1
        self.failed[requirement] += 1
        kept = self.violations.setdefault(requirement, [])
        masked = tuple(e.for_report(self.masker, self.base_url) for e in exchanges)
        violation = Violation(
            requirement,
            self.masker.text(message),
            datetime.now(UTC).isoformat(timespec="milliseconds"),
            masked,
        )
        if len(kept) < VIOLATIONS_CAP:
            kept.append(violation)
        self.recent.append(violation)
        return violation
