"""Recorded deviations: a target that answers as the live system does where FACTS.md records that
the live system differs from the document, and the spec records the difference (an `x-deviation`
note of openapi/*.yaml).

Such an answer is neither a pass of the document's shape nor a failure: a check that meets one
calls `recorded_deviation`, which ends the test as a skip tagged so the report lists it under
`deviations` (with the requirement and what was seen) instead of among failures.
"""

from __future__ import annotations

from typing import Final, NoReturn

import pytest

TAG: Final = "[recorded deviation]"


def recorded_deviation(what: str) -> NoReturn:
    """End the calling test: the target showed the live system's recorded deviation `what`."""
    pytest.skip(f"recorded deviation (FACTS.md; the spec's x-deviation): {what} {TAG}")


def is_deviation(reason: str) -> bool:
    return reason.rstrip().endswith(TAG)


def without_tag(reason: str) -> str:
    return reason.rstrip().removesuffix(TAG).rstrip()
