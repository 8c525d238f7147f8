"""The suite's own reading of Redis stream ids (`<ms>-<seq>`), the event ids AUVY's stream carries.

Kept apart from the reference server's model on purpose: the suite judges other implementations,
so it must not share code (and bugs) with the one it ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

UINT64_MAX: Final = 2**64 - 1

# Redis rejects ids longer than its 128-byte buffer; the bound also keeps int() cheap on
# hostile input.
_MAX_TEXT_LEN: Final = 127
# [0-9], not \d: \d accepts non-ASCII digits (U+FF11) that Redis rejects.
_SHAPE: Final = re.compile(r"([0-9]+)-([0-9]+)")


class InvalidStreamId(ValueError):
    pass


@dataclass(frozen=True, order=True, slots=True)
class StreamId:
    """Ordered as Redis orders entries: by milliseconds, then by sequence number."""

    ms: int
    seq: int

    def __post_init__(self) -> None:
        for name, value in (("ms", self.ms), ("seq", self.seq)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"stream id {name} must be an int, not {type(value).__name__}")
            if not 0 <= value <= UINT64_MAX:
                raise InvalidStreamId(f"stream id {name} must be between 0 and {UINT64_MAX}")

    @classmethod
    def parse(cls, text: str) -> StreamId:
        if len(text) > _MAX_TEXT_LEN:
            raise InvalidStreamId(f"stream id must be at most {_MAX_TEXT_LEN} characters")
        # fullmatch, not `$`, which would let a trailing newline through.
        match = _SHAPE.fullmatch(text)
        if match is None:
            raise InvalidStreamId("stream id must look like <ms>-<seq> with ASCII digits only")
        return cls(int(match[1]), int(match[2]))

    def encode(self) -> str:
        return f"{self.ms}-{self.seq}"

    def __str__(self) -> str:
        return self.encode()
