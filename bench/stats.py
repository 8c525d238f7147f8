"""Percentiles and latency summaries: the pure maths behind every figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation between closest ranks.

    The same definition as numpy's default ("linear"): p=0 is the minimum, p=100 the maximum.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Latency:
    """A latency distribution in milliseconds."""

    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency:
        if not samples_ms:
            raise ValueError("no samples")
        ordered = sorted(samples_ms)
        return cls(
            count=len(ordered),
            p50_ms=percentile(ordered, 50),
            p90_ms=percentile(ordered, 90),
            p99_ms=percentile(ordered, 99),
            max_ms=float(ordered[-1]),
            mean_ms=sum(ordered) / len(ordered),
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)
